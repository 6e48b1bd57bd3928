//! Identity at the handshake: who a Socket.IO connection belongs to, and
//! which channels it may join.
//!
//! In JWT mode the client sends `auth: { token }`; the token is verified with
//! the one configured algorithm and key (`alg: none`, other algorithms,
//! missing or past `exp`, future `nbf`, missing `sub` are refused). In dev
//! mode the client's `auth: { userId }` is trusted (see [`crate::config`] for
//! where dev mode is allowed).
//!
//! Clock skew: `exp` and `nbf` are checked with a leeway of [`JWT_LEEWAY`].

use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::config::{AuthConfig, JwtSettings};
use crate::error::GatewayError;

/// Tolerated clock skew between the token issuer and this server when
/// checking `exp` and `nbf`.
pub const JWT_LEEWAY: Duration = Duration::from_secs(5);

/// Longest user id accepted (`sub` or dev-mode `userId`), in characters.
pub const MAX_USER_ID_CHARS: usize = 128;

/// Longest display name accepted (`name` claim), in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// Longest token accepted, in bytes; longer ones are refused unparsed.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest channel pattern accepted in the `channels` claim.
pub const MAX_PATTERN_CHARS: usize = 256;

/// Who a connection belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id: the token's `sub`, or the dev-mode `userId`. 1 to
    /// [`MAX_USER_ID_CHARS`] characters, no control characters.
    pub user_id: String,
    /// Optional display name (`name` claim).
    pub name: Option<String>,
    /// The channels this identity may join (`channels` claim).
    pub channels: ChannelAccess,
}

impl Identity {
    /// An identity that may join any channel (what dev mode gives).
    pub fn new(user_id: impl Into<String>) -> Identity {
        Identity {
            user_id: user_id.into(),
            name: None,
            channels: ChannelAccess::any(),
        }
    }

    /// Whether this identity may join `channel_id`.
    pub fn may_join(&self, channel_id: &str) -> bool {
        self.channels.allows(channel_id)
    }
}

/// Channel-id patterns an identity may join; `*` matches any run of
/// characters (`:` and `.` included). No patterns at all (no `channels`
/// claim) allows every channel; an empty list allows none.
#[derive(Debug, Clone)]
pub struct ChannelAccess {
    patterns: Option<Vec<String>>,
    set: Option<GlobSet>,
}

impl ChannelAccess {
    /// Every channel (no `channels` claim).
    pub fn any() -> ChannelAccess {
        ChannelAccess {
            patterns: None,
            set: None,
        }
    }

    /// Only channels matching one of `patterns`. A pattern is 1 to
    /// [`MAX_PATTERN_CHARS`] characters of channel-id characters
    /// (`[A-Za-z0-9_.:-]`) and `*`.
    pub fn patterns<I, S>(patterns: I) -> Result<ChannelAccess, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            let valid = (1..=MAX_PATTERN_CHARS).contains(&pattern.chars().count())
                && pattern
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-*".contains(c));
            if !valid {
                return Err(
                    "a channel pattern may only hold channel-id characters and *".to_owned(),
                );
            }
            // Only `*` is special; every other character is literal.
            let glob = GlobBuilder::new(pattern)
                .literal_separator(false)
                .backslash_escape(false)
                .build()
                .map_err(|_| "a channel pattern is not a valid glob".to_owned())?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|_| "the channel patterns cannot be compiled".to_owned())?;
        Ok(ChannelAccess {
            patterns: Some(patterns),
            set: Some(set),
        })
    }

    /// Whether `channel_id` is allowed.
    pub fn allows(&self, channel_id: &str) -> bool {
        match &self.set {
            None => true,
            Some(set) => set.is_match(channel_id),
        }
    }

    /// The patterns, or `None` when every channel is allowed.
    pub fn pattern_list(&self) -> Option<&[String]> {
        self.patterns.as_deref()
    }
}

impl PartialEq for ChannelAccess {
    fn eq(&self, other: &ChannelAccess) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for ChannelAccess {}

/// Turns a Socket.IO CONNECT `auth` payload into an [`Identity`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Dev,
    Jwt {
        key: DecodingKey,
        validation: Box<Validation>,
        algorithm: jsonwebtoken::Algorithm,
    },
}

impl Authenticator {
    /// An authenticator for the configured mode.
    pub fn new(auth: &AuthConfig) -> Authenticator {
        let mode = match auth {
            AuthConfig::Dev => Mode::Dev,
            AuthConfig::Jwt(jwt) => Mode::Jwt {
                key: jwt.decoding_key().clone(),
                validation: Box::new(validation(jwt)),
                algorithm: jwt.algorithm(),
            },
        };
        Authenticator { mode }
    }

