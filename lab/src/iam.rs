//! IAM in the cluster's AWS account, as lab steps change it and reset puts it back.
//!
//! Labs about image pulls break the account, not the cluster: a policy detached from the nodes'
//! role, a role for a pod's ServiceAccount. Reset must leave the account as the lab found it
//! whatever the person did meanwhile (an inline policy added as a fix would otherwise survive
//! and keep the next run from breaking), so a role is snapshotted whole before the lab's first
//! change to it — trust policy, attached and inline policies — and reset converges the role on
//! that snapshot. Calls go through [`Live::aws`], signed as the lab's admin, in IAM's Query
//! protocol; answers are read with [`xml_values`], which is all IAM's flat XML needs.

use std::collections::BTreeMap;

use crate::{
    live::{AwsFault, Live},
    progress::RoleState,
};

/// IAM's code for a role, policy or provider that does not exist.
const NO_SUCH_ENTITY: &str = "NoSuchEntity";
/// IAM's code for a provider (or role) that exists already.
const ALREADY_EXISTS: &str = "EntityAlreadyExists";

/// One IAM call; an AWS error becomes text naming the action, as the aws CLI words it.
async fn call(live: &mut impl Live, action: &str, params: &[(&str, &str)]) -> Result<String, Failure> {
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match live.aws("iam", action, &params).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(fault)) => Err(Failure::Aws(action.to_string(), fault)),
        Err(e) => Err(Failure::Unreachable(e)),
    }
}

/// Why an IAM call failed.
enum Failure {
    /// AWS answered with an error.
    Aws(String, AwsFault),
    /// The endpoint could not be asked.
    Unreachable(String),
}

impl Failure {
    fn is(&self, code: &str) -> bool {
        matches!(self, Failure::Aws(_, f) if f.code == code)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Aws(action, fault) => write!(
                f,
                "An error occurred ({}) when calling the {action} operation: {}",
                fault.code, fault.message
            ),
            Failure::Unreachable(e) => write!(f, "the cluster's AWS endpoint: {e}"),
        }
    }
}

fn text(f: Failure) -> String {
    f.to_string()
}

/// The role `name` as reset restores it; None when it does not exist.
pub async fn role_state(live: &mut impl Live, name: &str) -> Result<Option<RoleState>, String> {
    let role = match call(live, "GetRole", &[("RoleName", name)]).await {
        Ok(body) => body,
        Err(f) if f.is(NO_SUCH_ENTITY) => return Ok(None),
        Err(f) => return Err(text(f)),
    };
    let trust = xml_values(&role, "AssumeRolePolicyDocument").into_iter().next().unwrap_or_default();
    let attached = call(live, "ListAttachedRolePolicies", &[("RoleName", name)]).await.map_err(text)?;
    let names = call(live, "ListRolePolicies", &[("RoleName", name)]).await.map_err(text)?;
    let mut inline = BTreeMap::new();
    for policy in xml_values(&names, "member") {
        let body = call(live, "GetRolePolicy", &[("RoleName", name), ("PolicyName", &policy)])
            .await
            .map_err(text)?;
        let document = xml_values(&body, "PolicyDocument").into_iter().next().unwrap_or_default();
        inline.insert(policy, percent_decode(&document));
    }
    Ok(Some(RoleState {
        trust: percent_decode(&trust),
        attached: xml_values(&attached, "PolicyArn"),
        inline,
    }))
}

/// Creates role `name` with trust policy `trust`.
pub async fn create_role(live: &mut impl Live, name: &str, trust: &str) -> Result<(), String> {
    call(live, "CreateRole", &[("RoleName", name), ("AssumeRolePolicyDocument", trust)])
        .await
        .map_err(text)?;
    Ok(())
}

/// Attaches managed policy `arn` to role `name` (attaching one already attached is no error,
/// as in IAM).
pub async fn attach(live: &mut impl Live, name: &str, arn: &str) -> Result<(), String> {
    call(live, "AttachRolePolicy", &[("RoleName", name), ("PolicyArn", arn)]).await.map_err(text)?;
    Ok(())
}

/// Detaches managed policy `arn` from role `name`; Ok(false) when it was not attached.
pub async fn detach(live: &mut impl Live, name: &str, arn: &str) -> Result<bool, String> {
    match call(live, "DetachRolePolicy", &[("RoleName", name), ("PolicyArn", arn)]).await {
        Ok(_) => Ok(true),
        Err(f) if f.is(NO_SUCH_ENTITY) => Ok(false),
        Err(f) => Err(text(f)),
    }
}

