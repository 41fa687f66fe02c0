//! The [`Directory`]: one account's IAM state and the IAM operations on it, each answering
//! with a typed result or AWS's error code and message.
//!
//! Messages follow real AWS output as seen in CLI/SDK error reports and moto's tests:
//! "The role with name X cannot be found.", "Role with name X already exists.", "Policy <arn>
//! does not exist or is not attachable.", "Policy <arn> was not found.", "Cannot delete entity,
//! must detach all policies first.", "Instance Profile X cannot be found.", quotas as
//! "Cannot exceed quota for PoliciesPerRole: 10". Parameter constraints are botocore's
//! `iam/2010-05-08` model (`roleNameType` `[\w+=,.@-]+` 1..64, `pathType`,
//! `roleMaxSessionDurationType` 3600..43200).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Violation};
use crate::eval::{self, Context, Decision, PolicySource, Request};
use crate::id::IdGen;
use crate::managed::{self, AwsManagedPolicy};
use crate::model::{
    AccessKey, Account, AttachedPolicy, InstanceProfile, KeyStatus, ManagedPolicy, OidcProvider, Role, User,
};
use crate::policy::{PolicyDocument, PolicyKind, invalid_principal};
use crate::sts::{Identity, Session};

/// The lab's administrator, created by [`Directory::bootstrap`].
pub const ADMIN_USER: &str = "admin";
/// Attached managed policies per role or user (IAM's default quota).
pub const POLICIES_PER_ROLE: usize = 10;
/// Access keys per user.
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// `MaxSessionDuration` when CreateRole does not set one.
pub const DEFAULT_MAX_SESSION_DURATION: u32 = 3600;
/// The trust policy of EC2 node roles.
pub const EC2_TRUST_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "Service": "ec2.amazonaws.com"
      },
      "Action": "sts:AssumeRole"
    }
  ]
}"#;
/// The managed policies of an EKS node role, as the EKS User Guide's node IAM role has them.
pub const NODE_ROLE_POLICIES: [&str; 3] =
    ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"];

/// One account's identities, policies and issued sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Directory {
    /// The account.
    pub account: Account,
    pub(crate) ids: IdGen,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) access_keys: BTreeMap<String, AccessKey>,
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) policies: BTreeMap<String, ManagedPolicy>,
    pub(crate) instance_profiles: BTreeMap<String, InstanceProfile>,
    pub(crate) oidc_providers: BTreeMap<String, OidcProvider>,
    pub(crate) sessions: BTreeMap<String, Session>,
}

/// CreateRole's parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateRole<'a> {
    /// `RoleName`.
    pub name: &'a str,
    /// `Path` (default `/`).
    pub path: Option<&'a str>,
    /// `AssumeRolePolicyDocument`.
    pub assume_role_policy_document: &'a str,
    /// `Description`.
    pub description: Option<&'a str>,
    /// `MaxSessionDuration` (default 3600).
    pub max_session_duration: Option<u32>,
}

/// CreateOpenIDConnectProvider's parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateOidcProvider<'a> {
    /// `Url` (`https://oidc.eks.<region>.amazonaws.com/id/<id>`).
    pub url: &'a str,
    /// `ClientIDList`.
    pub client_ids: &'a [&'a str],
    /// `ThumbprintList` (40 hex characters each).
    pub thumbprints: &'a [&'a str],
}

/// The AWS managed policies, parsed once.
static AWS_MANAGED: LazyLock<Vec<(&'static AwsManagedPolicy, PolicyDocument)>> = LazyLock::new(|| {
    managed::CATALOGUE
        .iter()
        .map(|p| {
            // The catalogue is constant text; `managed::tests::catalogue_parses` proves every
            // document parses.
            let doc = PolicyDocument::parse_stored(p.document).expect("catalogued policies parse");
            (p, doc)
        })
        .collect()
});

// === impl Directory ===

