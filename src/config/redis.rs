//! Redis settings: `REDIS_URL`, or `REDIS_HOST` and its companions.

use std::fmt;

use super::Secret;
use super::sources::Sources;

/// How to reach Redis. Read and validated at startup; used by the Redis
/// backends.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// The connection URL, always `redis://` or `rediss://` (a `+cluster`
    /// scheme marker has moved to [`RedisSettings::cluster`]). May hold a
    /// password, hence the [`Secret`]; log [`RedisSettings::redacted_url`].
    pub url: Secret<String>,
    /// Redis is a cluster (`+cluster` scheme or `REDIS_CLUSTER=true`).
    pub cluster: bool,
    /// Connect over TLS (`rediss://` or `REDIS_TLS=true`).
    pub tls: bool,
    /// Prefix of every key chatgate writes, so deployments can share a Redis.
    pub key_prefix: String,
}

impl RedisSettings {
    /// The URL with any password replaced by `MASKED`, safe to log.
    pub fn redacted_url(&self) -> String {
        redact(self.url.expose())
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.redacted_url())
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Replaces the password of `scheme://user:password@host...` by `MASKED`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "MASKED".to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(user, _)| user);
            format!("{scheme}://{user}:MASKED@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Settings that only make sense with `REDIS_HOST`.
const HOST_PARTS: [&str; 5] = [
    "redis-port",
    "redis-password",
    "redis-username",
    "redis-tls",
    "redis-db",
];

/// Resolves the Redis settings; `None` when Redis is not configured or a
/// problem was found (then recorded in `problems`).
pub(super) fn resolve(src: &Sources, problems: &mut Vec<String>) -> Option<RedisSettings> {
    let url = src.explicit("redis-url");
    let host = src.explicit("redis-host");
    let before = problems.len();

    let cluster_flag = src.parse("redis-cluster", problems, super::parse_bool);
    let key_prefix = src.parse("redis-key-prefix", problems, parse_key_prefix);

    let settings = match (url, host) {
        (None, None) => {
            for long in HOST_PARTS {
                if src.explicit(long).is_some() {
                    problems.push(format!(
                        "{} is set, but neither REDIS_URL nor REDIS_HOST is (Redis is off)",
                        src.label(long)
                    ));
                }
            }
            return None;
        }
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{} and {} are both set: use one of them",
                src.label("redis-url"),
                src.label("redis-host")
            ));
            return None;
        }
        (Some(url), None) => {
            for long in HOST_PARTS {
                if src.explicit(long).is_some() {
                    problems.push(format!(
                        "{} only applies with REDIS_HOST; with REDIS_URL, put it in the URL",
                        src.label(long)
                    ));
                }
            }
            from_url(&url.text, cluster_flag.unwrap_or(false))
                .map_err(|why| problems.push(format!("{}: {why}", src.label("redis-url"))))
                .ok()
        }
        (None, Some(host)) => from_parts(src, &host.text, cluster_flag.unwrap_or(false), problems),
    };
    let mut settings = settings?;
    if problems.len() > before {
        return None;
    }
    settings.key_prefix = key_prefix?;
    Some(settings)
}

