//! Tests of loading and validating settings. They go through
//! [`Config::from_sources`], never the process environment.

use std::path::{Path, PathBuf};

use super::*;

fn env_map(env: &[(&str, &str)]) -> HashMap<String, String> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_sources(
        std::iter::once("chatgate").chain(args.iter().copied()),
        &env_map(env),
    )
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

fn problems(result: Result<Config, ConfigError>) -> Vec<String> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(e) => e.problems,
    }
}

const SECRET: &str = "test-only-secret-0123456789abcdef0123456789";

#[test]
fn defaults() {
    let config = load(&[], &[]).expect("defaults are valid");
    assert_eq!(config.bind, "127.0.0.1:3000".parse().expect("addr"));
    assert_eq!(config.socket_url, "http://127.0.0.1:3000");
    assert_eq!(config.frontend_origins, None);
    assert!(config.is_dev_mode());
    assert!(config.redis.is_none());
    assert_eq!(config.rate_limits, RateLimits::default());
    assert_eq!(config.max_message_length, 4000);
    assert_eq!(config.max_payload_bytes, 100_000);
    assert_eq!(config.max_connections_per_user, 20);
    assert_eq!(config.max_channels_per_user, 500);
    assert_eq!(config.history_size, 500);
    assert_eq!(config.history_ttl, Duration::from_millis(86_400_000));
    assert_eq!(
        (config.history_size, config.history_ttl),
        (
            Config::default().history_size,
            Config::default().history_ttl
        )
    );
    assert_eq!(config.ping_interval, Duration::from_secs(25));
    assert_eq!(config.ping_timeout, Duration::from_secs(20));
    assert_eq!(config.connect_timeout, Duration::from_secs(45));
    assert_eq!(config.max_queued_packets, 1024);
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(config.log_format, LogFormat::Human);
    assert!(!config.websocket_only);
    // The hand-written Default and the declared defaults agree.
    let d = Config::default();
    assert_eq!(
        (
            config.bind,
            &config.socket_url,
            &config.frontend_origins,
            d.is_dev_mode()
        ),
        (d.bind, &d.socket_url, &d.frontend_origins, true)
    );
    assert_eq!(config.rate_limits, d.rate_limits);
    assert_eq!(
        [
            config.max_message_length,
            config.max_payload_bytes,
            config.max_connections_per_user,
            config.max_channels_per_user,
            config.max_queued_packets,
        ],
        [
            d.max_message_length,
            d.max_payload_bytes,
            d.max_connections_per_user,
            d.max_channels_per_user,
            d.max_queued_packets,
        ]
    );
    assert_eq!(
        [
            config.ping_interval,
            config.ping_timeout,
            config.connect_timeout,
            config.shutdown_timeout
        ],
        [
            d.ping_interval,
            d.ping_timeout,
            d.connect_timeout,
            d.shutdown_timeout
        ]
    );
    assert_eq!(
        (config.log_format, config.websocket_only),
        (d.log_format, d.websocket_only)
    );
}