impl Directory {
    /// An empty directory for `account`.
    pub fn new(account: Account) -> Self {
        Self {
            ids: IdGen::new(account.seed.clone()),
            account,
            users: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            policies: BTreeMap::new(),
            instance_profiles: BTreeMap::new(),
            oidc_providers: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }

    /// A directory with the lab's administrator: user `admin` with `AdministratorAccess` and
    /// an access key derived from the account's seed (see [`Directory::admin_access_key`]).
    pub fn bootstrap(account: Account, now: Timestamp) -> Self {
        let mut dir = Self::new(account);
        let admin = dir.create_user_inner(ADMIN_USER, "/", now);
        let admin_policy = dir.aws_policy_arn("AdministratorAccess");
        if let Some(user) = dir.users.get_mut(&admin) {
            user.attached_policies.push(admin_policy);
        }
        let (access_key_id, secret_access_key) = dir.ids.fixed_key_pair("admin-access-key");
        dir.access_keys.insert(
            access_key_id.clone(),
            AccessKey {
                access_key_id,
                secret_access_key,
                user_name: admin,
                status: KeyStatus::Active,
                create_date: now,
            },
        );
        dir
    }

    /// The administrator's access key (the lab prints it).
    pub fn admin_access_key(&self) -> Option<&AccessKey> {
        self.access_keys.values().find(|k| k.user_name == ADMIN_USER)
    }

    /// Loads a directory persisted with `serde_json`.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// The directory as pretty JSON, for persisting.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    fn aws_policy_arn(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:policy/{name}", self.account.partition, managed::AWS_ACCOUNT)
    }

    // --- users and access keys ---

