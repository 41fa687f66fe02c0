use std::os::unix::fs::PermissionsExt as _;

use super::*;

const ECR_IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx";

#[test]
fn images_match_as_the_kubelets_url_globs_do() {
    let glob = "*.dkr.ecr.*.amazonaws.com";
    assert!(urls_match(glob, ECR_IMAGE));
    assert!(urls_match(glob, "123456789012.dkr.ecr.eu-west-1.amazonaws.com"));
    // One label per `*`: a glob never spans a dot.
    assert!(!urls_match(glob, "a.b.dkr.ecr.us-east-1.amazonaws.com/x"));
    assert!(!urls_match(glob, "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn/x"));
    assert!(!urls_match("*.io", "registry.k8s.io/pause"));
    assert!(urls_match("*.k8s.io", "registry.k8s.io/pause"));
    // Ports must be equal; the glob's path is a prefix.
    assert!(!urls_match("registry.local", "registry.local:5000/app"));
    assert!(urls_match("registry.local:5000", "registry.local:5000/app"));
    assert!(urls_match("registry.local/team", "registry.local/team/app"));
    assert!(!urls_match("registry.local/team", "registry.local/other/app"));
    // The auth keys a plugin answers with are matched the same way.
    assert!(urls_match("123456789012.dkr.ecr.us-east-1.amazonaws.com", ECR_IMAGE));
}

#[test]
fn labels_match_as_filepath_match_does() {
    assert_eq!(filepath_match("us-*-1", "us-east-1"), Ok(true));
    assert_eq!(filepath_match("ecr?", "ecr1"), Ok(true));
    assert_eq!(filepath_match("[a-c]x", "bx"), Ok(true));
    assert_eq!(filepath_match("[^a-c]x", "bx"), Ok(false));
    assert_eq!(filepath_match("[!a-c]x", "!x"), Ok(true), "Go has no `!` negation");
    assert_eq!(filepath_match("\\*", "*"), Ok(true));
    assert_eq!(filepath_match("\\*", "a"), Ok(false));
    assert_eq!(filepath_match("[a-", "a"), Err(BadPattern));
    assert_eq!(filepath_match("ab\\", "ab"), Err(BadPattern));
}

#[test]
fn the_eks_ami_config_reads_and_bad_ones_fail_with_field_errors() {
    // awslabs/amazon-eks-ami's ecr-credential-provider-config.json.
    let eks = r#"{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig",
      "providers":[{"name":"ecr-credential-provider",
        "matchImages":["*.dkr.ecr.*.amazonaws.com","*.dkr.ecr.*.amazonaws.com.cn","*.dkr.ecr-fips.*.amazonaws.com"],
        "defaultCacheDuration":"12h","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}]}"#;
    let config = parse_config(eks, "config.json").unwrap();
    assert_eq!(config.providers[0].name, "ecr-credential-provider");
    assert_eq!(config.providers[0].default_cache_duration.as_deref(), Some("12h"));

    let yaml = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: a/b\n  matchImages: []\n  apiVersion: credentialprovider.kubelet.k8s.io/v2\n";
    let err = parse_config(yaml, "c.yaml").unwrap_err().to_string();
    assert_eq!(
        err,
        "failed to validate credential provider config: [providers.name: Invalid value: \"a/b\": provider name cannot contain '/', providers.apiVersion: Unsupported value: \"credentialprovider.kubelet.k8s.io/v2\": supported values: \"credentialprovider.kubelet.k8s.io/v1\", \"credentialprovider.kubelet.k8s.io/v1alpha1\", \"credentialprovider.kubelet.k8s.io/v1beta1\", providers.matchImages: Required value: at least 1 item in matchImages is required, providers.defaultCacheDuration: Required value]"
    );
    let err = parse_config("apiVersion: v1\nkind: Pod\n", "p.yaml").unwrap_err().to_string();
    assert!(err.starts_with("error decoding config p.yaml: "), "{err}");
}

/// A plugin script in a fresh bin dir, and the config naming it with `cache`.
fn plugin(dir: &Path, script: &str, cache: &str) -> Providers {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("fake-provider");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: fake-provider\n  matchImages: ['*.dkr.ecr.*.amazonaws.com']\n  defaultCacheDuration: {cache}\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: [get-credentials]\n  env:\n  - name: FROM_CONFIG\n    value: yes\n"
        ),
    )
    .unwrap();
    Providers::load(Some(&config), Some(&bin)).unwrap()
}

