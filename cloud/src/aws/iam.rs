//! IAM (awsQuery, `2010-05-08`): roles, their trust and permission policies, customer managed
//! policies, users and access keys, instance profiles and OpenID Connect providers: the
//! operations eksctl, the CNI's setup and an engineer at the aws CLI use. The state and its
//! rules live in netlab-iam's [`Directory`](netlab_iam::Directory); this module reads the Query
//! input, checks it against botocore's `iam/2010-05-08` model constraints, authorises the call
//! and writes the answer as the model shapes it.
//!
//! Order, as AWS's front end has it: the model's constraints first (one `ValidationError`
//! naming every failure), then authorisation against the resource the Service Authorization
//! Reference names for the action (so a caller without permission learns nothing about what
//! exists), then the operation's own errors (`NoSuchEntity`, `EntityAlreadyExists`,
//! `MalformedPolicyDocument`, ...).
//!
//! The resource of an entity that does not exist yet is its ARN built from the account and
//! name (`arn:aws:iam::123456789012:role/NAME`, with its path when given). The list operations
//! use what AWS's denials name: `arn:aws:iam::<account>:role/` (+ path prefix) for ListRoles,
//! the literal `policy path /` for ListPolicies and `arn:aws:iam::<account>:oidc-provider/*`
//! for ListOpenIDConnectProviders (each seen verbatim in public AccessDenied reports).
//!
//! Output: `<OpResult>`, `<member>` lists, `IsTruncated` false (everything fits one page),
//! dates as `2026-12-07T17:00:00Z`, policy documents URL-encoded as IAM returns them (the aws
//! CLI decodes them and prints JSON). Tags and permissions boundaries are not modelled: sent
//! tags are ignored, and no `Tags` or `PermissionsBoundary` is ever written.

use bytes::Bytes;
use netlab_aws::protocol::{self, IAM_XMLNS};
use netlab_aws::{AwsError, Params, ProtocolError, ValidationFailure, XmlWriter};
use netlab_iam::{CreateOidcProvider, CreateRole, Identity, InstanceProfile, ManagedPolicy, Role, User};

use super::sts::iso8601;
use super::{Account, Call, authorize, iam_error};

/// The `[\w+=,.@-]+` names of users, roles, policies and profiles.
const NAME_PATTERN: &str = r"Member must satisfy regular expression pattern: [\w+=,.@-]+";
/// `policyDocumentType`'s pattern, as AWS prints it.
const DOCUMENT_PATTERN: &str =
    r"Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+";
/// `policyDocumentType`'s maximum length.
const DOCUMENT_MAX: usize = 131_072;
/// GetUser, CreateAccessKey and ListAccessKeys without `UserName`, signed by a role session
/// (verbatim in hashicorp/terraform-provider-aws's `aws_iam_access_key` importer comment and
/// in a captured IAM error body in a public Go test).
const NON_USER_CREDENTIALS: &str = "Must specify userName when calling with non-User credentials";

