//! `netlab aws env`: the shell exports that point the aws CLI and SDKs at the lab's AWS endpoint
//! (`AWS_ENDPOINT_URL`, honoured by the CLI and every current SDK) with the lab admin's access
//! key, printed as `minikube docker-env` prints Docker's, for `eval "$(netlab aws env)"`.
//!
//! The admin's key is the one the cloud's account was bootstrapped with: derived from the
//! account's seed, so the CLI knows it without asking (natively and against compose alike).

use std::io::Write;

/// Where compose publishes the cloud's AWS endpoint.
pub const COMPOSE_ENDPOINT: &str = "http://127.0.0.1:4566";

/// The lab admin's access key id and secret.
pub fn admin_key() -> Option<(String, String)> {
    let directory = netlab_iam::Directory::bootstrap(netlab_iam::Account::default(), jiff::Timestamp::now());
    directory.admin_access_key().map(|k| (k.access_key_id.clone(), k.secret_access_key.clone()))
}

/// Prints the exports for `endpoint` and `region`.
pub fn env(endpoint: &str, region: &str, out: &mut impl Write) -> std::io::Result<()> {
    let Some((id, secret)) = admin_key() else {
        // The bootstrap always makes the admin's key; nothing to print otherwise.
        return Ok(());
    };
    writeln!(out, "export AWS_ENDPOINT_URL=\"{endpoint}\"")?;
    writeln!(out, "export AWS_REGION=\"{region}\"")?;
    // The aws CLI v1 reads the region from AWS_DEFAULT_REGION only.
    writeln!(out, "export AWS_DEFAULT_REGION=\"{region}\"")?;
    writeln!(out, "export AWS_ACCESS_KEY_ID=\"{id}\"")?;
    writeln!(out, "export AWS_SECRET_ACCESS_KEY=\"{secret}\"")?;
    // A profile or a session token from elsewhere would override or spoil the key above.
    writeln!(out, "unset AWS_SESSION_TOKEN AWS_PROFILE")?;
    writeln!(out)?;
    writeln!(out, "# To point your shell at the lab's AWS, run:")?;
    writeln!(out, "# eval \"$(netlab aws env)\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_the_endpoint_region_and_a_stable_admin_key() {
        let mut out = Vec::new();
        env("http://127.0.0.1:4566", "us-east-1", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("export AWS_ENDPOINT_URL=\"http://127.0.0.1:4566\"\n"), "{text}");
        assert!(text.contains("export AWS_DEFAULT_REGION=\"us-east-1\"\n"), "{text}");
        let (id, _) = admin_key().unwrap();
        assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
        assert_eq!(admin_key(), admin_key(), "the same key every time");
    }
}