    /// Authenticates a handshake. `auth` is the Socket.IO CONNECT payload
    /// (`Value::Null` if the client sent none).
    ///
    /// JWT mode reads `auth.token`; dev mode reads `auth.userId`. Every
    /// failure is `UNAUTHORIZED` with a message that never quotes the token.
    pub fn authenticate(&self, auth: &Value) -> Result<Identity, GatewayError> {
        let fields = match auth {
            Value::Object(fields) => Some(fields),
            Value::Null => None,
            _ => return Err(GatewayError::unauthorized("auth must be an object")),
        };
        match &self.mode {
            Mode::Dev => {
                let user_id = match fields.and_then(|f| f.get("userId")) {
                    Some(Value::String(user_id)) => user_id,
                    Some(_) => {
                        return Err(GatewayError::unauthorized("auth.userId must be a string"));
                    }
                    None => {
                        return Err(GatewayError::unauthorized(
                            "missing auth.userId (dev mode identifies users by auth.userId)",
                        ));
                    }
                };
                check_user_id(user_id, "auth.userId")?;
                Ok(Identity::new(user_id.clone()))
            }
            Mode::Jwt {
                key,
                validation,
                algorithm,
            } => {
                let token = match fields.and_then(|f| f.get("token")) {
                    Some(Value::String(token)) => token,
                    Some(_) => {
                        return Err(GatewayError::unauthorized("auth.token must be a string"));
                    }
                    None => return Err(GatewayError::unauthorized("missing auth.token")),
                };
                verify(token, key, validation, *algorithm)
            }
        }
    }

    /// True in dev mode (no token verification).
    pub fn is_dev_mode(&self) -> bool {
        matches!(self.mode, Mode::Dev)
    }
}

/// The validation rules: the one algorithm, `exp` and `sub` required, `nbf`
/// checked, both with [`JWT_LEEWAY`]; `iss`/`aud` when configured.
fn validation(jwt: &JwtSettings) -> Validation {
    let mut validation = Validation::new(jwt.algorithm());
    validation.leeway = JWT_LEEWAY.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = jwt.issuer() {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match jwt.audience() {
        Some(audience) => {
            validation.set_audience(audience);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

fn verify(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
    algorithm: jsonwebtoken::Algorithm,
) -> Result<Identity, GatewayError> {
    if token.is_empty() {
        return Err(GatewayError::unauthorized("auth.token is empty"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(GatewayError::unauthorized("auth.token is too long"));
    }
    let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, validation)
        .map_err(|e| GatewayError::unauthorized(reason(e.kind(), algorithm)))?;
    let claims = data.claims;

    let user_id = match claims.get("sub") {
        Some(Value::String(sub)) => sub,
        _ => return Err(GatewayError::unauthorized("token has no sub claim")),
    };
    check_user_id(user_id, "the token's sub")?;

    let name = match claims.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.is_empty() => None,
        Some(Value::String(name))
            if name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control) =>
        {
            Some(name.clone())
        }
        Some(_) => {
            return Err(GatewayError::unauthorized(format!(
                "the token's name claim must be a string of at most {MAX_NAME_CHARS} characters \
                 without control characters"
            )));
        }
    };

    let channels = match claims.get("channels") {
        None | Some(Value::Null) => ChannelAccess::any(),
        Some(Value::Array(items)) => {
            let patterns: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let patterns = patterns.ok_or_else(|| {
                GatewayError::unauthorized("the token's channels claim must be a list of strings")
            })?;
            ChannelAccess::patterns(patterns).map_err(|why| {
                GatewayError::unauthorized(format!("the token's channels claim: {why}"))
            })?
        }
        Some(_) => {
            return Err(GatewayError::unauthorized(
                "the token's channels claim must be a list of strings",
            ));
        }
    };

    Ok(Identity {
        user_id: user_id.clone(),
        name,
        channels,
    })
}

/// A human reason for a verification failure; never quotes the token.
fn reason(kind: &ErrorKind, algorithm: jsonwebtoken::Algorithm) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf is in the future)".to_owned(),
        ErrorKind::InvalidSignature => "token signature is invalid".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            format!("token must be signed with {algorithm:?}")
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("token's {claim} claim is malformed"),
        ErrorKind::InvalidIssuer => "token issuer (iss) is not accepted".to_owned(),
        ErrorKind::InvalidAudience => "token audience (aud) is not accepted".to_owned(),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => format!(
            "token is malformed, or not signed with {algorithm:?} (alg none is never accepted)"
        ),
        _ => "token could not be verified".to_owned(),
    }
}

