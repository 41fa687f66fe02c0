use super::*;

#[test]
fn a_v1_request_decodes_and_others_fail_with_the_plugins_texts() {
    let r = CredentialProviderRequest::decode(
        br#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx"}"#,
    )
    .unwrap();
    assert_eq!(r.image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx");
    // What the kubelet writes is what the plugin reads.
    let round = serde_json::to_vec(&CredentialProviderRequest::new("x/y")).unwrap();
    assert_eq!(
        String::from_utf8(round.clone()).unwrap(),
        r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"x/y"}"#
    );
    assert_eq!(CredentialProviderRequest::decode(&round).unwrap().image, "x/y");

    let alpha = br#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","image":"x"}"#;
    assert_eq!(
        CredentialProviderRequest::decode(alpha).unwrap_err().to_string(),
        "group version credentialprovider.kubelet.k8s.io/v1alpha1 is not supported"
    );
    let kind =
        br#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}"#;
    assert_eq!(
        CredentialProviderRequest::decode(kind).unwrap_err().to_string(),
        "kind was \"CredentialProviderResponse\", expected CredentialProviderRequest"
    );
    assert!(
        CredentialProviderRequest::decode(b"not json")
            .unwrap_err()
            .to_string()
            .starts_with("couldn't get version/kind; json parse error: ")
    );
}

#[test]
fn the_response_is_the_json_the_go_types_marshal_to() {
    let auth = BTreeMap::from([(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com".to_string(),
        AuthConfig { username: "AWS".into(), password: "p".into() },
    )]);
    let r =
        CredentialProviderResponse::new(CacheKeyType::Registry, Some(Duration::from_secs(6 * 3600)), auth);
    assert_eq!(
        String::from_utf8(r.encode()).unwrap(),
        "{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"6h0m0s\",\"auth\":{\"123456789012.dkr.ecr.us-east-1.amazonaws.com\":{\"username\":\"AWS\",\"password\":\"p\"}}}\n"
    );
    let back: CredentialProviderResponse = serde_json::from_slice(&r.encode()).unwrap();
    assert_eq!(back.cache_duration().unwrap(), Some(Duration::from_secs(21600)));
    let none = CredentialProviderResponse::new(CacheKeyType::Image, None, BTreeMap::new());
    assert_eq!(
        String::from_utf8(none.encode()).unwrap(),
        "{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"cacheKeyType\":\"Image\"}\n"
    );
}

#[test]
fn durations_print_and_parse_as_go_does() {
    assert_eq!(go_duration(Duration::ZERO), "0s");
    assert_eq!(go_duration(Duration::from_secs(21600)), "6h0m0s");
    assert_eq!(go_duration(Duration::from_secs(21599)), "5h59m59s");
    assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
    for (text, secs) in [
        ("12h", 43200.0),
        ("6h0m0s", 21600.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        ("0", 0.0),
        ("2m", 120.0),
    ] {
        assert_eq!(parse_go_duration(text).unwrap().as_secs_f64(), secs, "{text}");
    }
    for bad in ["", "12", "h", "1x", "-1s", "1..5s"] {
        assert_eq!(
            parse_go_duration(bad).unwrap_err().to_string(),
            format!("time: invalid duration {bad:?}")
        );
    }
}

#[test]
fn the_shipped_config_is_the_eks_amis_with_the_labs_endpoint() {
    let config: serde_json::Value = serde_json::from_str(&crate::config("http://127.0.0.1:4566")).unwrap();
    assert_eq!(config["kind"], "CredentialProviderConfig");
    let provider = &config["providers"][0];
    assert_eq!(provider["name"], crate::BINARY);
    assert_eq!(provider["apiVersion"], API_VERSION);
    assert_eq!(provider["defaultCacheDuration"], "12h");
    assert_eq!(provider["matchImages"][0], "*.dkr.ecr.*.amazonaws.com");
    assert_eq!(provider["env"][0]["value"], "http://127.0.0.1:4566");
    // The image's file is the same config for compose's cloud.
    let image: serde_json::Value = serde_json::from_str(crate::IMAGE_CONFIG).unwrap();
    let compose: serde_json::Value = serde_json::from_str(&crate::config("http://cloud:4566")).unwrap();
    assert_eq!(image, compose);
}
