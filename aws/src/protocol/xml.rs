//! A small XML builder for Query and EC2 responses, on quick-xml's writer so that text and
//! attribute values are always escaped. It knows the two list shapes: awsQuery's
//! `<Name><member>..</member></Name>` and EC2's `<nameSet><item>..</item></nameSet>`.

use std::fmt::Display;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// Writes elements, text and lists; handlers get one inside a response envelope.
pub struct XmlWriter {
    inner: Writer<Vec<u8>>,
}

/// Writing into a `Vec<u8>` cannot fail: its `io::Write` implementation never returns an error,
/// so the results quick-xml hands back carry no information.
fn infallible<T>(result: std::io::Result<T>) {
    debug_assert!(result.is_ok(), "writing XML into a Vec failed");
}

// === impl XmlWriter ===

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        Self { inner: Writer::new(Vec::new()) }
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>` and a newline, as EC2 starts its documents.
    pub fn declaration(&mut self) -> &mut Self {
        infallible(self.inner.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))));
        infallible(self.inner.write_event(Event::Text(BytesText::from_escaped("\n"))));
        self
    }

    /// `<name>text</name>`, the text escaped.
    pub fn elem(&mut self, name: &str, text: impl Display) -> &mut Self {
        let text = text.to_string();
        infallible(self.inner.write_event(Event::Start(BytesStart::new(name))));
        infallible(self.inner.write_event(Event::Text(BytesText::new(&text))));
        infallible(self.inner.write_event(Event::End(BytesEnd::new(name))));
        self
    }

    /// `<name>text</name>` if there is a value, nothing otherwise (AWS omits unset members).
    pub fn opt_elem(&mut self, name: &str, text: Option<impl Display>) -> &mut Self {
        if let Some(text) = text {
            self.elem(name, text);
        }
        self
    }

    /// `<name>...</name>` with children written by `children`.
    pub fn node(&mut self, name: &str, children: impl FnOnce(&mut Self)) -> &mut Self {
        self.node_with_attrs(name, &[], children)
    }

    /// `<name a="v">...</name>`, attribute values escaped.
    pub fn node_with_attrs(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        children: impl FnOnce(&mut Self),
    ) -> &mut Self {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute((*k, *v));
        }
        infallible(self.inner.write_event(Event::Start(start)));
        children(self);
        infallible(self.inner.write_event(Event::End(BytesEnd::new(name))));
        self
    }

    /// `<name><tag>..</tag>...</name>`, one `tag` element per item, its content written by
    /// `item`. An empty list is `<name/>`, as EC2 writes an empty `tagSet`.
    pub fn list<I: IntoIterator>(
        &mut self,
        name: &str,
        tag: &str,
        items: I,
        mut item: impl FnMut(&mut Self, I::Item),
    ) -> &mut Self {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            infallible(self.inner.write_event(Event::Empty(BytesStart::new(name))));
            return self;
        }
        self.node(name, |w| {
            for i in items {
                w.node(tag, |w| item(w, i));
            }
        })
    }

    /// An awsQuery list: `<Name><member>..</member></Name>`.
    pub fn members<I: IntoIterator>(
        &mut self,
        name: &str,
        items: I,
        item: impl FnMut(&mut Self, I::Item),
    ) -> &mut Self {
        self.list(name, "member", items, item)
    }

    /// An EC2 list: `<nameSet><item>..</item></nameSet>`.
    pub fn items<I: IntoIterator>(
        &mut self,
        name: &str,
        items: I,
        item: impl FnMut(&mut Self, I::Item),
    ) -> &mut Self {
        self.list(name, "item", items, item)
    }

    /// A list of scalars: `<name><tag>text</tag>...</name>`.
    pub fn text_list<T: Display>(
        &mut self,
        name: &str,
        tag: &str,
        items: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            infallible(self.inner.write_event(Event::Empty(BytesStart::new(name))));
            return self;
        }
        self.node(name, |w| {
            for i in items {
                w.elem(tag, i);
            }
        })
    }

    /// The document so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.inner.into_inner()
    }

    /// The document so far, as text.
    pub fn into_string(self) -> String {
        // Every byte written came from a `&str` (names, escaped text), so this is UTF-8.
        String::from_utf8_lossy(&self.into_bytes()).into_owned()
    }
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut w = XmlWriter::new();
        w.node_with_attrs("A", &[("x", "a\"<b")], |w| {
            w.elem("B", "1 < 2 & 3 > 'x'");
        });
        assert_eq!(w.into_string(), "<A x=\"a&quot;&lt;b\"><B>1 &lt; 2 &amp; 3 &gt; &apos;x&apos;</B></A>");
    }

    #[test]
    fn lists() {
        let mut w = XmlWriter::new();
        w.members("Roles", ["r1", "r2"], |w, r| {
            w.elem("RoleName", r);
        })
        .items("tagSet", Vec::<(&str, &str)>::new(), |_, _| {})
        .items("privateIpAddressesSet", [("10.0.0.4", true)], |w, (ip, primary)| {
            w.elem("privateIpAddress", ip).elem("primary", primary);
        })
        .text_list("Arns", "member", ["a"])
        .opt_elem("Missing", None::<&str>)
        .opt_elem("Present", Some(7));
        assert_eq!(
            w.into_string(),
            "<Roles><member><RoleName>r1</RoleName></member><member><RoleName>r2</RoleName></member></Roles>\
             <tagSet/>\
             <privateIpAddressesSet><item><privateIpAddress>10.0.0.4</privateIpAddress><primary>true</primary></item></privateIpAddressesSet>\
             <Arns><member>a</member></Arns><Present>7</Present>"
        );
    }

    #[test]
    fn declaration() {
        let mut w = XmlWriter::default();
        w.declaration().elem("R", "");
        assert_eq!(w.into_string(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R></R>");
    }
}