/// What is wrong with a user id, if anything. The rule: 1 to
/// [`MAX_USER_ID_CHARS`] characters, no control characters. Handshakes and
/// the server API both apply it (with their own error codes).
pub fn user_id_problem(user_id: &str) -> Option<String> {
    let count = user_id.chars().count();
    if count == 0 {
        Some("is empty".to_owned())
    } else if count > MAX_USER_ID_CHARS {
        Some(format!("is longer than {MAX_USER_ID_CHARS} characters"))
    } else if user_id.chars().any(char::is_control) {
        Some("contains control characters".to_owned())
    } else {
        None
    }
}

/// A handshake's user id must follow [`user_id_problem`]'s rule.
fn check_user_id(user_id: &str, what: &str) -> Result<(), GatewayError> {
    match user_id_problem(user_id) {
        None => Ok(()),
        Some(problem) => Err(GatewayError::unauthorized(format!("{what} {problem}"))),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    const SECRET: &[u8] = b"test-only-secret-0123456789abcdef0123456789";
    const RS_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt/rs256-private.TEST-ONLY.pem");
    const RS_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt/rs256-public.pem");
    const OTHER_RS_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt/other-rs256-public.pem");
    const ES_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt/es256-private.TEST-ONLY.pem");
    const ES_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt/es256-public.pem");

    fn now() -> i64 {
        i64::try_from(get_current_timestamp()).unwrap_or(i64::MAX)
    }

    fn hs256() -> Authenticator {
        Authenticator::new(&AuthConfig::Jwt(JwtSettings::hs256(SECRET)))
    }

    fn from_pem(pem: &[u8]) -> Authenticator {
        let settings = JwtSettings::from_public_key_pem(pem, None).expect("fixture key");
        Authenticator::new(&AuthConfig::Jwt(settings))
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        encode(&Header::new(alg), claims, key).expect("encode")
    }

    fn hs_token(claims: &Value) -> String {
        sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), claims)
    }

    fn good_claims() -> Value {
        json!({ "sub": "alice", "exp": now() + 3600 })
    }

    fn with_token(token: &str) -> Value {
        json!({ "token": token })
    }

    /// Asserts an UNAUTHORIZED failure whose message contains `why` and
    /// does not quote the token.
    fn refused(auth: &Authenticator, payload: &Value, why: &str) {
        let err = auth.authenticate(payload).expect_err(why);
        assert_eq!(err.code, ErrorCode::Unauthorized, "{err}");
        assert!(
            err.message.contains(why),
            "{:?} should contain {why:?}",
            err.message
        );
        if let Some(token) = payload.get("token").and_then(Value::as_str)
            && token.len() > 8
        {
            assert!(!err.message.contains(token), "message quotes the token");
        }
    }

    fn b64(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[test]
    fn hs256_good_token() {
        let claims = json!({
            "sub": "alice",
            "exp": now() + 3600,
            "name": "Alice",
            "channels": ["team-*", "general"],
        });
        let identity = hs256()
            .authenticate(&with_token(&hs_token(&claims)))
            .expect("valid token");
        assert_eq!(identity.user_id, "alice");
        assert_eq!(identity.name.as_deref(), Some("Alice"));
        assert!(identity.may_join("general"));
        assert!(identity.may_join("team-red"));
        assert!(!identity.may_join("random"));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens() {
        let auth = hs256();
        let expired = json!({ "sub": "alice", "exp": now() - 3600 });
        refused(&auth, &with_token(&hs_token(&expired)), "expired");
        // Within the leeway: still accepted.
        let just_expired = json!({ "sub": "alice", "exp": now() - 2 });
        assert!(
            auth.authenticate(&with_token(&hs_token(&just_expired)))
                .is_ok()
        );
        let future = json!({ "sub": "alice", "exp": now() + 7200, "nbf": now() + 3600 });
        refused(&auth, &with_token(&hs_token(&future)), "not valid yet");
        let almost = json!({ "sub": "alice", "exp": now() + 7200, "nbf": now() + 2 });
        assert!(
            auth.authenticate(&with_token(&almost_token(&almost)))
                .is_ok()
        );
    }

    fn almost_token(claims: &Value) -> String {
        hs_token(claims)
    }

    #[test]
    fn wrong_secret() {
        let token = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789"),
            &good_claims(),
        );
        refused(&hs256(), &with_token(&token), "signature is invalid");
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 3600).as_bytes());
        // The hand-made encoding is right: the same payload reads back.
        let readable = format!("{}.{payload}.x", b64(br#"{"alg":"HS256"}"#));
        let claims: Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&readable).expect("decodable");
        assert_eq!(claims["sub"], "alice");
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            refused(&hs256(), &with_token(&token), "alg none");
            refused(&from_pem(RS_PUBLIC), &with_token(&token), "alg none");
        }
    }

    #[test]
    fn other_algorithms_are_refused() {
        // HS256 signed with the RSA public key as HMAC secret: the classic
        // algorithm-confusion attack on an RS256 server.
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(RS_PUBLIC),
            &good_claims(),
        );
        refused(&from_pem(RS_PUBLIC), &with_token(&confused), "RS256");
        // HS512 with the right secret on an HS256 server.
        let hs512 = sign(
            Algorithm::HS512,
            &EncodingKey::from_secret(SECRET),
            &good_claims(),
        );
        refused(&hs256(), &with_token(&hs512), "HS256");
        // ES256 token on an RS256 server, RS256 token on an ES256 server.
        let es_key = EncodingKey::from_ec_pem(ES_PRIVATE).expect("es key");
        let rs_key = EncodingKey::from_rsa_pem(RS_PRIVATE).expect("rs key");
        let es = sign(Algorithm::ES256, &es_key, &good_claims());
        let rs = sign(Algorithm::RS256, &rs_key, &good_claims());
        refused(&from_pem(RS_PUBLIC), &with_token(&es), "RS256");
        refused(&from_pem(ES_PUBLIC), &with_token(&rs), "ES256");
    }

    #[test]
    fn rs256_and_es256_key_pairs() {
        let rs_key = EncodingKey::from_rsa_pem(RS_PRIVATE).expect("rs key");
        let rs = sign(Algorithm::RS256, &rs_key, &good_claims());
        let identity = from_pem(RS_PUBLIC)
            .authenticate(&with_token(&rs))
            .expect("rs256");
        assert_eq!(identity.user_id, "alice");
        refused(
            &from_pem(OTHER_RS_PUBLIC),
            &with_token(&rs),
            "signature is invalid",
        );

        let es_key = EncodingKey::from_ec_pem(ES_PRIVATE).expect("es key");
        let es = sign(Algorithm::ES256, &es_key, &good_claims());
        let identity = from_pem(ES_PUBLIC)
            .authenticate(&with_token(&es))
            .expect("es256");
        assert_eq!(identity.user_id, "alice");
    }

    #[test]
    fn required_claims() {
        let auth = hs256();
        refused(
            &auth,
            &with_token(&hs_token(&json!({ "exp": now() + 60 }))),
            "no sub claim",
        );
        refused(
            &auth,
            &with_token(&hs_token(&json!({ "sub": "alice" }))),
            "no exp claim",
        );
        refused(
            &auth,
            &with_token(&hs_token(&json!({ "sub": "", "exp": now() + 60 }))),
            "sub is empty",
        );
        refused(
            &auth,
            &with_token(&hs_token(&json!({ "sub": 42, "exp": now() + 60 }))),
            "no sub claim",
        );
        refused(
            &auth,
            &with_token(&hs_token(&json!({ "sub": "alice", "exp": "tomorrow" }))),
            "exp",
        );
    }

    #[test]
    fn user_id_rules() {
        let auth = hs256();
        let longest = "u".repeat(MAX_USER_ID_CHARS);
        let ok = json!({ "sub": longest, "exp": now() + 60 });
        assert!(auth.authenticate(&with_token(&hs_token(&ok))).is_ok());
        let too_long = json!({ "sub": format!("{longest}x"), "exp": now() + 60 });
        refused(&auth, &with_token(&hs_token(&too_long)), "longer than 128");
        // Multi-byte characters count as one each.
        let wide = json!({ "sub": "é".repeat(MAX_USER_ID_CHARS), "exp": now() + 60 });
        assert!(auth.authenticate(&with_token(&hs_token(&wide))).is_ok());
        let control = json!({ "sub": "ali\nce", "exp": now() + 60 });
        refused(
            &auth,
            &with_token(&hs_token(&control)),
            "control characters",
        );
    }

    #[test]
    fn malformed_payloads() {
        let auth = hs256();
        refused(&auth, &Value::Null, "missing auth.token");
        refused(&auth, &json!({}), "missing auth.token");
        refused(&auth, &json!({ "userId": "alice" }), "missing auth.token");
        refused(&auth, &json!("token"), "must be an object");
        refused(&auth, &json!({ "token": 5 }), "must be a string");
        refused(&auth, &with_token(""), "empty");
        refused(&auth, &with_token("not.a.jwt-at-all"), "malformed");
        refused(&auth, &with_token("garbage"), "malformed");
        refused(
            &auth,
            &with_token(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            "too long",
        );
        let bad_name = json!({ "sub": "a", "exp": now() + 60, "name": 5 });
        refused(&auth, &with_token(&hs_token(&bad_name)), "name claim");
        let bad_channels = json!({ "sub": "a", "exp": now() + 60, "channels": "general" });
        refused(
            &auth,
            &with_token(&hs_token(&bad_channels)),
            "channels claim",
        );
        let bad_pattern = json!({ "sub": "a", "exp": now() + 60, "channels": ["te[am]"] });
        refused(
            &auth,
            &with_token(&hs_token(&bad_pattern)),
            "channels claim",
        );
    }

    #[test]
    fn issuer_and_audience() {
        let settings = JwtSettings::hs256(SECRET)
            .with_issuer("https://auth.example.com")
            .with_audience(vec!["chat".to_owned()]);
        let auth = Authenticator::new(&AuthConfig::Jwt(settings));
        let good = json!({
            "sub": "a", "exp": now() + 60, "iss": "https://auth.example.com", "aud": "chat",
        });
        assert!(auth.authenticate(&with_token(&hs_token(&good))).is_ok());
        let wrong_iss = json!({ "sub": "a", "exp": now() + 60, "iss": "evil", "aud": "chat" });
        refused(&auth, &with_token(&hs_token(&wrong_iss)), "issuer");
        let wrong_aud = json!({
            "sub": "a", "exp": now() + 60, "iss": "https://auth.example.com", "aud": "other",
        });
        refused(&auth, &with_token(&hs_token(&wrong_aud)), "audience");
        let no_aud = json!({ "sub": "a", "exp": now() + 60, "iss": "https://auth.example.com" });
        refused(&auth, &with_token(&hs_token(&no_aud)), "no aud claim");
        // Without a configured audience, an `aud` claim is ignored.
        let with_aud = json!({ "sub": "a", "exp": now() + 60, "aud": "anything" });
        assert!(
            hs256()
                .authenticate(&with_token(&hs_token(&with_aud)))
                .is_ok()
        );
    }

    #[test]
    fn dev_mode_trusts_user_id_only() {
        let auth = Authenticator::new(&AuthConfig::Dev);
        assert!(auth.is_dev_mode());
        let identity = auth
            .authenticate(&json!({ "userId": "alice" }))
            .expect("dev");
        assert_eq!(identity, Identity::new("alice"));
        assert!(identity.may_join("anything"));
        refused(&auth, &Value::Null, "missing auth.userId");
        refused(
            &auth,
            &json!({ "token": hs_token(&good_claims()) }),
            "missing auth.userId",
        );
        refused(&auth, &json!({ "userId": 42 }), "must be a string");
        refused(&auth, &json!({ "userId": "" }), "empty");
        refused(
            &auth,
            &json!({ "userId": "x".repeat(129) }),
            "longer than 128",
        );
        refused(&auth, &json!({ "userId": "a\u{0}b" }), "control characters");
    }

    #[test]
    fn channel_patterns() {
        let team = ChannelAccess::patterns(["team-*"]).expect("valid");
        assert!(team.allows("team-red"));
        assert!(team.allows("team-"));
        assert!(team.allows("team-red:dev.ops"), "* crosses : and .");
        assert!(!team.allows("xteam-red"));
        assert!(!team.allows("Team-red"), "case-sensitive");

        let all = ChannelAccess::patterns(["*"]).expect("valid");
        assert!(all.allows("general") && all.allows("a:b.c"));

        let exact = ChannelAccess::patterns(["general"]).expect("valid");
        assert!(exact.allows("general"));
        assert!(!exact.allows("general2") && !exact.allows("genera"));

        let middle = ChannelAccess::patterns(["org.*.public"]).expect("valid");
        assert!(middle.allows("org.acme.public"));
        assert!(!middle.allows("org.acme.private"));

        let none = ChannelAccess::patterns(Vec::<String>::new()).expect("valid");
        assert!(!none.allows("general"));
        assert!(ChannelAccess::any().allows("general"));
        assert_eq!(ChannelAccess::any().pattern_list(), None);

        for bad in ["", "a b", "a?b", "[ab]", "{a,b}", "a\\*", "a/b"] {
            assert!(ChannelAccess::patterns([bad]).is_err(), "{bad:?}");
        }
    }
}