#[tokio::test]
async fn the_plugin_runs_once_per_cache_key_with_the_request_args_and_env() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    // Echoes what it got into the log; answers with a Registry-keyed, uncached-by-duration
    // (defaultCacheDuration applies) credential.
    let script = format!(
        "#!/bin/sh\nread -r req\necho \"$1 $FROM_CONFIG $LAB_VAR $req\" >> {}\necho '{{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Registry\",\"auth\":{{\"123456789012.dkr.ecr.us-east-1.amazonaws.com\":{{\"username\":\"AWS\",\"password\":\"pw\"}}}}}}'\n",
        log.display()
    );
    let providers = plugin(dir.path(), &script, "1h").with_env(vec![("LAB_VAR".into(), "lab".into())]);
    let auth = providers.lookup(ECR_IMAGE).await.unwrap();
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("AWS", "pw"));
    // Another repository of the same registry: the Registry cache answers.
    let again = providers.lookup("123456789012.dkr.ecr.us-east-1.amazonaws.com/busybox").await.unwrap();
    assert_eq!(again, auth);
    // No match, no run.
    assert_eq!(providers.lookup("docker.io/library/nginx").await, None);
    let runs = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        runs,
        format!(
            "get-credentials yes lab {{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"image\":\"{ECR_IMAGE}\"}}\n"
        )
    );
}

#[tokio::test]
async fn a_zero_cache_duration_runs_the_plugin_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let script = format!(
        "#!/bin/sh\necho run >> {}\necho '{{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"0s\",\"auth\":{{\"123456789012.dkr.ecr.us-east-1.amazonaws.com\":{{\"username\":\"AWS\",\"password\":\"pw\"}}}}}}'\n",
        log.display()
    );
    let providers = plugin(dir.path(), &script, "12h");
    providers.lookup(ECR_IMAGE).await.unwrap();
    providers.lookup(ECR_IMAGE).await.unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "run\nrun\n");
}

#[tokio::test]
async fn a_failing_plugin_gives_the_kubelets_error_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let providers = plugin(dir.path(), "#!/bin/sh\necho 'E1207 plugin says no' >&2\nexit 1\n", "12h");
    assert_eq!(providers.lookup(ECR_IMAGE).await, None);
    let err = providers.providers[0].exec(ECR_IMAGE, &[]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "error execing credential provider plugin fake-provider for image {ECR_IMAGE}: exit status 1: E1207 plugin says no\n"
        )
    );
    let wrong = plugin(
        dir.path(),
        "#!/bin/sh\necho '{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1beta1\",\"cacheKeyType\":\"Registry\"}'\n",
        "12h",
    );
    assert_eq!(
        wrong.providers[0].exec(ECR_IMAGE, &[]).await.unwrap_err().to_string(),
        "apiVersion from credential plugin response did not match expected apiVersion:credentialprovider.kubelet.k8s.io/v1, actual apiVersion:credentialprovider.kubelet.k8s.io/v1beta1"
    );
}

#[test]
fn startup_checks_the_bin_dir_and_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: ecr-credential-provider\n  matchImages: ['*.dkr.ecr.*.amazonaws.com']\n  defaultCacheDuration: 12h\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n").unwrap();
    let missing = dir.path().join("nope");
    assert_eq!(
        Providers::load(Some(&config), Some(&missing)).unwrap_err().to_string(),
        format!("plugin binary directory {} did not exist", missing.display())
    );
    assert_eq!(
        Providers::load(Some(&config), Some(dir.path())).unwrap_err().to_string(),
        format!(
            "plugin binary executable {} did not exist",
            dir.path().join("ecr-credential-provider").display()
        )
    );
    assert!(Providers::load(None, None).unwrap().is_empty());
    assert!(matches!(Providers::load(Some(&config), None), Err(ConfigError::Flags)));
}

#[test]
fn the_config_netlab_ships_is_valid_and_matches_ecr_hosts() {
    let config = parse_config(netlab_credential_provider::IMAGE_CONFIG, "config.json").unwrap();
    let provider = &config.providers[0];
    assert_eq!(provider.name, netlab_credential_provider::BINARY);
    assert!(provider.match_images.iter().any(|g| urls_match(g, ECR_IMAGE)));
    assert!(!provider.match_images.iter().any(|g| urls_match(g, "docker.io/library/nginx")));
}
