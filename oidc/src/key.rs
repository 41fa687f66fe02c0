//! The issuer's RSA signing key: how it is made, stored, named and used to sign.
//!
//! **On disk it is PKCS#1** (`-----BEGIN RSA PRIVATE KEY-----`), mode 0600, because that is what
//! kubeadm writes as `/etc/kubernetes/pki/sa.key` (client-go's `keyutil.MarshalPrivateKeyToPEM`)
//! and what a user who knows Kubernetes expects to find and inspect with `openssl rsa`. Reading
//! also takes PKCS#8 (`-----BEGIN PRIVATE KEY-----`), which `openssl genrsa` writes by default
//! since OpenSSL 3, so a key made by hand loads too.
//!
//! **The key id is kube-apiserver's `keyIDFromPublicKey`**: SHA-256 over the DER of the public
//! key's SubjectPublicKeyInfo (what Go's `x509.MarshalPKIXPublicKey` writes), in base64url without
//! padding. The `kid` is how a JWKS consumer (AWS STS, or any OIDC relying party) picks the key
//! for a token, so it must be the same derivation upstream uses: the same key then gets the same
//! id here and in a real cluster, and a hash cannot be turned back into the key by mistake.
//!
//! **Files are replaced atomically**: [`SigningKey::write_pem_file`] writes a temporary file in
//! the same directory, syncs it and renames it over the target, so a crash leaves either no key
//! or a whole one, never half a key that would fail every later start.
//!
//! Keys are 2048-bit with exponent 65537, the size kubeadm generates for `sa.key`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rsa::PrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::b64;
use crate::jwk::{Jwk, Jwks};
use crate::jws::Header;
use crate::random::{self, SysRng};

/// PEM label of a PKCS#1 RSA private key (kubeadm's `sa.key`).
const PKCS1_LABEL: &str = "RSA PRIVATE KEY";
/// PEM label of an unencrypted PKCS#8 private key.
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// PEM label of an encrypted PKCS#8 private key.
const PKCS8_ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// Why a key could not be generated, read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// RSA key generation failed (the operating system's random source, in practice).
    #[error("generating a {bits}-bit RSA key: {source}")]
    Generate {
        /// The requested modulus size.
        bits: usize,
        /// The `rsa` crate's reason.
        source: rsa::Error,
    },
    /// The text holds no PEM block at all.
    #[error(
        "no PEM block found: expected an RSA private key as PEM, \"-----BEGIN RSA PRIVATE KEY-----\" \
         (PKCS#1) or \"-----BEGIN PRIVATE KEY-----\" (PKCS#8)"
    )]
    NoPem,
    /// PEM blocks are there, but none of them is an RSA private key.
    #[error(
        "PEM block \"{label}\" is not an RSA private key: expected \"RSA PRIVATE KEY\" (PKCS#1) or \
         \"PRIVATE KEY\" (PKCS#8)"
    )]
    NotRsaPrivateKey {
        /// The label of the first PEM block that looks like a private key, else of the first.
        label: String,
    },
    /// The key is an encrypted PKCS#8 key; there is no passphrase to open it with.
    #[error(
        "PEM block \"ENCRYPTED PRIVATE KEY\" is passphrase-protected, which is not supported: \
         decrypt it first (openssl pkey -in KEY -out KEY.plain)"
    )]
    Encrypted,
    /// A PKCS#1 block whose contents are not a valid two-prime RSA private key.
    #[error("PEM block \"RSA PRIVATE KEY\" is not a valid PKCS#1 RSA private key: {source}")]
    Pkcs1 {
        /// The decoder's reason.
        source: rsa::pkcs1::Error,
    },
    /// A PKCS#8 block whose contents are not an RSA private key (an EC or Ed25519 key, say) or
    /// not valid.
    #[error("PEM block \"PRIVATE KEY\" is not a valid PKCS#8 RSA private key: {source}")]
    Pkcs8 {
        /// The decoder's reason (an unknown algorithm OID for a key of another type).
        source: rsa::pkcs8::Error,
    },
    /// The public key could not be DER-encoded (for the key id).
    #[error("encoding the public key as SubjectPublicKeyInfo DER: {source}")]
    EncodePublic {
        /// The encoder's reason.
        source: rsa::pkcs8::spki::Error,
    },
    /// The private key could not be PEM-encoded.
    #[error("encoding the private key as PKCS#1 PEM: {source}")]
    EncodePrivate {
        /// The encoder's reason.
        source: rsa::pkcs1::Error,
    },
    /// The key file exists but could not be read.
    #[error("reading key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file (or its directory) could not be written.
    #[error("writing key file {}: {source}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file was read but does not hold a usable key.
    #[error("key file {}: {source}", path.display())]
    InFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its contents.
        source: Box<KeyError>,
    },
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The claims could not be serialised to JSON.
    #[error("serialising the JWT claims: {source}")]
    Serialize {
        /// serde_json's reason.
        source: serde_json::Error,
    },
    /// The claims serialise to JSON that is not an object; a JWT claims set must be one.
    #[error("the JWT claims must serialise to a JSON object, not {json}")]
    NotObject {
        /// The start of what they serialised to.
        json: String,
    },
    /// The RSA signature operation failed (the blinding RNG, in practice).
    #[error("signing with RS256: {source}")]
    Rsa {
        /// The `rsa` crate's reason.
        source: rsa::Error,
    },
}

