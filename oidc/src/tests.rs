//! Crate-level tests: keys on disk, signing and verification together, the fixed vector. The
//! cross-checks against the openssl CLI are in `tests/openssl.rs`.

use serde_json::{Value, json};

use crate::*;

mod openssl;

const KEY_PKCS1: &str = include_str!("testdata/sa-pkcs1.pem");
const KEY_PKCS8: &str = include_str!("testdata/sa-pkcs8.pem");
const OTHER_PKCS8: &str = include_str!("testdata/other-pkcs8.pem");
const VECTOR_TOKEN: &str = include_str!("testdata/vector-token.txt");

fn key() -> SigningKey {
    SigningKey::from_pem(KEY_PKCS1).unwrap()
}

fn other() -> SigningKey {
    SigningKey::from_pem(OTHER_PKCS8).unwrap()
}

fn claims() -> ServiceAccountClaims {
    ServiceAccountClaims::new(
        "https://kubernetes.default.svc.cluster.local",
        vec!["sts.amazonaws.com".into()],
        "payments",
        ObjectRef::new("ledger", "8a1e77d0-2c3b-4f19-b0a7-91e5cf30d2b6"),
        Some(ObjectRef::new("ledger-0", "b3c4a512-77e2-4a1c-8f96-1d20c7a4e0aa")),
        1_700_000_000,
        3600,
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    data_encoding::BASE64URL_NOPAD.decode(text.as_bytes()).unwrap()
}

/// `token` with its header replaced by `header` (signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

/// A token whose header and payload are `header` and `payload`, signed by `key` whatever the
/// header says (to reach the checks past the algorithm and kid).
fn signed_raw(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
    format!("{input}.{}", b64(&key_sign_input(key, &input)))
}

/// RS256 over `input` with `key`, through the rsa crate directly rather than `SigningKey::sign`.
fn key_sign_input(key: &SigningKey, input: &str) -> Vec<u8> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    let pk = rsa::PrivateKey::from_pkcs1_pem(&key.to_pem().unwrap()).unwrap();
    pk.pkcs1v15_sign::<rsa::sha2::Sha256>(input.as_bytes()).unwrap()
}

// ---- keys -------------------------------------------------------------------------------

#[test]
fn pkcs1_and_pkcs8_of_one_key_give_one_key_id() {
    let a = SigningKey::from_pem(KEY_PKCS1).unwrap();
    let b = SigningKey::from_pem(KEY_PKCS8).unwrap();
    assert_eq!(a.key_id(), b.key_id());
    assert_ne!(a.key_id(), other().key_id());
    // 32 bytes of SHA-256 in unpadded base64url.
    assert_eq!(a.key_id().len(), 43);
    assert_eq!(unb64(a.key_id()).len(), 32);
}

#[test]
fn pem_out_is_pkcs1_and_byte_identical_to_openssls() {
    // sa-pkcs1.pem was written by `openssl genrsa -traditional`; DER is canonical, so our
    // PKCS#1 PEM of the same key must be the same bytes.
    assert_eq!(key().to_pem().unwrap(), KEY_PKCS1);
    // And a PKCS#8 input comes out as PKCS#1.
    let from8 = SigningKey::from_pem(KEY_PKCS8).unwrap().to_pem().unwrap();
    assert!(from8.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{from8}");
    assert_eq!(from8, KEY_PKCS1);
    let again = SigningKey::from_pem(&from8).unwrap();
    assert_eq!(again.key_id(), key().key_id());
}

#[test]
fn pem_parsing_skips_other_blocks_and_takes_crlf() {
    let with_cert = format!(
        "Bag Attributes: junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{KEY_PKCS8}"
    );
    assert_eq!(SigningKey::from_pem(&with_cert).unwrap().key_id(), key().key_id());
    let crlf = KEY_PKCS1.replace('\n', "\r\n");
    assert_eq!(SigningKey::from_pem(&crlf).unwrap().key_id(), key().key_id());
}

#[test]
fn pem_errors_say_what_was_expected() {
    let err = SigningKey::from_pem("hello").unwrap_err();
    assert!(matches!(err, KeyError::NoPem), "{err}");
    assert!(err.to_string().contains("RSA PRIVATE KEY"), "{err}");

    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let err = SigningKey::from_pem(cert).unwrap_err();
    assert!(matches!(&err, KeyError::NotRsaPrivateKey { label } if label == "CERTIFICATE"), "{err}");
    assert_eq!(
        err.to_string(),
        "PEM block \"CERTIFICATE\" is not an RSA private key: expected \"RSA PRIVATE KEY\" (PKCS#1) or \
         \"PRIVATE KEY\" (PKCS#8)"
    );

    let ec = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
              -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    let err = SigningKey::from_pem(ec).unwrap_err();
    assert!(matches!(&err, KeyError::NotRsaPrivateKey { label } if label == "EC PRIVATE KEY"), "{err}");

    let broken = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n";
    let err = SigningKey::from_pem(broken).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs1 { .. }), "{err}");
    assert!(err.to_string().starts_with("PEM block \"RSA PRIVATE KEY\" is not a valid PKCS#1"), "{err}");

    let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(SigningKey::from_pem(enc).unwrap_err(), KeyError::Encrypted));
}