/// Answers an IAM call.
pub fn handle(account: &mut Account, call: &Call<'_>) -> Result<http::Response<Bytes>, AwsError> {
    let params = call.params()?;
    let mut input = Input::new(params);
    match call.action {
        // --- roles ---
        "CreateRole" => {
            let name = input.name("RoleName", 64);
            let document = input.document("AssumeRolePolicyDocument");
            let path = input.path("Path");
            let description = input.opt_text("Description", 0, 1000);
            let max = input.opt_int("MaxSessionDuration");
            input.finish(call)?;
            let arn = account.iam.account.arn("iam", &format!("role{}{name}", path.unwrap_or("/")));
            authorize(account, call, "iam:CreateRole", &arn)?;
            let create = CreateRole {
                name,
                path,
                assume_role_policy_document: document,
                description,
                max_session_duration: max,
            };
            let role = account.iam.create_role(create, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| write_role(w, role, RoleView::Created)))
        }
        "GetRole" => {
            let name = input.name("RoleName", 64);
            input.finish(call)?;
            authorize(account, call, "iam:GetRole", &role_arn(account, name))?;
            let role = account.iam.get_role(name).map_err(iam_error)?;
            Ok(respond(call, |w| write_role(w, role, RoleView::Get)))
        }
        "DeleteRole" => {
            let name = input.name("RoleName", 64);
            input.finish(call)?;
            authorize(account, call, "iam:DeleteRole", &role_arn(account, name))?;
            account.iam.delete_role(name).map_err(iam_error)?;
            Ok(empty(call))
        }
        "ListRoles" => {
            let prefix = input.path_prefix("PathPrefix");
            input.finish(call)?;
            let resource = account.iam.account.arn("iam", &format!("role{}", prefix.unwrap_or("/")));
            authorize(account, call, "iam:ListRoles", &resource)?;
            let roles = account.iam.list_roles(prefix);
            Ok(respond(call, |w| {
                w.members("Roles", roles, |w, r| write_role_fields(w, r, RoleView::Listed))
                    .elem("IsTruncated", false);
            }))
        }
        "UpdateAssumeRolePolicy" => {
            let name = input.name("RoleName", 64);
            let document = input.document("PolicyDocument");
            input.finish(call)?;
            authorize(account, call, "iam:UpdateAssumeRolePolicy", &role_arn(account, name))?;
            account.iam.update_assume_role_policy(name, document).map_err(iam_error)?;
            Ok(empty(call))
        }
        "AttachRolePolicy" | "DetachRolePolicy" => {
            let name = input.name("RoleName", 64);
            let policy = input.arn("PolicyArn");
            input.finish(call)?;
            let action = format!("iam:{}", call.action);
            authorize(account, call, &action, &role_arn(account, name))?;
            if call.action == "AttachRolePolicy" {
                account.iam.attach_role_policy(name, policy).map_err(iam_error)?;
            } else {
                account.iam.detach_role_policy(name, policy).map_err(iam_error)?;
            }
            Ok(empty(call))
        }
        "ListAttachedRolePolicies" => {
            let name = input.name("RoleName", 64);
            input.finish(call)?;
            authorize(account, call, "iam:ListAttachedRolePolicies", &role_arn(account, name))?;
            let attached = account.iam.list_attached_role_policies(name).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.members("AttachedPolicies", attached, |w, p| {
                    w.elem("PolicyName", &p.policy_name).elem("PolicyArn", &p.policy_arn);
                })
                .elem("IsTruncated", false);
            }))
        }
        "PutRolePolicy" => {
            let name = input.name("RoleName", 64);
            let policy = input.name("PolicyName", 128);
            let document = input.document("PolicyDocument");
            input.finish(call)?;
            authorize(account, call, "iam:PutRolePolicy", &role_arn(account, name))?;
            account.iam.put_role_policy(name, policy, document).map_err(iam_error)?;
            Ok(empty(call))
        }
        "GetRolePolicy" => {
            let name = input.name("RoleName", 64);
            let policy = input.name("PolicyName", 128);
            input.finish(call)?;
            authorize(account, call, "iam:GetRolePolicy", &role_arn(account, name))?;
            let document = account.iam.get_role_policy(name, policy).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.elem("RoleName", name)
                    .elem("PolicyName", policy)
                    .elem("PolicyDocument", document.url_encoded());
            }))
        }
        "DeleteRolePolicy" => {
            let name = input.name("RoleName", 64);
            let policy = input.name("PolicyName", 128);
            input.finish(call)?;
            authorize(account, call, "iam:DeleteRolePolicy", &role_arn(account, name))?;
            account.iam.delete_role_policy(name, policy).map_err(iam_error)?;
            Ok(empty(call))
        }
        "ListRolePolicies" => {
            let name = input.name("RoleName", 64);
            input.finish(call)?;
            authorize(account, call, "iam:ListRolePolicies", &role_arn(account, name))?;
            let names = account.iam.list_role_policies(name).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.text_list("PolicyNames", "member", names).elem("IsTruncated", false);
            }))
        }

        // --- managed policies ---
        "CreatePolicy" => {
            let name = input.name("PolicyName", 128);
            let document = input.document("PolicyDocument");
            let path = input.path("Path");
            let description = input.opt_text("Description", 0, 1000);
            input.finish(call)?;
            let arn = account.iam.account.arn("iam", &format!("policy{}{name}", path.unwrap_or("/")));
            authorize(account, call, "iam:CreatePolicy", &arn)?;
            let policy =
                account.iam.create_policy(name, path, document, description, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.node("Policy", |w| write_policy(w, policy, 0, PolicyView::Created));
            }))
        }
        "GetPolicy" => {
            let arn = input.arn("PolicyArn");
            input.finish(call)?;
            authorize(account, call, "iam:GetPolicy", arn)?;
            let policy = account.iam.get_policy(arn).map_err(iam_error)?;
            let count = account.iam.attachment_count(arn);
            Ok(respond(call, |w| {
                w.node("Policy", |w| write_policy(w, &policy, count, PolicyView::Get));
            }))
        }
        "ListPolicies" => {
            let scope = input.opt_enum("Scope", &["All", "AWS", "Local"]).unwrap_or("All");
            let only_attached = input.opt_bool("OnlyAttached").unwrap_or(false);
            let prefix = input.path_prefix("PathPrefix").unwrap_or("/");
            input.finish(call)?;
            authorize(account, call, "iam:ListPolicies", &format!("policy path {prefix}"))?;
            let policies: Vec<(ManagedPolicy, usize)> = account
                .iam
                .list_policies()
                .into_iter()
                .filter(|p| match scope {
                    "AWS" => p.aws_managed,
                    "Local" => !p.aws_managed,
                    _ => true,
                })
                .filter(|p| p.path.starts_with(prefix))
                .map(|p| {
                    let count = account.iam.attachment_count(&p.arn);
                    (p, count)
                })
                .filter(|(_, count)| !only_attached || *count > 0)
                .collect();
            Ok(respond(call, |w| {
                w.members("Policies", &policies, |w, (p, count)| {
                    write_policy(w, p, *count, PolicyView::Listed)
                })
                .elem("IsTruncated", false);
            }))
        }

        // --- users and access keys ---
        "CreateUser" => {
            let name = input.name("UserName", 64);
            let path = input.path("Path");
            input.finish(call)?;
            let arn = account.iam.account.arn("iam", &format!("user{}{name}", path.unwrap_or("/")));
            authorize(account, call, "iam:CreateUser", &arn)?;
            let user = account.iam.create_user(name, path, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| write_user(w, user)))
        }
        "GetUser" => {
            let name = input.opt_name("UserName", 128);
            input.finish(call)?;
            let name = user_or_caller(call, name)?;
            authorize(account, call, "iam:GetUser", &user_arn(account, &name))?;
            let user = account.iam.get_user(&name).map_err(iam_error)?;
            Ok(respond(call, |w| write_user(w, user)))
        }
        "CreateAccessKey" => {
            let name = input.opt_name("UserName", 128);
            input.finish(call)?;
            let name = user_or_caller(call, name)?;
            authorize(account, call, "iam:CreateAccessKey", &user_arn(account, &name))?;
            let key = account.iam.create_access_key(&name, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.node("AccessKey", |w| {
                    w.elem("UserName", &key.user_name)
                        .elem("AccessKeyId", &key.access_key_id)
                        .elem("Status", format!("{:?}", key.status))
                        .elem("SecretAccessKey", &key.secret_access_key)
                        .elem("CreateDate", iso8601(key.create_date));
                });
            }))
        }
        "ListAccessKeys" => {
            let name = input.opt_name("UserName", 128);
            input.finish(call)?;
            let name = user_or_caller(call, name)?;
            authorize(account, call, "iam:ListAccessKeys", &user_arn(account, &name))?;
            let keys = account.iam.list_access_keys(&name).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.members("AccessKeyMetadata", keys, |w, k| {
                    w.elem("UserName", &k.user_name)
                        .elem("AccessKeyId", &k.access_key_id)
                        .elem("Status", format!("{:?}", k.status))
                        .elem("CreateDate", iso8601(k.create_date));
                })
                .elem("IsTruncated", false);
            }))
        }
        "AttachUserPolicy" | "DetachUserPolicy" => {
            let name = input.name("UserName", 64);
            let policy = input.arn("PolicyArn");
            input.finish(call)?;
            let action = format!("iam:{}", call.action);
            authorize(account, call, &action, &user_arn(account, name))?;
            if call.action == "AttachUserPolicy" {
                account.iam.attach_user_policy(name, policy).map_err(iam_error)?;
            } else {
                account.iam.detach_user_policy(name, policy).map_err(iam_error)?;
            }
            Ok(empty(call))
        }

        // --- instance profiles ---
        "CreateInstanceProfile" => {
            let name = input.name("InstanceProfileName", 128);
            let path = input.path("Path");
            input.finish(call)?;
            let arn =
                account.iam.account.arn("iam", &format!("instance-profile{}{name}", path.unwrap_or("/")));
            authorize(account, call, "iam:CreateInstanceProfile", &arn)?;
            let profile = account.iam.create_instance_profile(name, path, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| write_profile(w, profile, &[])))
        }
        "GetInstanceProfile" => {
            let name = input.name("InstanceProfileName", 128);
            input.finish(call)?;
            authorize(account, call, "iam:GetInstanceProfile", &profile_arn(account, name))?;
            let profile = account.iam.get_instance_profile(name).map_err(iam_error)?;
            let roles = account.iam.instance_profile_roles(name).map_err(iam_error)?;
            Ok(respond(call, |w| write_profile(w, profile, &roles)))
        }
        "AddRoleToInstanceProfile" => {
            let name = input.name("InstanceProfileName", 128);
            let role = input.name("RoleName", 64);
            input.finish(call)?;
            authorize(account, call, "iam:AddRoleToInstanceProfile", &profile_arn(account, name))?;
            // "The caller of this operation must be granted the PassRole permission on the IAM
            // role by a permissions policy" (IAM API reference, AddRoleToInstanceProfile).
            authorize(account, call, "iam:PassRole", &role_arn(account, role))?;
            account.iam.add_role_to_instance_profile(name, role).map_err(iam_error)?;
            Ok(empty(call))
        }

        // --- OpenID Connect providers ---
        "CreateOpenIDConnectProvider" => {
            let url = input.text("Url", 1, 255);
            input.finish(call)?;
            let client_ids = params.list("ClientIDList");
            let thumbprints = params.list("ThumbprintList");
            let host_path = url.strip_prefix("https://").unwrap_or(url).trim_end_matches('/');
            let arn = account.iam.account.arn("iam", &format!("oidc-provider/{host_path}"));
            authorize(account, call, "iam:CreateOpenIDConnectProvider", &arn)?;
            let create = CreateOidcProvider { url, client_ids: &client_ids, thumbprints: &thumbprints };
            let provider =
                account.iam.create_open_id_connect_provider(create, call.now).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.elem("OpenIDConnectProviderArn", &provider.arn);
            }))
        }
        "GetOpenIDConnectProvider" => {
            let arn = input.arn("OpenIDConnectProviderArn");
            input.finish(call)?;
            authorize(account, call, "iam:GetOpenIDConnectProvider", arn)?;
            let provider = account.iam.get_open_id_connect_provider(arn).map_err(iam_error)?;
            Ok(respond(call, |w| {
                w.elem("Url", &provider.url)
                    .text_list("ClientIDList", "member", &provider.client_ids)
                    .text_list("ThumbprintList", "member", &provider.thumbprints)
                    .elem("CreateDate", iso8601(provider.create_date));
            }))
        }
        "DeleteOpenIDConnectProvider" => {
            let arn = input.arn("OpenIDConnectProviderArn");
            input.finish(call)?;
            authorize(account, call, "iam:DeleteOpenIDConnectProvider", arn)?;
            account.iam.delete_open_id_connect_provider(arn).map_err(iam_error)?;
            Ok(empty(call))
        }
        "ListOpenIDConnectProviders" => {
            input.finish(call)?;
            let resource = account.iam.account.arn("iam", "oidc-provider/*");
            authorize(account, call, "iam:ListOpenIDConnectProviders", &resource)?;
            let providers = account.iam.list_open_id_connect_providers();
            Ok(respond(call, |w| {
                w.members("OpenIDConnectProviderList", providers, |w, p| {
                    w.elem("Arn", &p.arn);
                });
            }))
        }

        other => Err(ProtocolError::InvalidAction { action: other.to_owned() }.to_aws_error(&call.protocol)),
    }
}