/// The issuer's private key: RSA, signs RS256 tokens, named by its Kubernetes key id.
#[derive(Clone)]
pub struct SigningKey {
    key: PrivateKey,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private parts.
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Modulus size of generated keys, as kubeadm's `sa.key`.
    pub const BITS: usize = 2048;

    /// A new random 2048-bit key (exponent 65537) from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let key = PrivateKey::new(&mut SysRng, Self::BITS)
            .map_err(|source| KeyError::Generate { bits: Self::BITS, source })?;
        Self::from_private_key(key)
    }

    /// Parses the first RSA private key in `pem`: a PKCS#1 `RSA PRIVATE KEY` block (kubeadm's
    /// `sa.key`) or a PKCS#8 `PRIVATE KEY` block (`openssl genrsa` in OpenSSL 3). Other blocks
    /// before it (a certificate, `EC PARAMETERS`) are skipped, as client-go's
    /// `keyutil.ParsePrivateKeyPEM` skips them.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let mut first_label = None;
        for (label, block) in pem_blocks(pem) {
            let key = match label {
                PKCS1_LABEL => {
                    PrivateKey::from_pkcs1_pem(block).map_err(|source| KeyError::Pkcs1 { source })?
                }
                PKCS8_LABEL => {
                    PrivateKey::from_pkcs8_pem(block).map_err(|source| KeyError::Pkcs8 { source })?
                }
                PKCS8_ENCRYPTED_LABEL => return Err(KeyError::Encrypted),
                other => {
                    // Name the block the user most likely meant: a private key of another
                    // kind (`EC PRIVATE KEY` after `EC PARAMETERS`) over anything else.
                    let better = other.contains("PRIVATE KEY")
                        && !first_label.is_some_and(|l: &str| l.contains("PRIVATE KEY"));
                    if first_label.is_none() || better {
                        first_label = Some(other);
                    }
                    continue;
                }
            };
            return Self::from_private_key(key);
        }
        match first_label {
            Some(label) => Err(KeyError::NotRsaPrivateKey { label: label.to_string() }),
            None => Err(KeyError::NoPem),
        }
    }

    /// Reads the key at `path`; if there is no file there, generates a key and writes it there
    /// (PKCS#1 PEM, mode 0600, parent directories created), as kubeadm creates `sa.key` on first
    /// start and reuses it after. Errors name the path; a file that exists but holds no usable
    /// key is an error, never silently replaced. Two processes generating for the same path at
    /// once each write a whole key and the last rename wins, so start one issuer per key file.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        match fs::read(path) {
            Ok(bytes) => Self::from_pem(&String::from_utf8_lossy(&bytes))
                .map_err(|e| KeyError::InFile { path: path.to_path_buf(), source: Box::new(e) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                key.write_pem_file(path)?;
                Ok(key)
            }
            Err(source) => Err(KeyError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Writes the key to `path` as PKCS#1 PEM with mode 0600, replacing any file there
    /// atomically (temporary file in the same directory, fsync, rename). Creates missing parent
    /// directories.
    pub fn write_pem_file(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let pem = self.to_pem()?;
        write_atomically(path, pem.as_bytes())
            .map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
    }

    /// The private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`, LF line endings), the
    /// format of kubeadm's `sa.key`.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let pem =
            self.key.to_pkcs1_pem(LineEnding::LF).map_err(|source| KeyError::EncodePrivate { source })?;
        Ok(pem.as_str().to_string())
    }

    /// The public key as PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`), the format of
    /// kubeadm's `sa.pub` (what `--service-account-key-file` takes).
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        self.key
            .as_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|source| KeyError::EncodePublic { source })
    }

    /// The key id: kube-apiserver's `keyIDFromPublicKey`, base64url (no padding) of SHA-256 of
    /// the public key's SubjectPublicKeyInfo DER.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The public key as the JWK kube-apiserver lists in `/openid/v1/jwks`.
    pub fn jwk(&self) -> Jwk {
        Jwk::rs256(&self.kid, self.key.as_public_key())
    }

    /// Signs `claims` as a compact JWS: `base64url(header).base64url(claims).base64url(sig)`,
    /// header exactly `{"alg":"RS256","kid":"<key id>"}`, signature RSASSA-PKCS1-v1_5 with
    /// SHA-256 over the first two parts. Deterministic: the same key and claims give the same
    /// token.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, SignError> {
        let payload = serde_json::to_vec(claims).map_err(|source| SignError::Serialize { source })?;
        if payload.first() != Some(&b'{') {
            let json: String = String::from_utf8_lossy(&payload).chars().take(40).collect();
            return Err(SignError::NotObject { json });
        }
        let header = serde_json::to_vec(&Header::rs256(&self.kid))
            .map_err(|source| SignError::Serialize { source })?;
        let mut token = format!("{}.{}", b64::encode(&header), b64::encode(&payload));
        let signature =
            self.key.pkcs1v15_sign::<Sha256>(token.as_bytes()).map_err(|source| SignError::Rsa { source })?;
        token.push('.');
        token.push_str(&b64::encode(&signature));
        Ok(token)
    }

    fn from_private_key(key: PrivateKey) -> Result<Self, KeyError> {
        let der =
            key.as_public_key().to_public_key_der().map_err(|source| KeyError::EncodePublic { source })?;
        let kid = b64::encode(&Sha256::digest(der.as_bytes()));
        Ok(SigningKey { key, kid })
    }
}

