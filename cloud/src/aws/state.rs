//! The account the AWS endpoint serves: its IAM directory, its EC2 (VPC, subnets, instances,
//! ENIs) and its ECR repositories, kept as one JSON file in the cloud's data directory so that
//! roles, keys, ENIs and repositories survive a restart of the process, as AWS's do.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use netlab_ec2::{Ec2, Ec2Config};
use netlab_iam::Directory;
use serde::{Deserialize, Serialize};

use super::ecr::EcrState;

/// The role (and instance profile) of the cluster's nodes, as eksctl's NodeInstanceRole: the
/// worker node, CNI and ECR read-only policies.
pub const NODE_ROLE: &str = "netlab-NodeInstanceRole";

/// The file the account is kept in, under the data directory.
pub const STATE_FILE: &str = "aws.json";

/// Why the account could not be loaded or kept.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not an account this version understands.
    #[error("{path}: not a netlab AWS account: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The EC2 configuration is not valid.
    #[error("the EC2 configuration: {0}")]
    Ec2(String),
}

/// The account: everything the AWS endpoint and IMDS answer from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Account {
    /// IAM: users, keys, roles, policies, instance profiles, OIDC providers, role sessions.
    pub iam: Directory,
    /// EC2: the VPC, its subnets, the instances (the nodes) and their ENIs.
    pub ec2: Ec2,
    /// ECR: repositories and their policies.
    #[serde(default)]
    pub ecr: EcrState,
}

// === impl Account ===

impl Account {
    /// A new account: the lab's admin user (with AdministratorAccess) and an empty VPC.
    pub fn bootstrap(ec2: &Ec2Config, now: Timestamp) -> Result<Self, StateError> {
        let iam = Directory::bootstrap(netlab_iam::Account::default(), now);
        let ec2 = Ec2::new(ec2).map_err(|e| StateError::Ec2(e.to_string()))?;
        Ok(Self { iam, ec2, ecr: EcrState::with_catalogue(now) })
    }

    /// The account kept in `dir` if there is one, else a new one (not yet written).
    pub fn load_or_bootstrap(
        dir: Option<&Path>,
        ec2: &Ec2Config,
        now: Timestamp,
    ) -> Result<Self, StateError> {
        let Some(dir) = dir else { return Self::bootstrap(ec2, now) };
        let path = dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::bootstrap(ec2, now),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Makes sure each `(name, type)` is an instance of the VPC (tagged `Name`), launched with
    /// the node role's instance profile ([`NODE_ROLE`], made on first use with the policies EKS
    /// worker nodes get), spread over the subnets' zones in turn. Instances already there stay
    /// as they are; returns how many were launched.
    pub fn ensure_instances(
        &mut self,
        nodes: &[(String, String)],
        now: Timestamp,
    ) -> Result<usize, StateError> {
        let ec2_err = |e: netlab_ec2::Ec2Error| StateError::Ec2(e.to_string());
        if self.iam.get_instance_profile(NODE_ROLE).is_err() {
            self.iam
                .create_node_role(NODE_ROLE, now)
                .map_err(|e| StateError::Ec2(e.message().to_string()))?;
        }
        let profile = self
            .iam
            .get_instance_profile(NODE_ROLE)
            .map(|p| netlab_ec2::IamInstanceProfile { arn: p.arn.clone(), id: p.id.clone() })
            .map_err(|e| StateError::Ec2(e.message().to_string()))?;
        let zones: Vec<String> = {
            let mut z: Vec<String> = self.ec2.subnets.values().map(|s| s.availability_zone.clone()).collect();
            z.sort();
            z.dedup();
            z
        };
        let mut launched = 0;
        for (i, (name, ty)) in nodes.iter().enumerate() {
            let exists = self.ec2.instances.values().any(|inst| inst.tags.get("Name") == Some(name));
            if exists {
                continue;
            }
            let spec = netlab_ec2::LaunchSpec {
                instance_type: ty.clone(),
                availability_zone: zones.get(i % zones.len().max(1)).cloned().unwrap_or_default(),
                tags: [("Name".to_string(), name.clone())].into_iter().collect(),
                iam_instance_profile: Some(profile.clone()),
                ..Default::default()
            };
            self.ec2.launch(spec).map_err(ec2_err)?;
            launched += 1;
        }
        Ok(launched)
    }

    /// Writes the account to `dir` (a temporary file renamed over the old one, so a crash
    /// leaves the old or the new state, never half of one).
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let io = |source| StateError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        // Serialising plain data cannot fail.
        let text = serde_json::to_vec_pretty(self).expect("the account serialises");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// The account shared by the endpoint, IMDS and the registry's ECR gate, with where it is kept.
#[derive(Debug)]
pub struct Shared {
    account: std::sync::Mutex<Account>,
    dir: Option<PathBuf>,
}

// === impl Shared ===

impl Shared {
    /// Shares `account`, kept in `dir` (None: in memory only).
    pub fn new(account: Account, dir: Option<PathBuf>) -> Self {
        Self { account: std::sync::Mutex::new(account), dir }
    }

    /// Reads the account.
    pub fn read<R>(&self, f: impl FnOnce(&Account) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the account and keeps the change (written before the caller answers, so an
    /// acknowledged call survives a crash).
    pub fn write<R>(&self, f: impl FnOnce(&mut Account) -> R) -> Result<R, StateError> {
        let mut account = self.lock();
        let r = f(&mut account);
        if let Some(dir) = &self.dir {
            account.save(dir)?;
        }
        Ok(r)
    }

    /// Runs a call that changes nothing worth keeping (a describe, a list), without writing.
    pub fn run<R>(&self, f: impl FnOnce(&mut Account) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        // Every change is made whole under the lock; a poisoned account is still consistent.
        self.account.lock().unwrap_or_else(|e| e.into_inner())
    }
}
