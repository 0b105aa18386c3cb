//! Access tokens: who may join which room and do what.
//!
//! Tokens are JWTs signed with HS256 by an API secret; the header's `kid`
//! names the API key, so several keys can be valid at once (rotation). The
//! app's backend mints them (or the `signalling token` CLI); the signalling
//! service only verifies. Tokens carry no media keys: those never leave the
//! participants.
//!
//! ```
//! use signalling::auth::{Authenticator, Grants, TokenRequest};
//! let auth = Authenticator::new([("dev-key", "a long dev secret, 32 bytes or more")]).unwrap();
//! let token = auth
//!     .mint("dev-key", TokenRequest::new("alice", "standup", Grants::participant()), 600)
//!     .unwrap();
//! let claims = auth.verify(&token, Some("standup")).unwrap();
//! assert_eq!(claims.sub, "alice");
//! assert!(claims.grants.publish);
//! ```

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};

/// Shortest API secret accepted: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_LEN: usize = 32;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Grants {
    /// Enter the room.
    #[serde(default)]
    pub join: bool,
    /// Send audio and video.
    #[serde(default)]
    pub publish: bool,
    /// Receive others' media.
    #[serde(default)]
    pub subscribe: bool,
    /// Send data-channel and relayed messages (chat, files, key exchange).
    #[serde(default)]
    pub publish_data: bool,
    /// Use the server REST API (create/delete rooms, kick, mute).
    #[serde(default)]
    pub admin: bool,
}

impl Grants {
    /// Everything a normal participant does.
    pub fn participant() -> Self {
        Grants {
            join: true,
            publish: true,
            subscribe: true,
            publish_data: true,
            admin: false,
        }
    }

    /// Parses a comma-separated list such as `join,subscribe`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut g = Grants::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "join" => g.join = true,
                "publish" => g.publish = true,
                "subscribe" => g.subscribe = true,
                "publish-data" | "publish_data" => g.publish_data = true,
                "admin" => g.admin = true,
                other => {
                    return Err(format!(
                        "unknown grant {other:?} (expected join, publish, subscribe, publish-data, admin)"
                    ));
                }
            }
        }
        Ok(g)
    }
}

/// The claims Veil puts in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Participant identity.
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The one room this token is for; `None` only for admin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// What the bearer may do.
    pub grants: Grants,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// The API key that signed it.
    pub iss: String,
}

/// What to put in a new token.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// Participant identity.
    pub identity: String,
    /// Display name.
    pub name: Option<String>,
    /// Room, or `None` for an admin token.
    pub room: Option<String>,
    /// Grants.
    pub grants: Grants,
}

impl TokenRequest {
    /// A token for `identity` in `room`.
    pub fn new(identity: &str, room: &str, grants: Grants) -> Self {
        TokenRequest {
            identity: identity.into(),
            name: None,
            room: Some(room.into()),
            grants,
        }
    }
}

/// Why a token was refused. [`AuthError::status`] gives the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum AuthError {
    /// No token was presented.
    #[error("an access token is required")]
    Missing,
    /// Not a JWT, or its claims are not Veil's.
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    /// Signed with a key this server does not know.
    #[error("the access token was signed with an unknown API key {0:?}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the access token's signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("the access token has expired")]
    Expired,
    /// Valid, but for another room.
    #[error("the access token is for room {token_room:?}, not {requested:?}")]
    WrongRoom {
        /// The room in the token.
        token_room: String,
        /// The room asked for.
        requested: String,
    },
    /// Valid, but without the needed grant.
    #[error("the access token does not grant {0}")]
    NotGranted(&'static str),
}

impl AuthError {
    /// 401 when the token itself is missing or bad, 403 when it is valid but
    /// does not allow the request.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::WrongRoom { .. } | AuthError::NotGranted(_) => 403,
            _ => 401,
        }
    }
}

/// Why an [`Authenticator`] could not be built or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Secret shorter than [`MIN_SECRET_LEN`].
    #[error("the secret for API key {0:?} is shorter than {MIN_SECRET_LEN} bytes")]
    WeakSecret(String),
    /// Asked to sign with a key we do not have.
    #[error("no API key {0:?} is configured")]
    UnknownKey(String),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// Holds the API keys; mints and verifies tokens.