    /// CreateUser.
    pub fn create_user(&mut self, name: &str, path: Option<&str>, now: Timestamp) -> Result<&User> {
        check_name(name, "userName", 64)?;
        let path = check_path(path)?;
        if self.users.keys().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Error::EntityAlreadyExists(format!("User with name {name} already exists.")));
        }
        let name = self.create_user_inner(name, path, now);
        self.get_user(&name)
    }

    fn create_user_inner(&mut self, name: &str, path: &str, now: Timestamp) -> String {
        let user = User {
            name: name.to_owned(),
            id: self.ids.unique_id("AIDA"),
            arn: self.account.arn("iam", &format!("user{path}{name}")),
            path: path.to_owned(),
            create_date: now,
            attached_policies: Vec::new(),
            inline_policies: BTreeMap::new(),
        };
        self.users.insert(name.to_owned(), user);
        name.to_owned()
    }

    /// GetUser.
    pub fn get_user(&self, name: &str) -> Result<&User> {
        self.users
            .get(name)
            .ok_or_else(|| Error::NoSuchEntity(format!("The user with name {name} cannot be found.")))
    }

    /// CreateAccessKey: a new active key for the user (at most two per user).
    pub fn create_access_key(&mut self, user_name: &str, now: Timestamp) -> Result<AccessKey> {
        self.get_user(user_name)?;
        if self.access_keys.values().filter(|k| k.user_name == user_name).count() >= ACCESS_KEYS_PER_USER {
            return Err(Error::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"
            )));
        }
        let (access_key_id, secret_access_key) = self.ids.key_pair("AKIA");
        let key = AccessKey {
            access_key_id: access_key_id.clone(),
            secret_access_key,
            user_name: user_name.to_owned(),
            status: KeyStatus::Active,
            create_date: now,
        };
        self.access_keys.insert(access_key_id, key.clone());
        Ok(key)
    }

    /// ListAccessKeys.
    pub fn list_access_keys(&self, user_name: &str) -> Result<Vec<&AccessKey>> {
        self.get_user(user_name)?;
        Ok(self.access_keys.values().filter(|k| k.user_name == user_name).collect())
    }

    /// UpdateAccessKey: activate or deactivate a key.
    pub fn update_access_key(
        &mut self,
        user_name: &str,
        access_key_id: &str,
        status: KeyStatus,
    ) -> Result<()> {
        self.get_user(user_name)?;
        match self.access_keys.get_mut(access_key_id).filter(|k| k.user_name == user_name) {
            Some(key) => {
                key.status = status;
                Ok(())
            }
            None => Err(no_such_key(access_key_id)),
        }
    }

    /// DeleteAccessKey.
    pub fn delete_access_key(&mut self, user_name: &str, access_key_id: &str) -> Result<()> {
        self.get_user(user_name)?;
        if self.access_keys.get(access_key_id).is_none_or(|k| k.user_name != user_name) {
            return Err(no_such_key(access_key_id));
        }
        self.access_keys.remove(access_key_id);
        Ok(())
    }

    /// AttachUserPolicy.
    pub fn attach_user_policy(&mut self, user_name: &str, policy_arn: &str) -> Result<()> {
        self.get_user(user_name)?;
        self.attachable(policy_arn)?;
        let user = self.users.get_mut(user_name).ok_or_else(|| no_such_user(user_name))?;
        attach(&mut user.attached_policies, policy_arn, "PoliciesPerUser")
    }

    /// DetachUserPolicy.
    pub fn detach_user_policy(&mut self, user_name: &str, policy_arn: &str) -> Result<()> {
        let user = self.users.get_mut(user_name).ok_or_else(|| no_such_user(user_name))?;
        detach(&mut user.attached_policies, policy_arn)
    }

    /// PutUserPolicy.
    pub fn put_user_policy(&mut self, user_name: &str, policy_name: &str, document: &str) -> Result<()> {
        check_name(policy_name, "policyName", 128)?;
        self.get_user(user_name)?;
        let doc = PolicyDocument::parse(document, PolicyKind::Inline)?;
        let user = self.users.get_mut(user_name).ok_or_else(|| no_such_user(user_name))?;
        user.inline_policies.insert(policy_name.to_owned(), doc);
        Ok(())
    }

    // --- roles ---

    /// CreateRole.
    pub fn create_role(&mut self, input: CreateRole<'_>, now: Timestamp) -> Result<&Role> {
        let mut violations = name_violations(input.name, "roleName", 64);
        let max = input.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_DURATION);
        if max < 3600 {
            violations.push(Violation::new(
                max,
                "maxSessionDuration",
                "Member must have value greater than or equal to 3600",
            ));
        } else if max > 43200 {
            violations.push(Violation::new(
                max,
                "maxSessionDuration",
                "Member must have value less than or equal to 43200",
            ));
        }
        if !violations.is_empty() {
            return Err(Error::constraints(violations));
        }
        let path = check_path(input.path)?;
        if self.roles.keys().any(|n| n.eq_ignore_ascii_case(input.name)) {
            return Err(Error::EntityAlreadyExists(format!("Role with name {} already exists.", input.name)));
        }
        let trust = self.parse_trust(input.assume_role_policy_document)?;
        let role = Role {
            name: input.name.to_owned(),
            id: self.ids.unique_id("AROA"),
            arn: self.account.arn("iam", &format!("role{path}{}", input.name)),
            path: path.to_owned(),
            assume_role_policy: trust,
            description: input.description.map(str::to_owned),
            max_session_duration: max,
            attached_policies: Vec::new(),
            inline_policies: BTreeMap::new(),
            create_date: now,
        };
        self.roles.insert(input.name.to_owned(), role);
        self.get_role(input.name)
    }

    /// Parses a trust policy and checks that the users and roles of this account it names
    /// exist (IAM resolves them to unique IDs when it stores the policy).
    fn parse_trust(&self, text: &str) -> Result<PolicyDocument> {
        let doc = PolicyDocument::parse(text, PolicyKind::Trust)?;
        for p in doc.aws_principals() {
            let own = |kind: &str| {
                let prefix = self.account.arn("iam", kind);
                p.strip_prefix(&prefix).map(|rest| rest.rsplit('/').next().unwrap_or(rest).to_owned())
            };
            if let Some(name) = own("user/")
                && !self.users.contains_key(&name)
            {
                return Err(invalid_principal(p));
            }
            if let Some(name) = own("role/")
                && !self.roles.contains_key(&name)
            {
                return Err(invalid_principal(p));
            }
        }
        Ok(doc)
    }

    /// GetRole.
    pub fn get_role(&self, name: &str) -> Result<&Role> {
        self.roles.get(name).ok_or_else(|| no_such_role(name))
    }

    /// The role with this ARN.
    pub fn role_by_arn(&self, arn: &str) -> Option<&Role> {
        self.roles.values().find(|r| r.arn == arn)
    }

    /// ListRoles, optionally under a path prefix, by name.
    pub fn list_roles(&self, path_prefix: Option<&str>) -> Vec<&Role> {
        let prefix = path_prefix.unwrap_or("/");
        self.roles.values().filter(|r| r.path.starts_with(prefix)).collect()
    }

    /// UpdateAssumeRolePolicy.
    pub fn update_assume_role_policy(&mut self, role_name: &str, document: &str) -> Result<()> {
        self.get_role(role_name)?;
        let trust = self.parse_trust(document)?;
        let role = self.roles.get_mut(role_name).ok_or_else(|| no_such_role(role_name))?;
        role.assume_role_policy = trust;
        Ok(())
    }

    /// DeleteRole: refused while the role is in an instance profile or has policies.
    pub fn delete_role(&mut self, name: &str) -> Result<()> {
        let role = self.get_role(name)?;
        if self.instance_profiles.values().any(|p| p.roles.iter().any(|r| r == name)) {
            return Err(Error::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".into(),
            ));
        }
        if !role.attached_policies.is_empty() {
            return Err(Error::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(Error::DeleteConflict("Cannot delete entity, must delete policies first.".into()));
        }
        self.roles.remove(name);
        Ok(())
    }

    /// AttachRolePolicy.
    pub fn attach_role_policy(&mut self, role_name: &str, policy_arn: &str) -> Result<()> {
        self.get_role(role_name)?;
        self.attachable(policy_arn)?;
        let role = self.roles.get_mut(role_name).ok_or_else(|| no_such_role(role_name))?;
        attach(&mut role.attached_policies, policy_arn, "PoliciesPerRole")
    }

    /// DetachRolePolicy.
    pub fn detach_role_policy(&mut self, role_name: &str, policy_arn: &str) -> Result<()> {
        let role = self.roles.get_mut(role_name).ok_or_else(|| no_such_role(role_name))?;
        detach(&mut role.attached_policies, policy_arn)
    }

    /// ListAttachedRolePolicies.
    pub fn list_attached_role_policies(&self, role_name: &str) -> Result<Vec<AttachedPolicy>> {
        let role = self.get_role(role_name)?;
        Ok(role
            .attached_policies
            .iter()
            .map(|arn| AttachedPolicy {
                policy_name: arn.rsplit('/').next().unwrap_or(arn).to_owned(),
                policy_arn: arn.clone(),
            })
            .collect())
    }

    /// PutRolePolicy: adds or replaces an inline policy.
    pub fn put_role_policy(&mut self, role_name: &str, policy_name: &str, document: &str) -> Result<()> {
        check_name(policy_name, "policyName", 128)?;
        self.get_role(role_name)?;
        let doc = PolicyDocument::parse(document, PolicyKind::Inline)?;
        let role = self.roles.get_mut(role_name).ok_or_else(|| no_such_role(role_name))?;
        role.inline_policies.insert(policy_name.to_owned(), doc);
        Ok(())
    }

    /// GetRolePolicy.
    pub fn get_role_policy(&self, role_name: &str, policy_name: &str) -> Result<&PolicyDocument> {
        self.get_role(role_name)?
            .inline_policies
            .get(policy_name)
            .ok_or_else(|| no_such_role_policy(policy_name))
    }

    /// DeleteRolePolicy.
    pub fn delete_role_policy(&mut self, role_name: &str, policy_name: &str) -> Result<()> {
        let role = self.roles.get_mut(role_name).ok_or_else(|| no_such_role(role_name))?;
        role.inline_policies.remove(policy_name).map(|_| ()).ok_or_else(|| no_such_role_policy(policy_name))
    }

    /// ListRolePolicies: inline policy names, sorted.
    pub fn list_role_policies(&self, role_name: &str) -> Result<Vec<&str>> {
        Ok(self.get_role(role_name)?.inline_policies.keys().map(String::as_str).collect())
    }

    // --- managed policies ---

    /// CreatePolicy (a customer managed policy).
    pub fn create_policy(
        &mut self,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<&ManagedPolicy> {
        check_name(name, "policyName", 128)?;
        let path = check_path(path)?;
        if self.policies.values().any(|p| p.name.eq_ignore_ascii_case(name)) {
            return Err(Error::EntityAlreadyExists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        let doc = PolicyDocument::parse(document, PolicyKind::Managed)?;
        let arn = self.account.arn("iam", &format!("policy{path}{name}"));
        let policy = ManagedPolicy {
            name: name.to_owned(),
            id: self.ids.unique_id("ANPA"),
            arn: arn.clone(),
            path: path.to_owned(),
            default_version_id: "v1".to_owned(),
            description: description.map(str::to_owned),
            document: doc,
            create_date: now,
            update_date: now,
            aws_managed: false,
        };
        self.policies.insert(arn.clone(), policy);
        self.policies.get(&arn).ok_or_else(|| no_such_policy(&arn))
    }

    /// GetPolicy: a customer managed policy or a catalogued AWS managed one.
    pub fn get_policy(&self, arn: &str) -> Result<ManagedPolicy> {
        self.find_policy(arn).ok_or_else(|| no_such_policy(arn))
    }

    /// ListPolicies (`Scope=All`): AWS managed then customer managed.
    pub fn list_policies(&self) -> Vec<ManagedPolicy> {
        let aws = AWS_MANAGED.iter().filter_map(|(p, _)| self.find_policy(&self.aws_policy_arn(p.name)));
        aws.chain(self.policies.values().cloned()).collect()
    }

    /// How many users and roles have the policy attached (`AttachmentCount`).
    pub fn attachment_count(&self, arn: &str) -> usize {
        let users = self.users.values().filter(|u| u.attached_policies.iter().any(|a| a == arn)).count();
        let roles = self.roles.values().filter(|r| r.attached_policies.iter().any(|a| a == arn)).count();
        users + roles
    }

    fn find_policy(&self, arn: &str) -> Option<ManagedPolicy> {
        if let Some(p) = self.policies.get(arn) {
            return Some(p.clone());
        }
        let name = managed::name_from_arn(arn)?;
        let (meta, doc) = AWS_MANAGED.iter().find(|(p, _)| p.name == name)?;
        if self.aws_policy_arn(name) != arn {
            return None;
        }
        // AWS managed policies predate the lab; their dates are fixed.
        let epoch = Timestamp::UNIX_EPOCH;
        let mut ids = IdGen::new(format!("aws-managed/{name}"));
        Some(ManagedPolicy {
            name: meta.name.to_owned(),
            id: ids.unique_id("ANPA"),
            arn: arn.to_owned(),
            path: meta.path.to_owned(),
            default_version_id: meta.version_id.to_owned(),
            description: Some(meta.description.to_owned()),
            document: doc.clone(),
            create_date: epoch,
            update_date: epoch,
            aws_managed: true,
        })
    }

    fn policy_document(&self, arn: &str) -> Option<PolicyDocument> {
        if let Some(p) = self.policies.get(arn) {
            return Some(p.document.clone());
        }
        self.find_policy(arn).map(|p| p.document)
    }

    fn attachable(&self, arn: &str) -> Result<()> {
        match self.find_policy(arn) {
            Some(_) => Ok(()),
            None => Err(Error::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))),
        }
    }

    // --- instance profiles ---

    /// CreateInstanceProfile.
    pub fn create_instance_profile(
        &mut self,
        name: &str,
        path: Option<&str>,
        now: Timestamp,
    ) -> Result<&InstanceProfile> {
        check_name(name, "instanceProfileName", 128)?;
        let path = check_path(path)?;
        if self.instance_profiles.keys().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(Error::EntityAlreadyExists(format!("Instance Profile {name} already exists.")));
        }
        let profile = InstanceProfile {
            name: name.to_owned(),
            id: self.ids.unique_id("AIPA"),
            arn: self.account.arn("iam", &format!("instance-profile{path}{name}")),
            path: path.to_owned(),
            roles: Vec::new(),
            create_date: now,
        };
        self.instance_profiles.insert(name.to_owned(), profile);
        self.get_instance_profile(name)
    }

    /// GetInstanceProfile.
    pub fn get_instance_profile(&self, name: &str) -> Result<&InstanceProfile> {
        self.instance_profiles
            .get(name)
            .ok_or_else(|| Error::NoSuchEntity(format!("Instance Profile {name} cannot be found.")))
    }

    /// The roles of an instance profile, for GetInstanceProfile's `Roles`.
    pub fn instance_profile_roles(&self, name: &str) -> Result<Vec<&Role>> {
        let profile = self.get_instance_profile(name)?;
        Ok(profile.roles.iter().filter_map(|r| self.roles.get(r)).collect())
    }

    /// AddRoleToInstanceProfile (a profile holds one role).
    pub fn add_role_to_instance_profile(&mut self, profile_name: &str, role_name: &str) -> Result<()> {
        self.get_instance_profile(profile_name)?;
        self.get_role(role_name)?;
        let profile = self.instance_profiles.get_mut(profile_name).ok_or_else(|| {
            Error::NoSuchEntity(format!("Instance Profile {profile_name} cannot be found."))
        })?;
        if !profile.roles.is_empty() {
            return Err(Error::LimitExceeded(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into(),
            ));
        }
        profile.roles.push(role_name.to_owned());
        Ok(())
    }

    /// Creates an EKS node role for EC2 instances: the EC2 trust policy, the node policies
    /// ([`NODE_ROLE_POLICIES`]) and an instance profile of the same name holding the role.
    pub fn create_node_role(&mut self, name: &str, now: Timestamp) -> Result<&InstanceProfile> {
        self.create_node_role_with(name, &NODE_ROLE_POLICIES, now)
    }

    /// [`Directory::create_node_role`] with a chosen set of AWS managed policy names (a lab
    /// may leave out `AmazonEC2ContainerRegistryReadOnly` to break image pulls).
    pub fn create_node_role_with(
        &mut self,
        name: &str,
        policies: &[&str],
        now: Timestamp,
    ) -> Result<&InstanceProfile> {
        self.create_role(
            CreateRole {
                name,
                assume_role_policy_document: EC2_TRUST_POLICY,
                description: Some("Allows EC2 instances to call AWS services on your behalf."),
                ..CreateRole::default()
            },
            now,
        )?;
        for p in policies {
            let arn = self.aws_policy_arn(p);
            self.attach_role_policy(name, &arn)?;
        }
        self.create_instance_profile(name, None, now)?;
        self.add_role_to_instance_profile(name, name)?;
        self.get_instance_profile(name)
    }

    // --- OpenID Connect providers ---

    /// CreateOpenIDConnectProvider.
    pub fn create_open_id_connect_provider(
        &mut self,
        input: CreateOidcProvider<'_>,
        now: Timestamp,
    ) -> Result<&OidcProvider> {
        let Some(host_path) = input.url.strip_prefix("https://").filter(|h| !h.is_empty()) else {
            return Err(Error::Validation("Invalid Open ID Connect Provider URL".into()));
        };
        let host_path = host_path.trim_end_matches('/');
        if input.thumbprints.len() > 5 {
            return Err(Error::InvalidInput("Thumbprint list must contain fewer than 5 entries.".into()));
        }
        if let Some(t) = input.thumbprints.iter().find(|t| t.len() != 40) {
            let rule = if t.len() < 40 { "greater than or equal to 40" } else { "less than or equal to 40" };
            return Err(Error::constraint(
                format!("[{}]", input.thumbprints.join(", ")),
                "thumbprintList",
                &format!("Member must satisfy constraint: [Member must have length {rule}]"),
            ));
        }
        let arn = self.account.arn("iam", &format!("oidc-provider/{host_path}"));
        if self.oidc_providers.contains_key(&arn) {
            return Err(Error::EntityAlreadyExists(format!(
                "Provider with url {} already exists.",
                input.url
            )));
        }
        let provider = OidcProvider {
            arn: arn.clone(),
            url: host_path.to_owned(),
            client_ids: input.client_ids.iter().map(|s| (*s).to_owned()).collect(),
            thumbprints: input.thumbprints.iter().map(|s| (*s).to_owned()).collect(),
            create_date: now,
        };
        self.oidc_providers.insert(arn.clone(), provider);
        self.get_open_id_connect_provider(&arn)
    }

    /// GetOpenIDConnectProvider.
    pub fn get_open_id_connect_provider(&self, arn: &str) -> Result<&OidcProvider> {
        self.oidc_providers
            .get(arn)
            .ok_or_else(|| Error::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}")))
    }

    /// DeleteOpenIDConnectProvider.
    pub fn delete_open_id_connect_provider(&mut self, arn: &str) -> Result<()> {
        self.oidc_providers
            .remove(arn)
            .map(|_| ())
            .ok_or_else(|| Error::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}")))
    }

    /// ListOpenIDConnectProviders.
    pub fn list_open_id_connect_providers(&self) -> Vec<&OidcProvider> {
        self.oidc_providers.values().collect()
    }

    // --- evaluation ---

    /// The identity policies that apply to a caller: a user's, or for a role session its
    /// role's (attached managed, then inline).
    pub fn identity_policies(&self, identity: &Identity) -> Vec<(PolicySource, PolicyDocument)> {
        let (attached, inline, owner) = match identity {
            Identity::User { name, .. } => match self.users.get(name) {
                Some(u) => (&u.attached_policies, &u.inline_policies, &u.arn),
                None => return Vec::new(),
            },
            Identity::AssumedRole { role_name, .. } => match self.roles.get(role_name) {
                Some(r) => (&r.attached_policies, &r.inline_policies, &r.arn),
                None => return Vec::new(),
            },
        };
        let managed = attached
            .iter()
            .filter_map(|arn| Some((PolicySource::Managed { arn: arn.clone() }, self.policy_document(arn)?)));
        let inline = inline.iter().map(|(name, doc)| {
            (PolicySource::Inline { owner: owner.clone(), name: name.clone() }, doc.clone())
        });
        managed.chain(inline).collect()
    }

    /// Whether the caller's identity policies allow `action` on `resource`; the decision
    /// names the deciding statement and renders AWS's denial message.
    pub fn authorize(
        &self,
        identity: &Identity,
        action: &str,
        resource: &str,
        context: &Context,
    ) -> Decision {
        let policies = self.identity_policies(identity);
        let request = Request { action, resource, context };
        eval::evaluate(policies.iter().map(|(s, d)| (s.clone(), d)), &request)
    }

    /// The global condition keys AWS sets for every request by this caller: `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:userid`, `aws:username` (users),
    /// `aws:CurrentTime`, `aws:EpochTime`. The cloud adds `aws:SourceIp` and the like.
    pub fn request_context(&self, identity: &Identity, now: Timestamp) -> Context {
        let mut ctx = Context::new();
        ctx.insert("aws:PrincipalArn", identity.principal_arn())
            .insert("aws:PrincipalAccount", self.account.id.clone())
            .insert("aws:userid", identity.user_id())
            .insert("aws:CurrentTime", now.to_string())
            .insert("aws:EpochTime", now.as_second().to_string());
        match identity {
            Identity::User { name, .. } => {
                ctx.insert("aws:PrincipalType", "User").insert("aws:username", name.clone());
            }
            Identity::AssumedRole { .. } => {
                ctx.insert("aws:PrincipalType", "AssumedRole");
            }
        }
        ctx
    }
}