#[test]
fn load_or_generate_creates_0600_then_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pki/nested/sa.key");
    let first = SigningKey::load_or_generate(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
    }
    // Only the key is left in the directory: the temporary file was renamed, not copied.
    let names: Vec<_> =
        std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["sa.key"]);

    let second = SigningKey::load_or_generate(&path).unwrap();
    assert_eq!(first.key_id(), second.key_id());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the second call must not rewrite the key");
}

#[test]
fn write_pem_file_replaces_an_existing_file_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.key");
    std::fs::write(&path, "old").unwrap();
    key().write_pem_file(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), KEY_PKCS1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(SigningKey::load_or_generate(&path).unwrap().key_id(), key().key_id());
}

#[test]
fn a_garbage_key_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.key");
    std::fs::write(&path, b"\x00\x01 not a key").unwrap();
    let err = SigningKey::load_or_generate(&path).unwrap_err();
    assert!(matches!(&err, KeyError::InFile { source, .. } if matches!(**source, KeyError::NoPem)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("no PEM block"), "{msg}");
    // The garbage is left alone, not replaced by a fresh key.
    assert_eq!(std::fs::read(&path).unwrap(), b"\x00\x01 not a key");

    // A directory where the file should be: a read error, also naming the path.
    let err = SigningKey::load_or_generate(dir.path()).unwrap_err();
    assert!(matches!(err, KeyError::Read { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn debug_does_not_print_the_private_key() {
    let k = key();
    assert_eq!(format!("{k:?}"), format!("SigningKey {{ kid: {:?}, .. }}", k.key_id()));
}

// ---- JWKS -------------------------------------------------------------------------------

#[test]
fn jwks_lists_each_key_as_upstream_does() {
    let (a, b) = (key(), other());
    let set = Jwks::from_keys(&[&a, &b]);
    let json: Value = serde_json::to_value(&set).unwrap();
    let first = &json["keys"][0];
    assert_eq!(first["use"], "sig");
    assert_eq!(first["kty"], "RSA");
    assert_eq!(first["kid"], a.key_id());
    assert_eq!(first["alg"], "RS256");
    assert_eq!(first["e"], "AQAB");
    let n = unb64(first["n"].as_str().unwrap());
    assert_eq!(n.len(), 256, "2048-bit modulus, no leading zero byte");
    assert_ne!(n[0], 0);
    assert_eq!(json["keys"][1]["kid"], b.key_id());
    let text = serde_json::to_string(&set.keys[0]).unwrap();
    assert!(
        text.starts_with(&format!(r#"{{"use":"sig","kty":"RSA","kid":"{}","alg":"RS256","n":""#, a.key_id()))
    );
    assert!(text.ends_with(r#","e":"AQAB"}"#), "{text}");
    // What a relying party fetches reads back to the same set.
    assert_eq!(serde_json::from_str::<Jwks>(&serde_json::to_string(&set).unwrap()).unwrap(), set);
}

// ---- sign and verify --------------------------------------------------------------------

#[test]
fn sign_then_verify_round_trips() {
    let k = key();
    let c = claims();
    let token = k.sign(&c).unwrap();
    let header = unb64(token.split('.').next().unwrap());
    assert_eq!(String::from_utf8(header).unwrap(), format!(r#"{{"alg":"RS256","kid":"{}"}}"#, k.key_id()));

    let v = verify(&token, &Jwks::from_keys(&[&other(), &k])).unwrap();
    assert_eq!(v.kid, k.key_id());
    assert_eq!(v.header, Header::rs256(k.key_id()));
    assert_eq!(v.claims, serde_json::to_value(&c).unwrap());
    let back: ServiceAccountClaims = serde_json::from_value(v.claims.clone()).unwrap();
    assert_eq!(back, c);
    assert_eq!(
        v.standard,
        StandardClaims {
            iss: Some("https://kubernetes.default.svc.cluster.local".into()),
            sub: Some("system:serviceaccount:payments:ledger".into()),
            aud: vec!["sts.amazonaws.com".into()],
            exp: Some(1_700_003_600),
            nbf: Some(1_700_000_000),
            iat: Some(1_700_000_000),
            jti: Some(c.jti.clone()),
        }
    );
    // Deterministic: the same key and claims give the same token.
    assert_eq!(k.sign(&c).unwrap(), token);
}

#[test]
fn a_tampered_payload_is_a_bad_signature() {
    let k = key();
    let token = k.sign(&claims()).unwrap();
    let mut evil = claims();
    evil.sub = "system:serviceaccount:kube-system:admin".into();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], b64(&serde_json::to_vec(&evil).unwrap()), parts[2]);
    let err = verify(&forged, &Jwks::from_keys(&[&k])).unwrap_err();
    assert!(matches!(&err, VerifyError::BadSignature { tried } if *tried == [k.key_id()]), "{err}");
    assert!(!err.is_malformed());
}

#[test]
fn a_tampered_signature_is_a_bad_signature() {
    let k = key();
    let token = k.sign(&claims()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = unb64(sig);
    bytes[100] ^= 0x01;
    let err = verify(&format!("{input}.{}", b64(&bytes)), &Jwks::from_keys(&[&k])).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    // A truncated signature as well.
    let err = verify(&format!("{input}.{}", b64(&bytes[..200])), &Jwks::from_keys(&[&k])).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    // An empty one.
    let err = verify(&format!("{input}."), &Jwks::from_keys(&[&k])).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
}

#[test]
fn a_kid_swapped_to_another_key_of_the_set_is_a_bad_signature() {
    let (k, o) = (key(), other());
    let token = k.sign(&claims()).unwrap();
    let swapped = with_header(&token, &json!({"alg": "RS256", "kid": o.key_id()}));
    let err = verify(&swapped, &Jwks::from_keys(&[&k, &o])).unwrap_err();
    assert!(matches!(&err, VerifyError::BadSignature { tried } if *tried == [o.key_id()]), "{err}");
}

#[test]
fn an_unknown_kid_is_named() {
    let (k, o) = (key(), other());
    let token = k.sign(&claims()).unwrap();
    let err = verify(&token, &Jwks::from_keys(&[&o])).unwrap_err();
    match &err {
        VerifyError::UnknownKeyId { kid, known } => {
            assert_eq!(kid, k.key_id());
            assert_eq!(known, &[o.key_id().to_string()]);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(k.key_id()), "{err}");
    let err = verify(&token, &Jwks::default()).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownKeyId { .. }), "{err}");
}

#[test]
fn alg_none_is_refused_though_decode_unverified_reads_it() {
    let k = key();
    let payload = b64(&serde_json::to_vec(&claims()).unwrap());
    for header in [json!({"alg": "none"}), json!({"alg": "none", "kid": k.key_id()}), json!({"alg": "None"})]
    {
        let token = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
        let err = verify(&token, &Jwks::from_keys(&[&k])).unwrap_err();
        assert!(
            matches!(&err, VerifyError::UnsupportedAlgorithm { alg } if alg.eq_ignore_ascii_case("none")),
            "{err}"
        );
        let u = decode_unverified(&token).unwrap();
        assert_eq!(u.standard.iss.as_deref(), Some("https://kubernetes.default.svc.cluster.local"));
    }
    let token = format!("{}.{payload}.", b64(br#"{"alg":"none"}"#));
    assert_eq!(
        verify(&token, &Jwks::from_keys(&[&k])).unwrap_err().to_string(),
        "unsupported signing algorithm \"none\": only RS256 is accepted"
    );
}

#[test]
fn hs256_and_other_algorithms_are_refused() {
    let k = key();
    let token = k.sign(&claims()).unwrap();
    let set = Jwks::from_keys(&[&k]);
    for alg in ["HS256", "RS384", "RS512", "PS256", "ES256", "rs256", ""] {
        let t = with_header(&token, &json!({"alg": alg, "kid": k.key_id()}));
        let err = verify(&t, &set).unwrap_err();
        assert!(matches!(&err, VerifyError::UnsupportedAlgorithm { alg: a } if a == alg), "{alg}: {err}");
    }
}

#[test]
fn without_kid_every_rsa_key_is_tried() {
    let (k, o) = (key(), other());
    let token = signed_raw(&k, &json!({"alg": "RS256"}), &serde_json::to_value(claims()).unwrap());
    let mut set = Jwks::from_keys(&[&o, &k]);
    set.keys.insert(0, Jwk { kty: "EC".into(), kid: "ec".into(), ..set.keys[0].clone() });
    let v = verify(&token, &set).unwrap();
    assert_eq!(v.kid, k.key_id());
    assert_eq!(v.header.kid, None);

    let err = verify(&token, &Jwks::from_keys(&[&o])).unwrap_err();
    assert!(matches!(&err, VerifyError::BadSignature { tried } if *tried == [o.key_id()]), "{err}");
    let only_ec = Jwks { keys: vec![set.keys[0].clone()] };
    assert!(matches!(verify(&token, &only_ec).unwrap_err(), VerifyError::NoRsaKey));
}

#[test]
fn a_kid_naming_an_unusable_key_is_a_bad_key() {
    let k = key();
    let token = k.sign(&claims()).unwrap();
    let mut set = Jwks::from_keys(&[&k]);
    set.keys[0].use_ = "enc".into();
    let err = verify(&token, &set).unwrap_err();
    assert!(matches!(&err, VerifyError::BadKey { source: JwkError::NotForSignatures { .. }, .. }), "{err}");
    let mut set = Jwks::from_keys(&[&k]);
    set.keys[0].alg = "RS512".into();
    let err = verify(&token, &set).unwrap_err();
    assert!(matches!(&err, VerifyError::BadKey { source: JwkError::OtherAlgorithm { .. }, .. }), "{err}");
    let mut set = Jwks::from_keys(&[&k]);
    set.keys[0].n = "AQAB".into();
    let err = verify(&token, &set).unwrap_err();
    assert!(matches!(&err, VerifyError::BadKey { source: JwkError::Invalid { .. }, .. }), "{err}");
    // use and alg left out are fine (both optional in RFC 7517).
    let mut set = Jwks::from_keys(&[&k]);
    set.keys[0].use_.clear();
    set.keys[0].alg.clear();
    assert!(verify(&token, &set).is_ok());
}

#[test]
fn crit_headers_are_refused() {
    let k = key();
    let header = json!({"alg": "RS256", "kid": k.key_id(), "crit": ["b64"], "b64": false});
    let token = signed_raw(&k, &header, &json!({"iss": "x"}));
    let err = verify(&token, &Jwks::from_keys(&[&k])).unwrap_err();
    assert!(matches!(&err, VerifyError::UnsupportedCritical { names } if *names == ["b64"]), "{err}");
}

#[test]
fn malformed_tokens_say_which_part_is_wrong() {
    let k = key();
    let set = Jwks::from_keys(&[&k]);
    let good = k.sign(&claims()).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let check = |token: &str, want: &dyn Fn(&VerifyError) -> bool| {
        let err = verify(token, &set).unwrap_err();
        assert!(want(&err), "{token}: {err}");
        assert!(err.is_malformed(), "{err}");
        let err2 = decode_unverified(token).unwrap_err();
        assert_eq!(err.to_string(), err2.to_string());
    };
    check("", &|e| matches!(e, VerifyError::NotCompact { parts: 1 }));
    check("opaque-token", &|e| matches!(e, VerifyError::NotCompact { parts: 1 }));
    check(&format!("{}.{}", parts[0], parts[1]), &|e| matches!(e, VerifyError::NotCompact { parts: 2 }));
    check("a.b.c.d.e", &|e| matches!(e, VerifyError::NotCompact { parts: 5 }));
    check(&format!("{}=.{}.{}", parts[0], parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::Base64 { segment: Segment::Header, .. })
    });
    check(&format!("{}.{}+.{}", parts[0], parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::Base64 { segment: Segment::Payload, .. })
    });
    check(&format!("{}.{}.{}", b64(b"{nope"), parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::Json { segment: Segment::Header, .. })
    });
    check(&format!("{}.{}.{}", b64(b"[1]"), parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::NotObject { segment: Segment::Header })
    });
    check(&format!("{}.{}.{}", parts[0], b64(b"\"str\""), parts[2]), &|e| {
        matches!(e, VerifyError::NotObject { segment: Segment::Payload })
    });
    check(&format!("{}.{}.{}", b64(br#"{"kid":"x"}"#), parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::Member { segment: Segment::Header, member: "alg", .. })
    });
    check(&format!("{}.{}.{}", b64(br#"{"alg":"RS256","kid":7}"#), parts[1], parts[2]), &|e| {
        matches!(e, VerifyError::Member { member: "kid", .. })
    });
    for (payload, member) in [
        (r#"{"exp":"soon"}"#, "exp"),
        (r#"{"nbf":true}"#, "nbf"),
        (r#"{"iat":[1]}"#, "iat"),
        (r#"{"aud":5}"#, "aud"),
        (r#"{"aud":["a",5]}"#, "aud"),
        (r#"{"iss":{}}"#, "iss"),
        (r#"{"sub":1}"#, "sub"),
        (r#"{"exp":1e300}"#, "exp"),
    ] {
        check(
            &format!("{}.{}.{}", parts[0], b64(payload.as_bytes()), parts[2]),
            &|e| matches!(e, VerifyError::Member { segment: Segment::Payload, member: m, .. } if *m == member),
        );
    }
    // The signature segment is decoded with the others, before the algorithm or any key.
    check(&format!("{}.{}.***", parts[0], parts[1]), &|e| {
        matches!(e, VerifyError::Base64 { segment: Segment::Signature, .. })
    });
    let err = verify(&format!("{}.{}", parts[0], parts[1]), &set).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a JWT: expected 3 dot-separated parts (header.payload.signature), found 2"
    );
}

#[test]
fn aud_may_be_a_string_or_an_array() {
    let k = key();
    let set = Jwks::from_keys(&[&k]);
    let header = json!({"alg": "RS256", "kid": k.key_id()});
    let cases = [
        (json!({"aud": "sts.amazonaws.com"}), vec!["sts.amazonaws.com"]),
        (json!({"aud": ["sts.amazonaws.com"]}), vec!["sts.amazonaws.com"]),
        (json!({"aud": ["a", "b"]}), vec!["a", "b"]),
        (json!({"aud": []}), vec![]),
        (json!({"aud": null}), vec![]),
        (json!({}), vec![]),
    ];
    for (payload, want) in cases {
        let v = verify(&signed_raw(&k, &header, &payload), &set).unwrap();
        assert_eq!(v.standard.aud, want, "{payload}");
    }
}

#[test]
fn numeric_dates_take_integers_and_truncate_fractions() {
    let k = key();
    let header = json!({"alg": "RS256", "kid": k.key_id()});
    let payload = json!({"exp": 1_700_000_000.9, "nbf": -5, "iat": 12});
    let v = verify(&signed_raw(&k, &header, &payload), &Jwks::from_keys(&[&k])).unwrap();
    assert_eq!((v.standard.exp, v.standard.nbf, v.standard.iat), (Some(1_700_000_000), Some(-5), Some(12)));
}

#[test]
fn check_time_boundaries() {
    let c = StandardClaims { exp: Some(1000), nbf: Some(900), ..Default::default() };
    assert!(c.check_time(999, 0).is_ok());
    assert!(matches!(c.check_time(1000, 0), Err(VerifyError::Expired { exp: 1000, now: 1000, leeway: 0 })));
    assert!(c.check_time(1004, 5).is_ok());
    assert!(matches!(c.check_time(1005, 5), Err(VerifyError::Expired { .. })));
    assert!(c.check_time(900, 0).is_ok());
    assert!(matches!(c.check_time(899, 0), Err(VerifyError::NotYetValid { nbf: 900, now: 899, leeway: 0 })));
    assert!(c.check_time(895, 5).is_ok());
    assert!(matches!(c.check_time(894, 5), Err(VerifyError::NotYetValid { .. })));
    assert_eq!(
        c.check_time(2000, 60).unwrap_err().to_string(),
        "token is expired: exp 1000 is not after now (2000) minus 60s leeway"
    );
    assert_eq!(
        c.check_time(100, 60).unwrap_err().to_string(),
        "token is not valid yet: nbf 900 is after now (100) plus 60s leeway"
    );
    // Absent times are not checked; extreme values do not overflow.
    assert!(StandardClaims::default().check_time(i64::MAX, i64::MAX).is_ok());
    let far = StandardClaims { exp: Some(i64::MAX), nbf: Some(i64::MIN), ..Default::default() };
    assert!(far.check_time(0, i64::MAX).is_ok());

    // Through a verified token.
    let k = key();
    let v = verify(&k.sign(&claims()).unwrap(), &Jwks::from_keys(&[&k])).unwrap();
    assert!(v.check_time(1_700_000_000, 0).is_ok());
    assert!(matches!(v.check_time(1_700_003_600, 0), Err(VerifyError::Expired { .. })));
    assert!(matches!(v.check_time(1_699_999_999, 0), Err(VerifyError::NotYetValid { .. })));
}

#[test]
fn sign_refuses_claims_that_are_not_an_object() {
    let k = key();
    assert!(matches!(k.sign(&42).unwrap_err(), SignError::NotObject { .. }));
    assert!(matches!(k.sign(&"x").unwrap_err(), SignError::NotObject { .. }));
    let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    assert!(matches!(k.sign(&bad).unwrap_err(), SignError::Serialize { .. }));
}

// ---- the fixed vector -------------------------------------------------------------------

/// The payload `vector-token.txt` signs (see testdata/README.md), exactly as upstream would
/// serialise these claims.
const VECTOR_PAYLOAD: &str = r#"{"aud":["https://kubernetes.default.svc.cluster.local","sts.amazonaws.com"],"exp":1700003607,"iat":1700000000,"iss":"https://kubernetes.default.svc.cluster.local","jti":"3b241101-e2bb-4255-8caf-4136c566a962","kubernetes.io":{"namespace":"payments","node":{"name":"node-a","uid":"0f2d1a90-6c7e-4b53-9a11-2f7c9b1d0e44"},"pod":{"name":"ledger-7d9f8c6b5-x2kqv","uid":"b3c4a512-77e2-4a1c-8f96-1d20c7a4e0aa"},"serviceaccount":{"name":"ledger","uid":"8a1e77d0-2c3b-4f19-b0a7-91e5cf30d2b6"},"warnafter":1700003607},"nbf":1700000000,"sub":"system:serviceaccount:payments:ledger"}"#;

#[test]
fn fixed_vector_matches_openssl() {
    let mut c = ServiceAccountClaims::new(
        "https://kubernetes.default.svc.cluster.local",
        vec!["https://kubernetes.default.svc.cluster.local".into(), "sts.amazonaws.com".into()],
        "payments",
        ObjectRef::new("ledger", "8a1e77d0-2c3b-4f19-b0a7-91e5cf30d2b6"),
        Some(ObjectRef::new("ledger-7d9f8c6b5-x2kqv", "b3c4a512-77e2-4a1c-8f96-1d20c7a4e0aa")),
        1_700_000_000,
        3607,
    )
    .unwrap()
    .with_node(ObjectRef::new("node-a", "0f2d1a90-6c7e-4b53-9a11-2f7c9b1d0e44"))
    .with_warn_after(3607);
    c.jti = "3b241101-e2bb-4255-8caf-4136c566a962".into();
    assert_eq!(serde_json::to_string(&c).unwrap(), VECTOR_PAYLOAD);

    let expected = VECTOR_TOKEN.trim_end();
    let token = key().sign(&c).unwrap();
    assert_eq!(token, expected);
    // And the same key loaded from PKCS#8 signs the same bytes.
    assert_eq!(SigningKey::from_pem(KEY_PKCS8).unwrap().sign(&c).unwrap(), expected);
    let v = verify(expected, &Jwks::from_keys(&[&key()])).unwrap();
    assert_eq!(v.claims, serde_json::from_str::<Value>(VECTOR_PAYLOAD).unwrap());
}