/// The Query input of one call, read against the model's constraints; every failure is kept
/// and reported together by [`Input::finish`], as AWS reports them.
struct Input<'p> {
    params: &'p Params,
    failures: Vec<ValidationFailure>,
}

// === impl Input ===

impl<'p> Input<'p> {
    fn new(params: &'p Params) -> Self {
        Self { params, failures: Vec::new() }
    }

    /// A required member; a missing one is recorded as `Value null ... Member must not be
    /// null` and read as `""` (never used: [`Input::finish`] fails first).
    fn required(&mut self, name: &str) -> &'p str {
        match self.params.get(name) {
            Some(v) => v,
            None => {
                self.failures.push(ValidationFailure {
                    value: None,
                    member: member(name),
                    constraint: "Member must not be null".to_owned(),
                });
                ""
            }
        }
    }

    fn fail(&mut self, name: &str, value: &str, constraint: impl Into<String>) {
        self.failures.push(ValidationFailure {
            value: Some(value.to_owned()),
            member: member(name),
            constraint: constraint.into(),
        });
    }

    fn length(&mut self, name: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len > max {
            self.fail(name, value, format!("Member must have length less than or equal to {max}"));
        }
        if len < min {
            self.fail(name, value, format!("Member must have length greater than or equal to {min}"));
        }
    }

    fn check_name(&mut self, name: &str, value: &str, max: usize) {
        self.length(name, value, 1, max);
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
            self.fail(name, value, NAME_PATTERN);
        }
    }

    /// A required `[\w+=,.@-]+` name of 1..=`max` characters.
    fn name(&mut self, name: &str, max: usize) -> &'p str {
        let present = self.params.get(name).is_some();
        let value = self.required(name);
        if present {
            self.check_name(name, value, max);
        }
        value
    }

    /// An optional name.
    fn opt_name(&mut self, name: &str, max: usize) -> Option<&'p str> {
        let value = self.params.get(name)?;
        self.check_name(name, value, max);
        Some(value)
    }

    /// A required `arnType` (20..=2048 characters).
    fn arn(&mut self, name: &str) -> &'p str {
        self.text(name, 20, 2048)
    }

    /// A required string of `min..=max` characters.
    fn text(&mut self, name: &str, min: usize, max: usize) -> &'p str {
        let present = self.params.get(name).is_some();
        let value = self.required(name);
        if present {
            self.length(name, value, min, max);
        }
        value
    }

    /// An optional string of `min..=max` characters.
    fn opt_text(&mut self, name: &str, min: usize, max: usize) -> Option<&'p str> {
        let value = self.params.get(name)?;
        self.length(name, value, min, max);
        Some(value)
    }

    /// A required `policyDocumentType`; its content is netlab-iam's to judge.
    fn document(&mut self, name: &str) -> &'p str {
        let present = self.params.get(name).is_some();
        let value = self.required(name);
        if present {
            self.length(name, value, 1, DOCUMENT_MAX);
            let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
            if !value.is_empty() && !value.chars().all(allowed) {
                self.fail(name, value, DOCUMENT_PATTERN);
            }
        }
        value
    }

    /// An optional `pathType`; its shape is netlab-iam's to judge (with IAM's own text).
    fn path(&mut self, name: &str) -> Option<&'p str> {
        self.opt_text(name, 1, 512)
    }

    /// An optional `pathPrefixType` (`\u002F[\u0021-\u007F]*`).
    fn path_prefix(&mut self, name: &str) -> Option<&'p str> {
        let value = self.opt_text(name, 1, 512)?;
        if !value.starts_with('/') || !value.bytes().all(|b| (0x21..=0x7f).contains(&b)) {
            self.fail(name, value, r"Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*");
        }
        Some(value)
    }

    /// An optional integer.
    fn opt_int(&mut self, name: &str) -> Option<u32> {
        let raw = self.params.get(name)?;
        match raw.parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                // botocore checks the type before sending; composed text for other clients.
                self.fail(name, raw, "Member must be an integer");
                None
            }
        }
    }

    /// An optional boolean (`true`/`false`, as botocore serialises them).
    fn opt_bool(&mut self, name: &str) -> Option<bool> {
        let raw = self.params.get(name)?;
        match raw {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.fail(name, raw, "Member must be a boolean");
                None
            }
        }
    }

    /// An optional enum member.
    fn opt_enum(&mut self, name: &str, values: &[&str]) -> Option<&'p str> {
        let raw = self.params.get(name)?;
        if !values.contains(&raw) {
            self.fail(name, raw, format!("Member must satisfy enum value set: [{}]", values.join(", ")));
        }
        Some(raw)
    }

    /// Every failure in one `ValidationError`, or nothing.
    fn finish(&mut self, call: &Call<'_>) -> Result<(), AwsError> {
        if self.failures.is_empty() {
            return Ok(());
        }
        Err(ProtocolError::Validation(std::mem::take(&mut self.failures)).to_aws_error(&call.protocol))
    }
}