#[derive(Clone)]
pub struct Authenticator {
    keys: HashMap<String, String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authenticator {
    /// From `(api key, secret)` pairs.
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, KeyError> {
        let mut map = HashMap::new();
        for (key, secret) in keys {
            if secret.len() < MIN_SECRET_LEN {
                return Err(KeyError::WeakSecret(key.into()));
            }
            map.insert(key.to_string(), secret.to_string());
        }
        Ok(Authenticator { keys: map })
    }

    /// Mints a token valid for `ttl_secs`, signed by `key`.
    pub fn mint(
        &self,
        key: &str,
        request: TokenRequest,
        ttl_secs: u64,
    ) -> Result<String, KeyError> {
        let secret = self
            .keys
            .get(key)
            .ok_or_else(|| KeyError::UnknownKey(key.into()))?;
        let iat = now_secs();
        let claims = Claims {
            sub: request.identity,
            name: request.name,
            room: request.room,
            grants: request.grants,
            iat,
            exp: iat + ttl_secs,
            iss: key.to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.to_string());
        encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Verifies a token; with `room`, also that it is for that room.
    pub fn verify(&self, token: &str, room: Option<&str>) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Malformed(format!(
                "algorithm {:?} is not HS256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("no kid (API key) in the header".into()))?;
        let secret = self
            .keys
            .get(&kid)
            .ok_or(AuthError::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[kid.as_str()]);
        let data = decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        let claims = data.claims;
        if let Some(requested) = room {
            match &claims.room {
                Some(r) if r == requested => {}
                other => {
                    return Err(AuthError::WrongRoom {
                        token_room: other.clone().unwrap_or_default(),
                        requested: requested.into(),
                    });
                }
            }
            if !claims.grants.join {
                return Err(AuthError::NotGranted("join"));
            }
        }
        Ok(claims)
    }
}

/// A random API secret for dev mode (48 hex characters).
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn auth() -> Authenticator {
        Authenticator::new([
            ("k1", SECRET),
            ("k2", "another secret that is long enough!!"),
        ])
        .unwrap()
    }

    fn token(key: &str, room: &str, grants: Grants, ttl: u64) -> String {
        auth()
            .mint(key, TokenRequest::new("alice", room, grants), ttl)
            .unwrap()
    }

    #[test]
    fn a_valid_token_round_trips_with_either_key() {
        for key in ["k1", "k2"] {
            let c = auth()
                .verify(&token(key, "r", Grants::participant(), 60), Some("r"))
                .unwrap();
            assert_eq!(
                (c.sub.as_str(), c.room.as_deref(), c.iss.as_str()),
                ("alice", Some("r"), key)
            );
            assert!(c.exp > c.iat);
        }
    }

    #[test]
    fn every_kind_of_bad_token_is_refused_with_its_reason() {
        let a = auth();
        let good = token("k1", "r", Grants::participant(), 60);
        assert_eq!(a.verify("", Some("r")), Err(AuthError::Missing));
        assert!(matches!(
            a.verify("not.a.jwt", Some("r")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            a.verify("garbage", Some("r")),
            Err(AuthError::Malformed(_))
        ));

        // Signed by a key the server does not have.
        let stranger = Authenticator::new([("k9", SECRET)]).unwrap();
        let foreign = stranger
            .mint(
                "k9",
                TokenRequest::new("eve", "r", Grants::participant()),
                60,
            )
            .unwrap();
        assert_eq!(
            a.verify(&foreign, Some("r")),
            Err(AuthError::UnknownKey("k9".into()))
        );

        // Right kid, wrong secret: a forgery.
        let forger =
            Authenticator::new([("k1", "a different secret, also 32+ bytes long")]).unwrap();
        let forged = forger
            .mint(
                "k1",
                TokenRequest::new("eve", "r", Grants::participant()),
                60,
            )
            .unwrap();
        assert_eq!(a.verify(&forged, Some("r")), Err(AuthError::BadSignature));

        // Tampered payload keeps the old signature.
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(a.verify(&parts.join("."), Some("r")).is_err());

        // Expired (minted with a negative lifetime by hand).
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let old = Claims {
            sub: "alice".into(),
            name: None,
            room: Some("r".into()),
            grants: Grants::participant(),
            iat: now_secs() - 100,
            exp: now_secs() - 10,
            iss: "k1".into(),
        };
        let expired = encode(&header, &old, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
        assert_eq!(a.verify(&expired, Some("r")), Err(AuthError::Expired));
        assert_eq!(AuthError::Expired.status(), 401);

        // Valid but for another room, or without the join grant: 403.
        let e = a.verify(&good, Some("other")).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(matches!(e, AuthError::WrongRoom { .. }));
        let no_join = token("k1", "r", Grants::parse("subscribe").unwrap(), 60);
        assert_eq!(
            a.verify(&no_join, Some("r")),
            Err(AuthError::NotGranted("join"))
        );

        // `alg: none` and other algorithms are refused outright.
        let none = format!("{}.{}.", b64(r#"{"alg":"none","kid":"k1"}"#), parts[1]);
        assert!(matches!(
            a.verify(&none, Some("r")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn weak_secrets_and_unknown_signing_keys_are_errors() {
        assert!(matches!(
            Authenticator::new([("k", "short")]),
            Err(KeyError::WeakSecret(_))
        ));
        assert!(matches!(
            auth().mint("nope", TokenRequest::new("a", "r", Grants::default()), 1),
            Err(KeyError::UnknownKey(_))
        ));
    }

    #[test]
    fn grants_parse_from_the_command_line() {
        let g = Grants::parse("join, subscribe,publish-data").unwrap();
        assert!(g.join && g.subscribe && g.publish_data && !g.publish && !g.admin);
        assert!(Grants::parse("join,fly").unwrap_err().contains("fly"));
        assert_eq!(Grants::parse("").unwrap(), Grants::default());
    }

    fn b64(s: &str) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