#[test]
fn env_names() {
    let config = load(
        &[],
        &[
            ("BIND_ADDR", "127.0.0.1:4001"),
            ("SOCKET_URL", "https://chat.example.com"),
            (
                "FRONTEND_URL",
                "http://localhost:3001,https://App.Example.com/",
            ),
            ("RATE_LIMITS", "message:send=5/s"),
            ("MAX_MESSAGE_LENGTH", "10"),
            ("MAX_PAYLOAD_BYTES", "2048"),
            ("MAX_CONNECTIONS_PER_USER", "3"),
            ("MAX_CHANNELS_PER_USER", "4"),
            ("PING_INTERVAL_MS", "1000"),
            ("PING_TIMEOUT_MS", "2000"),
            ("CONNECT_TIMEOUT_MS", "3000"),
            ("MAX_QUEUED_PACKETS", "16"),
            ("SHUTDOWN_TIMEOUT_MS", "4000"),
            ("LOG_FORMAT", "json"),
            ("WEBSOCKET_ONLY", "true"),
            ("RATE_LIMIT_FAIL_OPEN", "true"),
            ("CLUSTER_QUEUE_CAPACITY", "8"),
            ("HISTORY_SIZE", "0"),
            ("HISTORY_TTL_MS", "60000"),
            ("REDIS_URL", "redis://cache:6379/1"),
            ("REDIS_KEY_PREFIX", "test"),
        ],
    )
    .expect("valid");
    assert_eq!(config.bind.port(), 4001);
    assert_eq!(config.socket_url, "https://chat.example.com");
    assert_eq!(
        config.frontend_origins,
        Some(vec![
            "http://localhost:3001".to_owned(),
            "https://app.example.com".to_owned()
        ])
    );
    assert_eq!(
        config.rate_limits.for_event("message:send"),
        Rate::new(5, Duration::from_secs(1))
    );
    assert_eq!(config.max_message_length, 10);
    assert_eq!(config.max_payload_bytes, 2048);
    assert_eq!(config.max_connections_per_user, 3);
    assert_eq!(config.max_channels_per_user, 4);
    assert_eq!(config.ping_interval, Duration::from_millis(1000));
    assert_eq!(config.ping_timeout, Duration::from_millis(2000));
    assert_eq!(config.connect_timeout, Duration::from_millis(3000));
    assert_eq!(config.max_queued_packets, 16);
    assert_eq!(config.shutdown_timeout, Duration::from_millis(4000));
    assert_eq!(config.log_format, LogFormat::Json);
    assert!(config.websocket_only);
    assert!(config.rate_limit_fail_open);
    assert_eq!(config.cluster_queue_capacity, 8);
    assert_eq!(config.history_size, 0, "0 turns history off");
    assert_eq!(config.history_ttl, Duration::from_millis(60_000));
    let redis = config.redis.expect("redis");
    assert_eq!(redis.url.expose(), "redis://cache:6379/1");
    assert_eq!(redis.key_prefix, "test");
    assert!(!redis.cluster && !redis.tls);
}

#[test]
fn history_settings_are_validated() {
    let config = load(&["--history-size", "20", "--history-ttl-ms", "1000"], &[]).expect("valid");
    assert_eq!(config.history_size, 20);
    assert_eq!(config.history_ttl, Duration::from_millis(1000));
    for (flag, value) in [
        ("--history-size", "1e3"),
        ("--history-size", "100001"),
        ("--history-size", "ten"),
        ("--history-ttl-ms", "0"),
        ("--history-ttl-ms", "31536000001"),
        ("--history-ttl-ms", "1.5"),
    ] {
        let found = problems(load(&[flag, value], &[]));
        assert_eq!(found.len(), 1, "{flag} {value}: {found:?}");
        assert!(found[0].contains(flag), "{flag} {value}: {found:?}");
    }
}

#[test]
fn cli_flags() {
    let config = load(
        &[
            "--bind=[::1]:3001",
            "--max-message-length",
            "7",
            "--websocket-only",
            "--log-format",
            "json",
        ],
        &[],
    )
    .expect("valid");
    assert_eq!(config.bind, "[::1]:3001".parse().expect("addr"));
    assert_eq!(config.socket_url, "http://[::1]:3001");
    assert_eq!(config.max_message_length, 7);
    assert!(config.websocket_only);
    assert_eq!(config.log_format, LogFormat::Json);
    let off = load(&["--websocket-only=false"], &[]).expect("valid");
    assert!(!off.websocket_only);
}

#[test]
fn precedence_cli_then_env_then_file_then_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("chatgate.toml");
    std::fs::write(
        &file,
        "max-message-length = 1\nmax-channels-per-user = 2\nmax-queued-packets = 3\n",
    )
    .expect("write");
    let file = file.display().to_string();
    let config = load(
        &["--config", &file, "--max-message-length", "100"],
        &[
            ("MAX_MESSAGE_LENGTH", "200"),
            ("MAX_CHANNELS_PER_USER", "300"),
        ],
    )
    .expect("valid");
    assert_eq!(config.max_message_length, 100, "CLI beats env and file");
    assert_eq!(config.max_channels_per_user, 300, "env beats file");
    assert_eq!(config.max_queued_packets, 3, "file beats default");
    assert_eq!(config.max_connections_per_user, 20, "default");

    // CONFIG_FILE names the file too.
    let via_env = load(&[], &[("CONFIG_FILE", &file)]).expect("valid");
    assert_eq!(via_env.max_queued_packets, 3);
}