/// `RoleName` → `roleName`, as AWS names members in validation messages.
fn member(name: &str) -> String {
    netlab_aws::error::lower_camel(name)
}

/// The user an operation with an optional `UserName` is about: the named one, else the caller
/// if it is a user (a role session must name one).
fn user_or_caller(call: &Call<'_>, name: Option<&str>) -> Result<String, AwsError> {
    match (name, &call.caller.identity) {
        (Some(n), _) => Ok(n.to_owned()),
        (None, Identity::User { name, .. }) => Ok(name.clone()),
        (None, Identity::AssumedRole { .. }) => {
            Err(AwsError::sender("ValidationError", NON_USER_CREDENTIALS))
        }
    }
}

/// A role's ARN, or for a role that does not exist the ARN it would have at path `/`.
fn role_arn(account: &Account, name: &str) -> String {
    match account.iam.get_role(name) {
        Ok(r) => r.arn.clone(),
        Err(_) => account.iam.account.arn("iam", &format!("role/{name}")),
    }
}

/// A user's ARN, or the one it would have at path `/`.
fn user_arn(account: &Account, name: &str) -> String {
    match account.iam.get_user(name) {
        Ok(u) => u.arn.clone(),
        Err(_) => account.iam.account.arn("iam", &format!("user/{name}")),
    }
}

