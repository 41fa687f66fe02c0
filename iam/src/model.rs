//! The account's identity entities as IAM models them: users and their access keys, roles,
//! managed policies, instance profiles and OpenID Connect providers. Plain serde data, so the
//! cloud persists the whole [`Directory`](crate::Directory) as one JSON file.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::PolicyDocument;

/// The account the directory models.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The 12-digit account ID.
    pub id: String,
    /// The ARN partition (`aws`).
    pub partition: String,
    /// Seeds every identifier and secret the directory issues (see [`crate::id`]); the same
    /// seed gives the same admin key.
    pub seed: String,
}

/// The account ID the lab uses unless configured otherwise.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// An IAM user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `UserName`.
    pub name: String,
    /// `UserId` (`AIDA...`).
    pub id: String,
    /// `arn:aws:iam::<account>:user<path><name>`.
    pub arn: String,
    /// `Path` (`/` by default).
    pub path: String,
    /// `CreateDate`.
    pub create_date: Timestamp,
    /// Attached managed policy ARNs, in attachment order.
    pub attached_policies: Vec<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
}

/// Whether an access key may sign requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// The key signs requests.
    Active,
    /// The key is refused (`InvalidClientTokenId`).
    Inactive,
}

/// A user's long-term access key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA` + 16 characters.
    pub access_key_id: String,
    /// The 40-character secret.
    pub secret_access_key: String,
    /// The owning user.
    pub user_name: String,
    /// `Active` or `Inactive`.
    pub status: KeyStatus,
    /// `CreateDate`.
    pub create_date: Timestamp,
}

/// An IAM role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Role {
    /// `RoleName`.
    pub name: String,
    /// `RoleId` (`AROA...`).
    pub id: String,
    /// `arn:aws:iam::<account>:role<path><name>`.
    pub arn: String,
    /// `Path`.
    pub path: String,
    /// The trust policy (`AssumeRolePolicyDocument`), with its original text.
    pub assume_role_policy: PolicyDocument,
    /// `Description`.
    pub description: Option<String>,
    /// `MaxSessionDuration` in seconds (3600..=43200, default 3600).
    pub max_session_duration: u32,
    /// Attached managed policy ARNs, in attachment order.
    pub attached_policies: Vec<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// `CreateDate`.
    pub create_date: Timestamp,
}

/// A managed policy: an AWS managed one from the catalogue or a customer managed one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    /// `PolicyName`.
    pub name: String,
    /// `PolicyId` (`ANPA...`).
    pub id: String,
    /// `arn:aws:iam::aws:policy/<name>` or `arn:aws:iam::<account>:policy<path><name>`.
    pub arn: String,
    /// `Path`.
    pub path: String,
    /// `DefaultVersionId`.
    pub default_version_id: String,
    /// `Description`.
    pub description: Option<String>,
    /// The default version's document.
    pub document: PolicyDocument,
    /// `CreateDate`.
    pub create_date: Timestamp,
    /// `UpdateDate`.
    pub update_date: Timestamp,
    /// Whether AWS owns it (not deletable, `Scope=AWS` in ListPolicies).
    pub aws_managed: bool,
}

/// `AttachedPolicies` entries: what ListAttachedRolePolicies returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedPolicy {
    /// `PolicyName`.
    pub policy_name: String,
    /// `PolicyArn`.
    pub policy_arn: String,
}

/// An instance profile: how EC2 instances get a role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProfile {
    /// `InstanceProfileName`.
    pub name: String,
    /// `InstanceProfileId` (`AIPA...`).
    pub id: String,
    /// `arn:aws:iam::<account>:instance-profile<path><name>`.
    pub arn: String,
    /// `Path`.
    pub path: String,
    /// Role names (at most one, as AWS allows).
    pub roles: Vec<String>,
    /// `CreateDate`.
    pub create_date: Timestamp,
}

/// An IAM OpenID Connect provider: the IRSA issuer of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcProvider {
    /// `arn:aws:iam::<account>:oidc-provider/<host/path>`.
    pub arn: String,
    /// `Url` without the scheme, as IAM stores and returns it.
    pub url: String,
    /// `ClientIDList` (audiences; `sts.amazonaws.com` for IRSA).
    pub client_ids: Vec<String>,
    /// `ThumbprintList`.
    pub thumbprints: Vec<String>,
    /// `CreateDate`.
    pub create_date: Timestamp,
}

// === impl Account ===

impl Account {
    /// The lab's default account: `123456789012` in `aws`, seed `netlab`.
    pub fn new(id: impl Into<String>, seed: impl Into<String>) -> Self {
        Self { id: id.into(), partition: "aws".to_owned(), seed: seed.into() }
    }

    /// `arn:<partition>:<service>::<account>:<resource>` (IAM and STS ARNs have no region).
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}::{}:{resource}", self.partition, self.id)
    }
}

impl Default for Account {
    fn default() -> Self {
        Self::new(DEFAULT_ACCOUNT_ID, "netlab")
    }
}