#[test]
fn empty_env_vars_count_as_unset() {
    let config = load(&[], &[("BIND_ADDR", ""), ("JWT_SECRET", "")]).expect("valid");
    assert!(config.is_dev_mode());
    assert_eq!(config.bind.port(), 3000);
}

#[test]
fn unknown_file_keys_are_all_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:1\"\nprot = 1\nmax_mesage_length = 2\n",
    )
    .expect("write");
    let found = problems(load(&["--config", &file.display().to_string()], &[]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("unknown key `max_mesage_length`")
            || found[1].contains("max_mesage_length")
    );
    assert!(found.iter().any(|p| p.contains("unknown key `prot`")));
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(load(
        &["--max-message-length", "0"],
        &[
            ("BIND_ADDR", "nowhere"),
            ("RATE_LIMITS", "message:send=fast"),
        ],
    ));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found.iter().any(|p| p.starts_with("BIND_ADDR:")));
    assert!(found.iter().any(|p| p.starts_with("--max-message-length:")));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("RATE_LIMITS:") && p.contains("message:send=fast"))
    );
    let shown = ConfigError { problems: found }.to_string();
    assert_eq!(shown.lines().count(), 4, "{shown}");
    assert!(shown.starts_with("invalid configuration (3 problems):"));
}

/// Regression: `RATE_LIMITS=message:sned=3/min` was accepted and
/// `message:send` silently stayed at 60/min.
#[test]
fn a_misspelt_rate_limit_event_is_refused_with_a_suggestion() {
    let found = problems(load(&[], &[("RATE_LIMITS", "message:sned=3/min")]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("RATE_LIMITS:"), "{found:?}");
    assert!(found[0].contains("did you mean message:send?"), "{found:?}");
    let found = problems(load(&["--rate-limits", "typign=1/s"], &[]));
    assert!(found[0].contains("did you mean typing?"), "{found:?}");
}

#[test]
fn dev_mode_only_on_loopback() {
    for refused in [
        "0.0.0.0:3000",
        "[::]:3000",
        "192.168.1.10:3000",
        "[::ffff:10.0.0.1]:1",
    ] {
        let found = problems(load(&["--bind", refused], &[]));
        assert_eq!(found.len(), 1, "{refused}: {found:?}");
        assert!(found[0].contains("loopback"), "{}", found[0]);
    }
    for allowed in [
        "127.0.0.1:3000",
        "[::1]:3000",
        "127.1.2.3:80",
        "[::ffff:127.0.0.1]:1",
    ] {
        let config = load(&["--bind", allowed], &[]).expect(allowed);
        assert!(config.is_dev_mode());
    }
    // With a JWT key, any address is fine.
    let config = load(
        &["--bind", "0.0.0.0:3000"],
        &[
            ("JWT_SECRET", SECRET),
            ("FRONTEND_URL", "https://chat.example.com"),
        ],
    )
    .expect("valid");
    assert!(!config.is_dev_mode());
    assert_eq!(config.socket_url, "http://0.0.0.0:3000");
}

#[test]
fn jwt_settings() {
    let hs = load(
        &[],
        &[
            ("JWT_SECRET", SECRET),
            ("FRONTEND_URL", "https://chat.example.com"),
            ("JWT_ISSUER", "https://auth.example.com"),
            ("JWT_AUDIENCE", "chat, admin"),
        ],
    )
    .expect("valid");
    let AuthConfig::Jwt(jwt) = &hs.auth else {
        panic!("expected JWT mode")
    };
    assert_eq!(jwt.algorithm(), jsonwebtoken::Algorithm::HS256);
    assert_eq!(jwt.issuer(), Some("https://auth.example.com"));
    assert_eq!(
        jwt.audience(),
        Some(&["chat".to_owned(), "admin".to_owned()][..])
    );

    let rs = load(
        &["--jwt-public-key-file", &fixture("jwt/rs256-public.pem")],
        &[("FRONTEND_URL", "https://chat.example.com")],
    )
    .expect("valid");
    let AuthConfig::Jwt(jwt) = &rs.auth else {
        panic!("expected JWT mode")
    };
    assert_eq!(jwt.algorithm(), jsonwebtoken::Algorithm::RS256);

    let origins = [("FRONTEND_URL", "https://chat.example.com")];
    let both = problems(load(
        &["--jwt-public-key-file", &fixture("jwt/rs256-public.pem")],
        &[("JWT_SECRET", SECRET), origins[0]],
    ));
    assert_eq!(both.len(), 1, "{both:?}");
    assert!(both[0].contains("both set"));

    let bad_pem = problems(load(
        &["--jwt-public-key-file", &fixture("config/valid/empty.toml")],
        &origins,
    ));
    assert_eq!(bad_pem.len(), 1, "{bad_pem:?}");
    assert!(bad_pem[0].starts_with("--jwt-public-key-file:"));

    let missing = problems(load(
        &[],
        &[("JWT_PUBLIC_KEY_FILE", "/no/such.pem"), origins[0]],
    ));
    assert!(
        missing[0].contains("cannot read /no/such.pem"),
        "{missing:?}"
    );

    let alg_without_key = problems(load(&[], &[("JWT_ALGORITHM", "RS256")]));
    assert!(
        alg_without_key[0].contains("no JWT key"),
        "{alg_without_key:?}"
    );

    let bad_alg = problems(load(
        &[],
        &[
            ("JWT_SECRET", SECRET),
            ("JWT_ALGORITHM", "none"),
            origins[0],
        ],
    ));
    assert_eq!(bad_alg.len(), 1, "{bad_alg:?}");

    let empty_secret = problems(load(&["--jwt-secret="], &origins));
    assert!(
        empty_secret[0].contains("must not be empty"),
        "{empty_secret:?}"
    );
}

#[test]
fn origins() {
    let ok = parse_origins(
        "http://localhost:3001, HTTPS://Chat.Example.com:443/ ,http://[::1]:8080,\
         http://localhost:3001,http://a.example:80",
    )
    .expect("valid");
    assert_eq!(
        ok,
        [
            "http://localhost:3001",
            "https://chat.example.com",
            "http://[::1]:8080",
            "http://a.example",
        ]
    );
    for bad in [
        "*",
        "localhost:3001",
        "http://localhost:3001/app",
        "http://",
        "http://host:0",
        "http://host:99999",
        "http://*.example.com",
        "http://user@host",
        "http://[::1",
        ",",
    ] {
        assert!(parse_origins(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn secrets_never_shown() {
    let secret_password = "hunter2-the-password";
    let config = load(
        &[],
        &[
            ("JWT_SECRET", SECRET),
            ("FRONTEND_URL", "https://chat.example.com"),
            ("REDIS_HOST", "cache"),
            ("REDIS_PASSWORD", secret_password),
        ],
    )
    .expect("valid");
    let shown = format!("{config:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(secret_password), "{shown}");
    assert!(shown.contains("MASKED"));
    let redis = config.redis.as_ref().expect("redis");
    assert_eq!(
        redis.url.expose(),
        &format!("redis://:{secret_password}@cache:6379/0")
    );
    assert_eq!(redis.redacted_url(), "redis://:MASKED@cache:6379/0");
    assert_eq!(Secret::new("x").to_string(), "MASKED");
    assert_eq!(format!("{:?}", Secret::new("x")), "MASKED");

    // Errors about secret settings never quote them either.
    let err = load(
        &["--jwt-algorithm", "RS256"],
        &[
            ("JWT_SECRET", SECRET),
            ("REDIS_URL", "http://:hunter2-the-password@cache"),
            ("REDIS_PASSWORD", secret_password),
        ],
    )
    .expect_err("invalid");
    let shown = format!("{err}\n{err:?}");
    assert!(err.problems.len() >= 3, "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(secret_password), "{shown}");
}

#[test]
fn redis_settings() {
    let parts = load(
        &[],
        &[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_USERNAME", "chat"),
            ("REDIS_PASSWORD", "p@ss:word"),
            ("REDIS_TLS", "true"),
            ("REDIS_DB", "2"),
        ],
    )
    .expect("valid");
    let redis = parts.redis.expect("redis");
    assert_eq!(
        redis.url.expose(),
        "rediss://chat:p%40ss%3Aword@cache.internal:6380/2"
    );
    assert!(redis.tls && !redis.cluster);
    assert_eq!(redis.key_prefix, "chatgate");

    let cluster = load(
        &[],
        &[("REDIS_URL", "redis://n1:7000"), ("REDIS_CLUSTER", "yes")],
    )
    .expect("valid")
    .redis
    .expect("redis");
    assert!(cluster.cluster);

    let both = problems(load(
        &[],
        &[("REDIS_URL", "redis://a:1"), ("REDIS_HOST", "b")],
    ));
    assert_eq!(both.len(), 1, "{both:?}");
    let stray = problems(load(&[], &[("REDIS_PASSWORD", "x"), ("REDIS_PORT", "1")]));
    assert_eq!(stray.len(), 2, "{stray:?}");
    let url_and_part = problems(load(
        &[],
        &[("REDIS_URL", "redis://a:1"), ("REDIS_DB", "3")],
    ));
    assert!(
        url_and_part[0].contains("put it in the URL"),
        "{url_and_part:?}"
    );
    let bad_port = problems(load(&[], &[("REDIS_HOST", "a"), ("REDIS_PORT", "0")]));
    assert!(bad_port[0].starts_with("REDIS_PORT:"), "{bad_port:?}");
    let bad_prefix = problems(load(
        &[],
        &[
            ("REDIS_URL", "redis://a:1"),
            ("REDIS_KEY_PREFIX", "has space"),
        ],
    ));
    assert!(
        bad_prefix[0].starts_with("REDIS_KEY_PREFIX:"),
        "{bad_prefix:?}"
    );
}

#[test]
fn help_names_env_vars_and_defaults() {
    let help = sources::command(true).render_long_help().to_string();
    for spec in sources::SPECS {
        assert!(
            help.contains(&format!("--{}", spec.long)),
            "--{}",
            spec.long
        );
        assert!(help.contains(&format!("env: {}", spec.env)), "{}", spec.env);
        if let Some(default) = spec.default {
            assert!(help.contains(default), "default of --{}", spec.long);
        }
    }
    let mut envs: Vec<_> = sources::SPECS.iter().map(|s| s.env).collect();
    envs.sort_unstable();
    envs.dedup();
    assert_eq!(envs.len(), sources::SPECS.len(), "env names are unique");
}

#[test]
fn unknown_flag_is_a_problem() {
    let found = problems(load(&["--bnid", "x"], &[]));
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("--bnid"), "{found:?}");
}

#[test]
fn warnings() {
    let dev = Config::default();
    let warnings = dev.warnings();
    assert!(warnings.iter().any(|w| w.contains("DEV MODE")));
    let weak = Config {
        auth: AuthConfig::Jwt(JwtSettings::hs256(b"short")),
        frontend_origins: Some(vec!["https://a.example".to_owned()]),
        ..Config::default()
    };
    let warnings = weak.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("JWT_SECRET"));
}

/// Every file in `tests/fixtures/config/valid` loads; every file in
/// `invalid` fails, with a problem containing its `# expect:` line.
#[test]
fn fixture_files() {
    let mut seen = 0;
    for kind in ["valid", "invalid"] {
        let dir = fixtures().join("config").join(kind);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixture dir")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no fixtures in {}", dir.display());
        for file in files {
            seen += 1;
            let result = load(&["--config", &file.display().to_string()], &[]);
            if kind == "valid" {
                if let Err(e) = result {
                    panic!("{} should load:\n{e}", file.display());
                }
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("read");
            let expect = text
                .lines()
                .find_map(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", file.display()));
            match result {
                Ok(_) => panic!("{} should be refused", file.display()),
                Err(e) => assert!(
                    e.to_string().contains(expect),
                    "{}: expected {expect:?} in:\n{e}",
                    file.display()
                ),
            }
        }
    }
    assert!(seen >= 20);
}

#[test]
fn api_key_and_demo_page() {
    // Defaults: no API, demo page on in dev mode and off with a JWT key.
    let dev = load(&[], &[]).expect("valid");
    assert!(dev.api_key.is_none());
    assert!(dev.demo_page);
    assert_eq!(dev.demo_page, Config::default().demo_page);
    let jwt = load(
        &[],
        &[
            ("JWT_SECRET", SECRET),
            ("FRONTEND_URL", "https://chat.example.com"),
        ],
    )
    .expect("valid");
    assert!(!jwt.demo_page);

    // Env, flag (bare switch) and file all set them; the flag wins.
    let key = "api-key-0123456789abcdef";
    let config = load(&[], &[("API_KEY", key), ("DEMO_PAGE", "off")]).expect("valid");
    assert_eq!(
        config.api_key.as_ref().map(|k| k.expose().as_str()),
        Some(key)
    );
    assert!(!config.demo_page);
    let config = load(
        &["--demo-page", "--api-key", "from-the-flag-0123456789"],
        &[("API_KEY", key), ("DEMO_PAGE", "false")],
    )
    .expect("valid");
    assert_eq!(
        config.api_key.as_ref().map(|k| k.expose().as_str()),
        Some("from-the-flag-0123456789")
    );
    assert!(config.demo_page);
    let jwt_with_demo = load(
        &["--demo-page=true"],
        &[
            ("JWT_SECRET", SECRET),
            ("FRONTEND_URL", "https://chat.example.com"),
        ],
    )
    .expect("valid");
    assert!(jwt_with_demo.demo_page);

    // The key is a secret: never in Debug output nor in problems.
    let shown = format!("{config:?}");
    assert!(!shown.contains("from-the-flag"), "{shown}");
    let found = problems(load(
        &[],
        &[("API_KEY", "   "), ("DEMO_PAGE", "maybe-from-the-flag")],
    ));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("API_KEY: must not be empty"))
    );
    assert!(found.iter().any(|p| p.starts_with("DEMO_PAGE")));

    // A short key is accepted with a warning.
    let short = Config {
        api_key: Some(Secret::new("short".to_owned())),
        ..Config::default()
    };
    assert!(short.warnings().iter().any(|w| w.contains("API_KEY")));
    assert!(!dev.warnings().iter().any(|w| w.contains("API_KEY")));
}

#[test]
fn many_nodes_timings() {
    let config = load(&[], &[]).expect("defaults are valid");
    assert_eq!(config.drain_grace, Duration::from_secs(5));
    assert_eq!(config.node_timeout, Duration::from_secs(8));
    assert_eq!(config.drain_grace, Config::default().drain_grace);
    assert_eq!(config.node_timeout, Config::default().node_timeout);
    let config = load(
        &["--drain-grace-ms", "1500"],
        &[("NODE_TIMEOUT_MS", "3000")],
    )
    .expect("valid");
    assert_eq!(config.drain_grace, Duration::from_millis(1500));
    assert_eq!(config.node_timeout, Duration::from_millis(3000));
    let found = problems(load(
        &[],
        &[("NODE_TIMEOUT_MS", "0"), ("DRAIN_GRACE_MS", "x")],
    ));
    assert_eq!(found.len(), 2, "{found:?}");
}

/// With a JWT key and no `FRONTEND_URL`, chatgate starts but admits no
/// browser origin (any origin is for dev mode only), and says so.
#[test]
fn jwt_mode_without_frontend_url_admits_no_browser_origin() {
    let config = load(&[], &[("JWT_SECRET", SECRET)]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.frontend_origins, Some(Vec::new()));
    assert!(
        config
            .warnings()
            .iter()
            .any(|w| w.contains("no web page may connect")),
        "{:?}",
        config.warnings()
    );
}

/// The README's settings table names every setting (its environment
/// variable and its flag), so none is found only by reading `--help`.
#[test]
fn readme_lists_every_setting() {
    let readme = include_str!("../../README.md");
    let missing: Vec<&str> = sources::SPECS
        .iter()
        .filter(|spec| {
            !readme.contains(&format!("`{}`", spec.env))
                || !readme.contains(&format!("--{}", spec.long))
        })
        .map(|spec| spec.env)
        .collect();
    assert!(missing.is_empty(), "not in README.md: {missing:?}");
}