/// Brings role `name` back to `before` (None: it did not exist, so it is deleted), returning a
/// line per change made.
pub async fn restore(
    live: &mut impl Live,
    name: &str,
    before: Option<&RoleState>,
) -> Result<Vec<String>, String> {
    let now = role_state(live, name).await?;
    let mut done = Vec::new();
    match (before, now) {
        (None, None) => {}
        (None, Some(now)) => {
            // IAM refuses to delete a role with policies (DeleteConflict): take them off first.
            for arn in &now.attached {
                detach(live, name, arn).await?;
            }
            for policy in now.inline.keys() {
                call(live, "DeleteRolePolicy", &[("RoleName", name), ("PolicyName", policy)])
                    .await
                    .map_err(text)?;
            }
            call(live, "DeleteRole", &[("RoleName", name)]).await.map_err(text)?;
            done.push(format!("iam role/{name} deleted"));
        }
        (Some(before), now) => {
            let now = match now {
                Some(now) => now,
                None => {
                    create_role(live, name, &before.trust).await?;
                    done.push(format!("iam role/{name} created again"));
                    RoleState::default()
                }
            };
            if !now.trust.is_empty() && normalized(&now.trust) != normalized(&before.trust) {
                call(
                    live,
                    "UpdateAssumeRolePolicy",
                    &[("RoleName", name), ("PolicyDocument", &before.trust)],
                )
                .await
                .map_err(text)?;
                done.push(format!("iam role/{name}: trust policy restored"));
            }
            for arn in now.attached.iter().filter(|a| !before.attached.contains(a)) {
                detach(live, name, arn).await?;
                done.push(format!("iam role/{name}: {arn} detached"));
            }
            for arn in before.attached.iter().filter(|a| !now.attached.contains(a)) {
                attach(live, name, arn).await?;
                done.push(format!("iam role/{name}: {arn} attached again"));
            }
            for policy in now.inline.keys().filter(|p| !before.inline.contains_key(*p)) {
                call(live, "DeleteRolePolicy", &[("RoleName", name), ("PolicyName", policy)])
                    .await
                    .map_err(text)?;
                done.push(format!("iam role/{name}: inline policy {policy} deleted"));
            }
            for (policy, document) in &before.inline {
                if now.inline.get(policy).map(|d| normalized(d)) != Some(normalized(document)) {
                    call(
                        live,
                        "PutRolePolicy",
                        &[("RoleName", name), ("PolicyName", policy), ("PolicyDocument", document)],
                    )
                    .await
                    .map_err(text)?;
                    done.push(format!("iam role/{name}: inline policy {policy} restored"));
                }
            }
        }
    }
    Ok(done)
}

/// Creates the OpenID Connect provider for `url`: its ARN, or None when it exists already.
pub async fn create_oidc_provider(
    live: &mut impl Live,
    url: &str,
    client_ids: &[String],
) -> Result<Option<String>, String> {
    let keys: Vec<String> = (1..=client_ids.len()).map(|i| format!("ClientIDList.member.{i}")).collect();
    let mut params: Vec<(&str, &str)> = vec![("Url", url)];
    params.extend(keys.iter().map(String::as_str).zip(client_ids.iter().map(String::as_str)));
    match call(live, "CreateOpenIDConnectProvider", &params).await {
        Ok(body) => Ok(xml_values(&body, "OpenIDConnectProviderArn").into_iter().next()),
        Err(f) if f.is(ALREADY_EXISTS) => Ok(None),
        Err(f) => Err(text(f)),
    }
}

/// Deletes the OpenID Connect provider `arn`: true if it was there.
pub async fn delete_oidc_provider(live: &mut impl Live, arn: &str) -> Result<bool, String> {
    match call(live, "DeleteOpenIDConnectProvider", &[("OpenIDConnectProviderArn", arn)]).await {
        Ok(_) => Ok(true),
        Err(f) if f.is(NO_SUCH_ENTITY) => Ok(false),
        Err(f) => Err(text(f)),
    }
}

/// The text of every `<tag>…</tag>` element of an AWS XML answer, in order, with XML's
/// entities decoded. AWS's Query answers are flat enough that this is all a reader needs.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&#xD;", "\r")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

/// IAM returns policy documents URL-encoded (RFC 3986); `%XX` back to bytes.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document compared by its JSON value, not its spacing.
fn normalized(doc: &str) -> String {
    serde_json::from_str::<serde_json::Value>(doc).map(|v| v.to_string()).unwrap_or_else(|_| doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_flat_aws_xml() {
        let xml = "<ListAttachedRolePoliciesResult><AttachedPolicies><member><PolicyName>A</PolicyName><PolicyArn>arn:aws:iam::aws:policy/A</PolicyArn></member><member><PolicyArn>arn:&amp;B</PolicyArn></member></AttachedPolicies></ListAttachedRolePoliciesResult>";
        assert_eq!(xml_values(xml, "PolicyArn"), ["arn:aws:iam::aws:policy/A", "arn:&B"]);
        assert!(xml_values(xml, "Nope").is_empty());
    }

    #[test]
    fn policy_documents_are_url_decoded_and_compared_as_json() {
        let doc = percent_decode("%7B%22Version%22%3A%20%222012-10-17%22%7D");
        assert_eq!(doc, "{\"Version\": \"2012-10-17\"}");
        assert_eq!(normalized(&doc), normalized("{\"Version\":\"2012-10-17\"}"));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
