//! JWT verification settings: an HS256 secret or a PEM public key.

use std::fmt;
use std::path::Path;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// HS256 secrets shorter than this draw a startup warning (RFC 7518 §3.2
/// asks for a key at least as long as the hash output).
pub const MIN_RECOMMENDED_SECRET_BYTES: usize = 32;

/// RSA keys shorter than this are refused.
pub const MIN_RSA_BITS: usize = 2048;

/// How tokens are verified: one algorithm, one key, and optional `iss` and
/// `aud` requirements. Built and checked at startup, so a bad key stops the
/// server instead of failing every handshake.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct JwtSettings {
    algorithm: Algorithm,
    key: DecodingKey,
    key_source: String,
    weak_secret: bool,
    issuer: Option<String>,
    audience: Option<Vec<String>>,
}

impl JwtSettings {
    /// Verify HS256 tokens with a shared secret (used as raw bytes, like
    /// Node's `jsonwebtoken`).
    pub fn hs256(secret: &[u8]) -> JwtSettings {
        JwtSettings::hmac(secret, Algorithm::HS256)
    }

    /// Verify HMAC tokens (HS256, HS384 or HS512) with a shared secret.
    fn hmac(secret: &[u8], algorithm: Algorithm) -> JwtSettings {
        JwtSettings {
            algorithm,
            key: DecodingKey::from_secret(secret),
            key_source: "JWT_SECRET".to_owned(),
            weak_secret: secret.len() < MIN_RECOMMENDED_SECRET_BYTES,
            issuer: None,
            audience: None,
        }
    }

    /// Verify tokens with a PEM public key (`-----BEGIN PUBLIC KEY-----` or
    /// `-----BEGIN RSA PUBLIC KEY-----`). The algorithm follows the key: RSA
    /// gives RS256, an EC P-256 key ES256, an EC P-384 key ES384; `forced`
    /// picks another algorithm of the key's family (e.g. PS256), and must fit
    /// the key.
    pub fn from_public_key_pem(
        pem: &[u8],
        forced: Option<Algorithm>,
    ) -> Result<JwtSettings, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "is not a PEM text file".to_owned())?;
        let label = text
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("-----BEGIN ")
                    .and_then(|rest| rest.strip_suffix("-----"))
            })
            .ok_or_else(|| "is not a PEM file (no -----BEGIN line)".to_owned())?;
        if label.contains("PRIVATE KEY") {
            return Err(
                "holds a PRIVATE key: give the public key (openssl pkey -in key.pem -pubout)"
                    .to_owned(),
            );
        }
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err(format!(
                "holds a {label:?}, not a public key (openssl x509 -pubkey -noout extracts it \
                 from a certificate)"
            ));
        }
        let (key, natural) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            let bits = rsa_modulus_bits(key_bytes(&key)?)
                .ok_or_else(|| "holds an RSA key that cannot be parsed".to_owned())?;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "holds a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
                ));
            }
            (key, Algorithm::RS256)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            let algorithm = match key_bytes(&key)?.len() {
                65 | 33 => Algorithm::ES256,
                97 | 49 => Algorithm::ES384,
                _ => return Err("holds an EC key on an unsupported curve (use P-256)".to_owned()),
            };
            (key, algorithm)
        } else {
            return Err("holds an unsupported or damaged key (use RSA or EC P-256)".to_owned());
        };
        let algorithm = match forced {
            None => natural,
            Some(forced) if forced.family() != natural.family() => {
                return Err(format!(
                    "holds a key for {natural:?}, which cannot verify {forced:?} tokens"
                ));
            }
            Some(forced) if natural.family() == AlgorithmFamily::Ec && forced != natural => {
                return Err(format!(
                    "holds an EC key for {natural:?} (curve mismatch with {forced:?})"
                ));
            }
            Some(forced) => forced,
        };
        // Parse the key as the verifier will, so a damaged key fails now.
        // A well-formed key and a bogus signature give Ok(false).
        if jsonwebtoken::crypto::verify("AA", b"probe", &key, algorithm).is_err() {
            return Err("holds a damaged key".to_owned());
        }
        Ok(JwtSettings {
            algorithm,
            key,
            key_source: "JWT_PUBLIC_KEY_FILE".to_owned(),
            weak_secret: false,
            issuer: None,
            audience: None,
        })
    }

    /// [`JwtSettings::from_public_key_pem`] on the contents of a file.
    pub fn from_public_key_file(
        path: &Path,
        forced: Option<Algorithm>,
    ) -> Result<JwtSettings, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut settings = JwtSettings::from_public_key_pem(&pem, forced)
            .map_err(|why| format!("{} {why}", path.display()))?;
        settings.key_source = path.display().to_string();
        Ok(settings)
    }

    /// Also require the `iss` claim to be `issuer`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> JwtSettings {
        self.issuer = Some(issuer.into());
        self
    }

    /// Also require an `aud` claim naming one of `audience`.
    #[must_use]
    pub fn with_audience(mut self, audience: Vec<String>) -> JwtSettings {
        self.audience = Some(audience);
        self
    }

    /// The one algorithm tokens must use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The verification key.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Where the key came from (`JWT_SECRET` or the PEM file path), for logs.
    pub fn key_source(&self) -> &str {
        &self.key_source
    }

    /// The HMAC secret is shorter than [`MIN_RECOMMENDED_SECRET_BYTES`].
    pub fn has_weak_secret(&self) -> bool {
        self.weak_secret
    }

    /// The required `iss`, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The accepted `aud` values, if `aud` is checked.
    pub fn audience(&self) -> Option<&[String]> {
        self.audience.as_deref()
    }
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("algorithm", &self.algorithm)
            .field("key", &"MASKED")
            .field("key_source", &self.key_source)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// Parses a `JWT_ALGORITHM` value.