/// An instance profile's ARN, or the one it would have at path `/`.
fn profile_arn(account: &Account, name: &str) -> String {
    match account.iam.get_instance_profile(name) {
        Ok(p) => p.arn.clone(),
        Err(_) => account.iam.account.arn("iam", &format!("instance-profile/{name}")),
    }
}

/// Which operation a role is written for: each returns a different subset of `Role`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoleView {
    /// CreateRole: no `MaxSessionDuration`, no `RoleLastUsed`.
    Created,
    /// GetRole: everything, `RoleLastUsed` empty (the lab does not track use).
    Get,
    /// ListRoles and GetInstanceProfile's `Roles`: no `RoleLastUsed`.
    Listed,
}

fn write_role(w: &mut XmlWriter, role: &Role, view: RoleView) {
    w.node("Role", |w| write_role_fields(w, role, view));
}

fn write_role_fields(w: &mut XmlWriter, role: &Role, view: RoleView) {
    w.elem("Path", &role.path)
        .elem("RoleName", &role.name)
        .elem("RoleId", &role.id)
        .elem("Arn", &role.arn)
        .elem("CreateDate", iso8601(role.create_date))
        .elem("AssumeRolePolicyDocument", role.assume_role_policy.url_encoded())
        .opt_elem("Description", role.description.as_deref());
    if view != RoleView::Created {
        w.elem("MaxSessionDuration", role.max_session_duration);
    }
    if view == RoleView::Get {
        w.node("RoleLastUsed", |_| {});
    }
}