fn attach(list: &mut Vec<String>, arn: &str, quota: &str) -> Result<()> {
    if list.iter().any(|a| a == arn) {
        return Ok(());
    }
    if list.len() >= POLICIES_PER_ROLE {
        return Err(Error::LimitExceeded(format!("Cannot exceed quota for {quota}: {POLICIES_PER_ROLE}")));
    }
    list.push(arn.to_owned());
    Ok(())
}

fn detach(list: &mut Vec<String>, arn: &str) -> Result<()> {
    let before = list.len();
    list.retain(|a| a != arn);
    if list.len() == before {
        return Err(no_such_policy(arn));
    }
    Ok(())
}

fn no_such_role(name: &str) -> Error {
    Error::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn no_such_user(name: &str) -> Error {
    Error::NoSuchEntity(format!("The user with name {name} cannot be found."))
}

fn no_such_policy(arn: &str) -> Error {
    Error::NoSuchEntity(format!("Policy {arn} was not found."))
}

fn no_such_role_policy(name: &str) -> Error {
    Error::NoSuchEntity(format!("The role policy with name {name} cannot be found."))
}

fn no_such_key(id: &str) -> Error {
    Error::NoSuchEntity(format!("The Access Key with id {id} cannot be found"))
}

/// The `[\w+=,.@-]+` name constraint of users, roles, policies and profiles.
fn name_violations(name: &str, field: &str, max: usize) -> Vec<Violation> {
    let mut v = Vec::new();
    if name.chars().count() > max {
        v.push(Violation::new(name, field, &format!("Member must have length less than or equal to {max}")));
    }
    if name.is_empty() {
        v.push(Violation::new(name, field, "Member must have length greater than or equal to 1"));
    }
    if !name.chars().all(is_name_char) {
        v.push(Violation::new(name, field, r"Member must satisfy regular expression pattern: [\w+=,.@-]+"));
    }
    v
}

fn check_name(name: &str, field: &str, max: usize) -> Result<()> {
    let v = name_violations(name, field, max);
    if v.is_empty() { Ok(()) } else { Err(Error::constraints(v)) }
}

/// `\w` as Java's regex has it (ASCII letters, digits, `_`) plus `+=,.@-`.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// `Path`: `/` or `/.../` of printable ASCII, at most 512 characters.
fn check_path(path: Option<&str>) -> Result<&str> {
    let path = path.unwrap_or("/");
    if path.len() > 512 {
        return Err(Error::constraint(path, "path", "Member must have length less than or equal to 512"));
    }
    let ok = path == "/"
        || (path.len() >= 2
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        Ok(path)
    } else {
        Err(Error::Validation(
            "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