/// Parses and normalizes `REDIS_URL`. Error texts never quote the URL (it
/// may hold a password).
fn from_url(url: &str, cluster_flag: bool) -> Result<RedisSettings, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("is not a URL: expected redis://host:port".to_owned());
    };
    let (tls, scheme_cluster) = match scheme.to_ascii_lowercase().as_str() {
        "redis" => (false, false),
        "rediss" => (true, false),
        "redis+cluster" => (false, true),
        "rediss+cluster" => (true, true),
        _ => {
            return Err(
                "the scheme must be redis://, rediss:// (TLS), redis+cluster:// or \
                 rediss+cluster://"
                    .to_owned(),
            );
        }
    };
    let cluster = scheme_cluster || cluster_flag;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.is_empty() || host_port.starts_with(':') {
        return Err("has no host".to_owned());
    }
    if host_port
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("the host contains spaces or control characters".to_owned());
    }
    let db_text = path
        .strip_prefix('/')
        .map(|p| p.split(['?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if !db_text.is_empty() {
        match db_text.parse::<u32>() {
            Ok(0) => {}
            Ok(_) if cluster => {
                return Err("a Redis cluster has only database 0".to_owned());
            }
            Ok(_) => {}
            Err(_) => return Err("the path must be a database number, e.g. /0".to_owned()),
        }
    }
    let base = if tls { "rediss" } else { "redis" };
    Ok(RedisSettings {
        url: Secret::new(format!("{base}://{rest}")),
        cluster,
        tls,
        key_prefix: String::new(),
    })
}

/// Builds the URL from `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`,
/// `REDIS_USERNAME`, `REDIS_TLS` and `REDIS_DB`.
fn from_parts(
    src: &Sources,
    host: &str,
    cluster: bool,
    problems: &mut Vec<String>,
) -> Option<RedisSettings> {
    let host = host.trim();
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#".contains(c));
    if !host_ok {
        problems.push(format!(
            "{}: {host:?} is not a host name or IP address",
            src.label("redis-host")
        ));
    }
    let port = src.parse("redis-port", problems, |text| {
        match text.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!("{text:?} is not a port number (1-65535)")),
        }
    });
    let tls = src.parse("redis-tls", problems, super::parse_bool);
    let db = src.parse("redis-db", problems, |text| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not a database number"))
    });
    if cluster && db.is_some_and(|db| db != 0) {
        problems.push(format!(
            "{}: a Redis cluster has only database 0",
            src.label("redis-db")
        ));
    }
    let username = src.explicit("redis-username").map(|v| v.text.clone());
    let password = src.explicit("redis-password").map(|v| v.text.clone());
    if !host_ok {
        return None;
    }
    let (port, tls, db) = (port?, tls?, db?);
    let userinfo = match (username, password) {
        (None, None) => String::new(),
        (user, None) => format!("{}@", encode(&user.unwrap_or_default())),
        (user, Some(pass)) => format!("{}:{}@", encode(&user.unwrap_or_default()), encode(&pass)),
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let scheme = if tls { "rediss" } else { "redis" };
    Some(RedisSettings {
        url: Secret::new(format!("{scheme}://{userinfo}{host}:{port}/{db}")),
        cluster,
        tls,
        key_prefix: String::new(),
    })
}

/// Percent-encodes a URL userinfo component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A key prefix: 1-64 characters of `[A-Za-z0-9_.:-]`.
fn parse_key_prefix(text: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} must be 1-64 characters of letters, digits, _ . : -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes() {
        let plain = from_url("redis://localhost:6379", false).expect("valid");
        assert!(!plain.tls && !plain.cluster);
        let tls = from_url("rediss://:pw@cache:6380/2", false).expect("valid");
        assert!(tls.tls && !tls.cluster);
        let cluster = from_url("rediss+cluster://node1:7000", false).expect("valid");
        assert!(cluster.tls && cluster.cluster);
        assert_eq!(cluster.url.expose(), "rediss://node1:7000");
        let flagged = from_url("redis://node1:7000", true).expect("valid");
        assert!(flagged.cluster);
        for bad in [
            "http://localhost",
            "localhost:6379",
            "redis://",
            "redis://:pw@",
            "redis://host/x",
            "redis+cluster://host/3",
        ] {
            assert!(from_url(bad, false).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn url_errors_never_quote_the_url() {
        let err = from_url("http://user:hunter2@host", false).expect_err("bad scheme");
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("redis://user:hunter2@host:1/0"),
            "redis://user:MASKED@host:1/0"
        );
        assert_eq!(redact("redis://:hunter2@host"), "redis://:MASKED@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn userinfo_is_percent_encoded() {
        assert_eq!(encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
        assert_eq!(encode("plain-1.2_3~"), "plain-1.2_3~");
    }
}