/// Which operation a managed policy is written for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PolicyView {
    /// CreatePolicy.
    Created,
    /// GetPolicy: the only one with `Description` ("This element is included in the response
    /// to the GetPolicy operation. It is not included in the response to the ListPolicies
    /// operation", IAM API reference, `Policy`).
    Get,
    /// ListPolicies.
    Listed,
}

fn write_policy(w: &mut XmlWriter, policy: &ManagedPolicy, attachments: usize, view: PolicyView) {
    w.elem("PolicyName", &policy.name)
        .elem("PolicyId", &policy.id)
        .elem("Arn", &policy.arn)
        .elem("Path", &policy.path)
        .elem("DefaultVersionId", &policy.default_version_id)
        .elem("AttachmentCount", attachments)
        .elem("PermissionsBoundaryUsageCount", 0)
        .elem("IsAttachable", true);
    if view == PolicyView::Get {
        w.opt_elem("Description", policy.description.as_deref());
    }
    w.elem("CreateDate", iso8601(policy.create_date)).elem("UpdateDate", iso8601(policy.update_date));
}

fn write_user(w: &mut XmlWriter, user: &User) {
    w.node("User", |w| {
        w.elem("Path", &user.path)
            .elem("UserName", &user.name)
            .elem("UserId", &user.id)
            .elem("Arn", &user.arn)
            .elem("CreateDate", iso8601(user.create_date));
    });
}

fn write_profile(w: &mut XmlWriter, profile: &InstanceProfile, roles: &[&Role]) {
    w.node("InstanceProfile", |w| {
        w.elem("Path", &profile.path)
            .elem("InstanceProfileName", &profile.name)
            .elem("InstanceProfileId", &profile.id)
            .elem("Arn", &profile.arn)
            .elem("CreateDate", iso8601(profile.create_date))
            .members("Roles", roles, |w, r| write_role_fields(w, r, RoleView::Listed));
    });
}

fn respond(call: &Call<'_>, result: impl FnOnce(&mut XmlWriter)) -> http::Response<Bytes> {
    protocol::query_response(call.action, IAM_XMLNS, call.request_id, result)
}

fn empty(call: &Call<'_>) -> http::Response<Bytes> {
    protocol::query_empty_response(call.action, IAM_XMLNS, call.request_id)
}

#[cfg(test)]
pub(super) mod tests;
