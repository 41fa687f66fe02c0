//! Writing EC2's XML: the response envelope and the element helpers the actions share.
//!
//! Element names are the `locationName`s of botocore's ec2 service model (2016-11-15), which is
//! what botocore's ec2 parser looks for: lowerCamel names, list members as `<item>`. quick-xml
//! escapes text, so descriptions and tag values can hold anything.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::error::Ec2Error;

/// The namespace of every EC2 response.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// An XML document being written into memory.
pub struct Xml {
    writer: Writer<Vec<u8>>,
}

// === impl Xml ===

impl Xml {
    fn new() -> Self {
        let mut xml = Self { writer: Writer::new(Vec::new()) };
        xml.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        xml
    }

    /// Writes one event. Writing into a `Vec<u8>` cannot fail (its `io::Write` never errors), so
    /// the result carries no information.
    fn event(&mut self, event: Event<'_>) {
        let result: io::Result<()> = self.writer.write_event(event);
        debug_assert!(result.is_ok());
    }

    /// Opens `<name>`.
    pub fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: impl AsRef<str>) {
        self.open(name);
        self.event(Event::Text(BytesText::new(text.as_ref())));
        self.close(name);
    }

    /// `<name>` with `children` written inside, then `</name>`.
    pub fn element(&mut self, name: &str, children: impl FnOnce(&mut Self)) {
        self.open(name);
        children(self);
        self.close(name);
    }

    /// `<name><item>..</item>...</name>`, one item per element of `items`.
    pub fn items<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut item: impl FnMut(&mut Self, T),
    ) {
        self.open(name);
        for i in items {
            self.open("item");
            item(self, i);
            self.close("item");
        }
        self.close(name);
    }

    /// `<name><item>text</item>...</name>` for a list of scalars.
    pub fn text_items<T: AsRef<str>>(&mut self, name: &str, items: impl IntoIterator<Item = T>) {
        self.items(name, items, |x, t| {
            x.event(Event::Text(BytesText::new(t.as_ref())));
        });
    }

    /// `tagSet` of key/value items; `always` writes an empty set when there are no tags.
    pub fn tags<'a>(&mut self, tags: impl IntoIterator<Item = (&'a String, &'a String)>, always: bool) {
        let tags: Vec<_> = tags.into_iter().collect();
        if tags.is_empty() && !always {
            return;
        }
        self.items("tagSet", tags, |x, (k, v)| {
            x.text("key", k);
            x.text("value", v);
        });
    }

    fn finish(self) -> String {
        String::from_utf8_lossy(&self.writer.into_inner()).into_owned()
    }
}

/// `<{Action}Response xmlns=...><requestId>..</requestId>{body}</{Action}Response>`.
pub fn response(action: &str, request_id: &str, body: impl FnOnce(&mut Xml)) -> String {
    let mut xml = Xml::new();
    let root = format!("{action}Response");
    xml.event(Event::Start(BytesStart::new(root.as_str()).with_attributes([("xmlns", NAMESPACE)])));
    xml.text("requestId", request_id);
    body(&mut xml);
    xml.close(&root);
    xml.finish()
}

/// The error body EC2 answers with (HTTP 400):
/// `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`
/// (localstack's `EC2ResponseSerializer`; botocore's ec2 error parser reads it).
pub fn error(err: &Ec2Error, request_id: &str) -> String {
    let mut xml = Xml::new();
    xml.element("Response", |x| {
        x.element("Errors", |x| {
            x.element("Error", |x| {
                x.text("Code", err.code);
                x.text("Message", &err.message);
            });
        });
        x.text("RequestID", request_id);
    });
    xml.finish()
}
