//! The query parameters the REST edge reads, and the selectors they carry, parsed by the
//! registry's own [`crate::selector`] (so `-l` and `--field-selector` mean the same over REST
//! and gRPC). Parameters kubectl sends that change nothing here (`limit`, `timeout`,
//! `fieldManager`, `fieldValidation`, `resourceVersion` on a get or list: every read is served
//! from the registry's current state, which satisfies every `resourceVersionMatch`) are accepted
//! and ignored.

use netlab_proto::apiserver::v1::Resource;

use super::status::Status;
use crate::selector::{FieldSelector, LabelSelector};

/// What `includeObject` asks a Table row to carry (`metav1.IncludeObjectPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object (`kubectl get --sort-by`).
    Object,
}

/// The parsed query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `labelSelector`.
    pub label_selector: String,
    /// `fieldSelector`.
    pub field_selector: String,
    /// `includeObject`.
    pub include_object: IncludeObject,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `watch=true` (or `1`).
    pub watch: bool,
    /// `gracePeriodSeconds` (a delete may send it here instead of in its body).
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (likewise).
    pub propagation_policy: Option<String>,
    /// `resourceVersion`: where a watch starts.
    pub resource_version: Option<String>,
    /// `timeoutSeconds`: how long a watch lasts.
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks=true`.
    pub allow_watch_bookmarks: bool,
}

// === impl Query ===

impl Query {
    /// Parses a query string (`labelSelector=app%3Dweb&limit=500`).
    pub fn parse(raw: &str) -> Result<Self, Status> {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "labelSelector" => q.label_selector = value.into_owned(),
                "fieldSelector" => q.field_selector = value.into_owned(),
                "includeObject" => {
                    q.include_object = match value.as_ref() {
                        "None" => IncludeObject::None,
                        "Metadata" | "" => IncludeObject::Metadata,
                        "Object" => IncludeObject::Object,
                        other => {
                            return Err(Status::bad_request(format!(
                                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
                            )));
                        }
                    }
                }
                "dryRun" => match value.as_ref() {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(Status::bad_request(format!(
                            "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
                        )));
                    }
                },
                "watch" => q.watch = matches!(value.as_ref(), "true" | "1"),
                "gracePeriodSeconds" => {
                    q.grace_period_seconds = Some(value.parse().map_err(|_| {
                        Status::bad_request(format!("gracePeriodSeconds: Invalid value: \"{value}\""))
                    })?)
                }
                "propagationPolicy" => q.propagation_policy = Some(value.into_owned()),
                "resourceVersion" => q.resource_version = Some(value.into_owned()),
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(value.parse().map_err(|_| {
                        Status::bad_request(format!("timeoutSeconds: Invalid value: \"{value}\""))
                    })?)
                }
                "allowWatchBookmarks" => q.allow_watch_bookmarks = matches!(value.as_ref(), "true" | "1"),
                _ => {}
            }
        }
        Ok(q)
    }

    /// The label and field selectors, parsed for `resource`; a bad one is a 400 with the
    /// selector parser's message, as upstream answers.
    pub fn selectors(&self, resource: Resource) -> Result<(LabelSelector, FieldSelector), Status> {
        let labels = LabelSelector::parse(&self.label_selector).map_err(|e| Status::bad_request(e.0))?;
        let fields =
            FieldSelector::parse(resource, &self.field_selector).map_err(|e| Status::bad_request(e.0))?;
        Ok((labels, fields))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn selectors_from_kubectls_query_strings() {
        let q = Query::parse(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&fieldSelector=spec.nodeName%3Dnode-1&limit=500",
        )
        .unwrap();
        assert_eq!(q.label_selector, "app=web,tier in (a,b)");
        let (labels, fields) = q.selectors(Resource::Pods).unwrap();
        let l: BTreeMap<String, String> = [("app".into(), "web".into()), ("tier".into(), "a".into())].into();
        assert!(labels.matches(&l));
        assert!(fields.matches(&json!({"spec": {"nodeName": "node-1"}})));
        assert!(!fields.matches(&json!({"spec": {"nodeName": "node-2"}})));
    }

    #[test]
    fn bad_selectors_are_400s() {
        let q = Query::parse("fieldSelector=spec.nodeName%3Dx").unwrap();
        let err = q.selectors(Resource::Services).unwrap_err();
        assert_eq!((err.code, err.message.as_str()), (400, "field label not supported: spec.nodeName"));
        let q = Query::parse("labelSelector=app%3D%28x").unwrap();
        assert_eq!(q.selectors(Resource::Pods).unwrap_err().code, 400);
    }

    #[test]
    fn flags() {
        let q = Query::parse("includeObject=Object&dryRun=All&watch=1&gracePeriodSeconds=0").unwrap();
        assert_eq!(q.include_object, IncludeObject::Object);
        assert!(q.dry_run && q.watch);
        assert_eq!(q.grace_period_seconds, Some(0));
        assert_eq!(Query::parse("").unwrap().include_object, IncludeObject::Metadata);
        assert_eq!(Query::parse("includeObject=All").unwrap_err().code, 400);
        let w = Query::parse(
            "allowWatchBookmarks=true&fieldSelector=metadata.name%3Dx&resourceVersion=12&timeoutSeconds=351&watch=true",
        )
        .unwrap();
        assert!(w.watch && w.allow_watch_bookmarks);
        assert_eq!((w.resource_version.as_deref(), w.timeout_seconds), (Some("12"), Some(351)));
        assert_eq!(Query::parse("timeoutSeconds=-1").unwrap_err().code, 400);
    }
}