impl Jwks {
    /// The key set kube-apiserver serves for these keys: one RS256 JWK each, in order. (Defined
    /// here, beside [`SigningKey`], so that `jwk` need not know about private keys.)
    pub fn from_keys(keys: &[&SigningKey]) -> Self {
        Jwks { keys: keys.iter().map(|k| k.jwk()).collect() }
    }
}

/// The PEM blocks in `text`, as (label, the block's text from `-----BEGIN` to the end of its
/// `-----END` marker). Text around blocks (OpenSSL's "Bag Attributes", comments) is ignored.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find(BEGIN) {
        let start = pos + i;
        let label_start = start + BEGIN.len();
        let line_end = text[label_start..].find('\n').map_or(text.len(), |j| label_start + j);
        let Some(dashes) = text[label_start..line_end].find("-----") else {
            pos = label_start;
            continue;
        };
        let label = &text[label_start..label_start + dashes];
        let end_marker = format!("-----END {label}-----");
        let Some(j) = text[line_end..].find(&end_marker) else { break };
        let end = line_end + j + end_marker.len();
        blocks.push((label, &text[start..end]));
        pos = end;
    }
    blocks
}

/// Writes `bytes` to `path` with mode 0600 via a temporary file in the same directory and a
/// rename, creating parent directories first.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "key".into());
    let suffix = random::uuid_v4().map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.{}.{suffix}.tmp", std::process::id()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            // The umask may have taken bits away, never added; set exactly 0600 regardless.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable. Some filesystems refuse fsync on a directory; the key is
    // already in place then, so that is not worth failing for.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
