//! Cross-checks against an independent implementation, the openssl CLI. These fail (never skip)
//! when openssl is missing: CI installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;

/// Runs openssl with `args` (and `stdin`), returning stdout; panics with its stderr on failure.
fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run the openssl CLI ({e}); these cross-checks need it: apt-get install openssl")
        });
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// openssl's key id: `openssl pkey -pubout -outform DER | openssl dgst -sha256`, base64url.
fn openssl_key_id(key_pem: &Path) -> String {
    let der = openssl(&["pkey", "-in", s(key_pem), "-pubout", "-outform", "DER"], None);
    let digest = openssl(&["dgst", "-sha256", "-binary"], Some(&der));
    assert_eq!(digest.len(), 32);
    b64(&digest)
}

#[test]
fn key_id_is_the_sha256_of_openssls_spki_der() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "sa.key", KEY_PKCS1.as_bytes());
    assert_eq!(key().key_id(), openssl_key_id(&pem));
    let pem = write(dir.path(), "other.key", OTHER_PKCS8.as_bytes());
    assert_eq!(other().key_id(), openssl_key_id(&pem));
}

#[test]
fn public_key_pem_and_jwk_match_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "sa.key", KEY_PKCS1.as_bytes());
    let public = openssl(&["pkey", "-in", s(&pem), "-pubout"], None);
    assert_eq!(key().public_key_pem().unwrap(), String::from_utf8(public).unwrap());

    // `Modulus=HEX` (upper case, no leading zeros for a full-size modulus).
    let modulus = String::from_utf8(openssl(&["rsa", "-in", s(&pem), "-noout", "-modulus"], None)).unwrap();
    let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
    let jwk = key().jwk();
    let n: String = unb64(&jwk.n).iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(n, hex);
    let text = String::from_utf8(openssl(&["rsa", "-in", s(&pem), "-noout", "-text"], None)).unwrap();
    assert!(text.contains("publicExponent: 65537 (0x10001)"), "{text}");
    assert_eq!(unb64(&jwk.e), [1, 0, 1]);
}

#[test]
fn openssl_verifies_our_signature() {
    let dir = tempfile::tempdir().unwrap();
    let pem = write(dir.path(), "sa.key", KEY_PKCS1.as_bytes());
    let public = write(dir.path(), "sa.pub", &openssl(&["pkey", "-in", s(&pem), "-pubout"], None));
    let token = key().sign(&claims()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let input_path = write(dir.path(), "input", input.as_bytes());
    let sig_path = write(dir.path(), "sig", &unb64(sig));
    let out = openssl(
        &["dgst", "-sha256", "-verify", s(&public), "-signature", s(&sig_path), s(&input_path)],
        None,
    );
    assert_eq!(String::from_utf8(out).unwrap().trim(), "Verified OK");

    // And a tampered input does not verify: the check above can fail.
    let tampered = write(dir.path(), "tampered", format!("{input}x").as_bytes());
    let status = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", s(&public), "-signature", s(&sig_path), s(&tampered)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
}

#[test]
fn keys_openssl_generates_load_sign_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        // OpenSSL 3's default output is PKCS#8; -traditional gives PKCS#1.
        ("pkcs8.key", vec!["genrsa", "2048"]),
        ("pkcs1.key", vec!["genrsa", "-traditional", "2048"]),
    ] {
        let pem = openssl(&args, None);
        let path = write(dir.path(), name, &pem);
        let text = String::from_utf8(pem).unwrap();
        let label = if name == "pkcs8.key" { "PRIVATE KEY" } else { "RSA PRIVATE KEY" };
        assert!(text.starts_with(&format!("-----BEGIN {label}-----")), "{text}");

        let k = SigningKey::load_or_generate(&path).unwrap();
        assert_eq!(k.key_id(), openssl_key_id(&path), "{name}");
        let token = k.sign(&claims()).unwrap();
        let v = verify(&token, &Jwks::from_keys(&[&key(), &k])).unwrap();
        assert_eq!(v.kid, k.key_id());

        // PKCS#1 v1.5 is deterministic: openssl's signature over our signing input is ours.
        let (input, sig) = token.rsplit_once('.').unwrap();
        let theirs = openssl(&["dgst", "-sha256", "-sign", s(&path)], Some(input.as_bytes()));
        assert_eq!(b64(&theirs), sig, "{name}");
    }
}

#[test]
fn our_pem_is_what_openssl_reads_as_pkcs1() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write(dir.path(), "sa.key", SigningKey::from_pem(KEY_PKCS8).unwrap().to_pem().unwrap().as_bytes());
    // `openssl rsa -check` parses and checks the key (p, q prime, d, CRT values consistent).
    let out = openssl(&["rsa", "-in", s(&path), "-check", "-noout"], None);
    assert_eq!(String::from_utf8(out).unwrap().trim(), "RSA key ok");
    // Re-emitting it as traditional PKCS#1 changes nothing.
    let again = openssl(&["rsa", "-in", s(&path), "-traditional"], None);
    assert_eq!(String::from_utf8(again).unwrap(), KEY_PKCS1);
}

#[test]
fn keys_openssl_makes_that_are_not_rsa_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // An EC key as PKCS#8 ("PRIVATE KEY"): the right label, the wrong algorithm.
    let ec8 = openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], None);
    let err = SigningKey::from_pem(&String::from_utf8(ec8).unwrap()).unwrap_err();
    assert!(matches!(err, KeyError::Pkcs8 { .. }), "{err}");
    assert!(
        err.to_string().starts_with("PEM block \"PRIVATE KEY\" is not a valid PKCS#8 RSA private key"),
        "{err}"
    );

    // `openssl ecparam -genkey`: "EC PARAMETERS" then "EC PRIVATE KEY".
    let ec = openssl(&["ecparam", "-name", "prime256v1", "-genkey"], None);
    let err = SigningKey::from_pem(&String::from_utf8(ec).unwrap()).unwrap_err();
    assert!(matches!(&err, KeyError::NotRsaPrivateKey { label } if label == "EC PRIVATE KEY"), "{err}");

    // A passphrase-protected PKCS#8 key.
    let pem = write(dir.path(), "sa.key", KEY_PKCS1.as_bytes());
    let enc = openssl(&["pkey", "-in", s(&pem), "-aes256", "-passout", "pass:secret"], None);
    let text = String::from_utf8(enc).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"), "{text}");
    assert!(matches!(SigningKey::from_pem(&text).unwrap_err(), KeyError::Encrypted));
}
