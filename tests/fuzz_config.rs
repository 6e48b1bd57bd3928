//! Fuzz smoke (proptest) of configuration parsing: `Config::from_sources`
//! with arbitrary values for every setting, the rate-limit grammar, and the
//! per-IP connection rate (`CONNECTION_RATE_PER_IP`). Settings come from
//! operators, not clients, but a typo must give an error message, never a
//! panic or a silently different value.
//!
//! `CHATGATE_FUZZ_CASES` raises the number of cases for longer runs.

use std::collections::HashMap;
use std::time::Duration;

use chatgate::config::{Config, Rate, RateLimits, known_event_names};
use chatgate::server::engine_config;
use proptest::prelude::*;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("CHATGATE_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Every environment variable chatgate reads (`chatgate --help` lists them).
const ENV_NAMES: &[&str] = &[
    "BIND_ADDR",
    "SOCKET_URL",
    "FRONTEND_URL",
    "WEBSOCKET_ONLY",
    "JWT_SECRET",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "RATE_LIMITS",
    "MAX_MESSAGE_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_CONNECTIONS_PER_USER",
    "MAX_CHANNELS_PER_USER",
    "MAX_QUEUED_PACKETS",
    "CONNECTION_RATE_PER_IP",
    "PING_INTERVAL_MS",
    "PING_TIMEOUT_MS",
    "CONNECT_TIMEOUT_MS",
    "SHUTDOWN_TIMEOUT_MS",
    "LOG_FORMAT",
];

/// Values an operator might type: numbers, rates, URLs, garbage.
fn setting_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,25}",
        "-?[0-9]{1,5}(/[0-9]{0,3}(ms|s|min|h|d|x)?)?",
        "[a-z:]{0,12}=[0-9]{0,4}/[a-z0-9]{0,4}(,[a-z:]{0,12}=[0-9]{0,3}/[a-z]{0,3}){0,3}",
        "(https?|ws|redis)://[a-z0-9.\\[\\]:*/]{0,20}",
        "(true|false|on|off|yes|no|1|0|human|json|HS256|none)",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(400))]

    /// Any environment gives a config or a list of readable problems.
    #[test]
    fn any_environment_loads_or_explains(
        env in prop::collection::vec((prop::sample::select(ENV_NAMES), setting_value()), 0..6),
    ) {
        let env: HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        match Config::from_sources(["chatgate"], &env) {
            Ok(config) => {
                let engine = engine_config(&config).engine;
                prop_assert_eq!(engine.max_payload, config.max_payload_bytes);
                prop_assert_eq!(
                    engine.connection_rate_per_ip.map(|r| (r.count, r.period)),
                    config.connection_rate_per_ip.map(|r| (r.count, r.period))
                );
            }
            Err(e) => {
                prop_assert!(!e.problems.is_empty());
                prop_assert!(e.problems.iter().all(|p| !p.is_empty()));
            }
        }
    }

    /// Any command-line argument list is parsed or refused.
    #[test]
    fn any_command_line_loads_or_explains(args in prop::collection::vec(
        prop_oneof![
            "--[a-z\\-]{1,24}(=.{0,12})?",
            ".{0,12}",
        ],
        0..6,
    )) {
        let mut all = vec!["chatgate".to_owned()];
        // --help/--version print, --config reads a file: not what is fuzzed here.
        all.extend(args.into_iter().filter(|a| {
            !["--help", "--version", "--config"].iter().any(|f| a.starts_with(f))
        }));
        let _ = Config::from_sources(all, &HashMap::new());
    }

    /// The rate-limit grammar: any text parses or is refused entry by entry.
    #[test]
    fn rate_limits_parse_or_explain(text in setting_value()) {
        if let Err(problems) = RateLimits::parse(&text) {
            prop_assert!(!problems.is_empty());
        }
        let _ = text.parse::<Rate>();
    }

    /// A parsed `RATE_LIMITS` only names events a client can send (a typo
    /// is refused, never kept as a limit nothing uses).
    #[test]
    fn parsed_rate_limits_name_only_known_events(text in setting_value()) {
        if let Ok(limits) = RateLimits::parse(&text) {
            for event in limits.per_event.keys() {
                prop_assert!(known_event_names().any(|k| k == event), "{event}");
            }
        }
    }

    /// A misspelt known event is refused with the right suggestion.
    #[test]
    fn a_typo_in_an_event_name_is_refused_with_a_suggestion(
        index in 0usize..8,
        swap in 0usize..6,
    ) {
        let name = chatgate::protocol::events::CLIENT_EVENTS[index];
        let mut chars: Vec<char> = name.chars().collect();
        let at = swap % (chars.len() - 1);
        chars.swap(at, at + 1);
        let typo: String = chars.into_iter().collect();
        prop_assume!(typo != name);
        let problems = RateLimits::parse(&format!("{typo}=3/min"))
            .expect_err("a typo is refused");
        let expected = format!("did you mean {name}?");
        prop_assert!(problems[0].contains(&expected), "{problems:?}");
    }

    /// A rate prints in a form that parses back to the same rate.
    #[test]
    fn rates_round_trip(count in 1u32..1_000_000, ms in 1u64..10_000_000_000) {
        let rate = Rate::new(count, Duration::from_millis(ms));
        prop_assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate));
    }
}

/// The per-IP connection rate setting: off by default, `off`/`0` turn it
/// off, a rate turns it on (and reaches the engine), garbage is refused
/// naming the variable.
#[test]
fn connection_rate_per_ip_setting() {
    let load = |value: Option<&str>| {
        let env: HashMap<String, String> = value
            .map(|v| ("CONNECTION_RATE_PER_IP".to_owned(), v.to_owned()))
            .into_iter()
            .collect();
        Config::from_sources(["chatgate"], &env)
    };
    let default = load(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(default.connection_rate_per_ip, None);
    assert_eq!(engine_config(&default).engine.connection_rate_per_ip, None);
    for off in ["off", "OFF", "0", "none"] {
        let config = load(Some(off)).unwrap_or_else(|e| panic!("{off}: {e}"));
        assert_eq!(config.connection_rate_per_ip, None, "{off}");
    }
    let on = load(Some("30/min")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(on.connection_rate_per_ip, Some(Rate::per_minute(30)));
    let engine = engine_config(&on)
        .engine
        .connection_rate_per_ip
        .unwrap_or_else(|| panic!("not passed to the engine"));
    assert_eq!((engine.count, engine.period), (30, Duration::from_secs(60)));
    let flag = Config::from_sources(
        ["chatgate", "--connection-rate-per-ip", "5/10s"],
        &HashMap::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        flag.connection_rate_per_ip,
        Some(Rate::new(5, Duration::from_secs(10)))
    );
    for bad in ["lots", "-1/min", "10/fortnight", "0/min"] {
        let error = load(Some(bad))
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(
            error.to_string().contains("CONNECTION_RATE_PER_IP"),
            "{bad}: {error}"
        );
    }
}