pub(super) fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    let upper = text.trim().to_ascii_uppercase();
    match upper.parse::<Algorithm>() {
        Ok(Algorithm::EdDSA) | Err(_) => Err(format!(
            "{text:?} is not a supported algorithm (HS256, HS384, HS512, RS256, RS384, RS512, \
             PS256, PS384, PS512, ES256, ES384)"
        )),
        Ok(alg) => Ok(alg),
    }
}

/// HMAC settings for a forced (or default HS256) algorithm.
pub(super) fn from_secret(secret: &[u8], forced: Option<Algorithm>) -> Result<JwtSettings, String> {
    match forced {
        None => Ok(JwtSettings::hs256(secret)),
        Some(alg) if alg.family() == AlgorithmFamily::Hmac => Ok(JwtSettings::hmac(secret, alg)),
        Some(alg) => Err(format!(
            "JWT_SECRET is an HMAC key, which cannot verify {alg:?} tokens (use \
             JWT_PUBLIC_KEY_FILE)"
        )),
    }
}

fn key_bytes(key: &DecodingKey) -> Result<&[u8], String> {
    key.try_get_as_bytes()
        .map_err(|_| "holds a key in an unexpected form".to_owned())
}

/// Bit length of the modulus of a PKCS#1 `RSAPublicKey` DER
/// (`SEQUENCE { INTEGER n, INTEGER e }`); `None` if it is not one.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let (tag, body, rest) = der_element(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (n_tag, n, rest) = der_element(body)?;
    let (e_tag, e, rest) = der_element(rest)?;
    if n_tag != 0x02 || e_tag != 0x02 || !rest.is_empty() || e.is_empty() {
        return None;
    }
    let n = match n.iter().position(|&b| b != 0) {
        Some(first) => &n[first..],
        None => return None,
    };
    let lead = usize::try_from(8 - n.first()?.leading_zeros()).ok()?;
    Some((n.len() - 1) * 8 + lead)
}

/// Splits one DER element: (tag, contents, remaining input).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (len_bytes, rest) = input.split_at(count);
        input = rest;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (body, rest) = input.split_at(len);
    Some((tag, body, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/rs256-public.pem");
    const RSA_PKCS1_PUBLIC: &[u8] =
        include_bytes!("../../tests/fixtures/jwt/rs256-public-pkcs1.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/es256-public.pem");
    const EC384_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/es384-public.pem");
    const RSA1024_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa1024-public.pem");
    const RSA_PRIVATE: &[u8] =
        include_bytes!("../../tests/fixtures/jwt/rs256-private.TEST-ONLY.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/ed25519-public.pem");
    const CERT: &[u8] = include_bytes!("../../tests/fixtures/jwt/rs256-cert.pem");
    const DAMAGED: &[u8] = include_bytes!("../../tests/fixtures/jwt/damaged-public.pem");

    #[test]
    fn algorithm_follows_the_key() {
        let rsa = JwtSettings::from_public_key_pem(RSA_PUBLIC, None).expect("rsa");
        assert_eq!(rsa.algorithm(), Algorithm::RS256);
        let pkcs1 = JwtSettings::from_public_key_pem(RSA_PKCS1_PUBLIC, None).expect("pkcs1");
        assert_eq!(pkcs1.algorithm(), Algorithm::RS256);
        let ec = JwtSettings::from_public_key_pem(EC_PUBLIC, None).expect("ec");
        assert_eq!(ec.algorithm(), Algorithm::ES256);
        let ec384 = JwtSettings::from_public_key_pem(EC384_PUBLIC, None).expect("ec384");
        assert_eq!(ec384.algorithm(), Algorithm::ES384);
    }

    #[test]
    fn forced_algorithm_must_fit_the_key() {
        let ps = JwtSettings::from_public_key_pem(RSA_PUBLIC, Some(Algorithm::PS256)).expect("ps");
        assert_eq!(ps.algorithm(), Algorithm::PS256);
        assert!(JwtSettings::from_public_key_pem(RSA_PUBLIC, Some(Algorithm::ES256)).is_err());
        assert!(JwtSettings::from_public_key_pem(RSA_PUBLIC, Some(Algorithm::HS256)).is_err());
        assert!(JwtSettings::from_public_key_pem(EC_PUBLIC, Some(Algorithm::ES384)).is_err());
        assert!(from_secret(b"secret", Some(Algorithm::RS256)).is_err());
        assert_eq!(
            from_secret(b"secret", Some(Algorithm::HS512)).map(|s| s.algorithm()),
            Ok(Algorithm::HS512)
        );
        assert!(parse_algorithm("none").is_err());
        assert!(parse_algorithm("EdDSA").is_err());
        assert_eq!(parse_algorithm("rs256"), Ok(Algorithm::RS256));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 6] = [
            (RSA_PRIVATE, "PRIVATE"),
            (RSA1024_PUBLIC, "1024-bit"),
            (ED_PUBLIC, "unsupported"),
            (CERT, "CERTIFICATE"),
            (DAMAGED, "damaged"),
            (b"hello", "no -----BEGIN"),
        ];
        for (pem, why) in cases {
            let err = JwtSettings::from_public_key_pem(pem, None).expect_err(why);
            assert!(err.contains(why), "{err:?} should mention {why:?}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let settings = JwtSettings::hs256(b"correct horse battery staple");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("horse"), "{shown}");
        assert!(shown.contains("MASKED"));
        assert!(settings.has_weak_secret());
        assert!(!JwtSettings::hs256(&[7; 32]).has_weak_secret());
    }
}
