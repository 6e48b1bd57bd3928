//! Fuzz smoke (proptest) of everything chatgate decodes from a client above
//! the wire: the payload of every client event, channel ids and message
//! text, the handshake `auth` object and JWTs, and sequences of events
//! against the real chat service (in-memory backends), where a refused event
//! must leave stored state exactly as it was.
//!
//! Bounded to a few seconds in the normal test command; `CHATGATE_FUZZ_CASES`
//! raises the number of cases for longer runs. Inputs found failing are kept
//! in `regressions` once fixed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatgate::auth::{Authenticator, ChannelAccess, Identity, MAX_TOKEN_BYTES};
use chatgate::backend::{Backends, RateQuota};
use chatgate::config::{AuthConfig, JwtSettings};
use chatgate::delivery::user_room;
use chatgate::domain::{ChatService, Limits, RatePolicy, validate};
use chatgate::error::{ErrorCode, GatewayError};
use chatgate::protocol::{
    JoinRequest, LeaveRequest, PresenceUpdateRequest, SendMessageRequest, TypingRequest,
    UsersOnlineRequest, events, parse_request,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32b!";

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

/// Strings that matter here: channel-id-like, blank, long, control
/// characters, odd unicode (RTL marks, zero width, emoji, U+FFFD), or anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9_.:\\-]{0,130}",
        1 => Just(String::new()),
        1 => "[ \t\n\u{a0}\u{2028}]{1,4}",
        1 => "[a\u{0}\u{7f}\u{200b}\u{202e}\u{fffd}\u{1f600}é]{0,8}",
        1 => "x{4000,4002}",
        2 => any::<String>(),
    ]
}

/// Any JSON value, biased towards the keys and shapes the events use.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!({ "_placeholder": true, "num": 0 })),
        prop::sample::select(vec!["online", "away", "busy", "offline", "ONLINE"])
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "channelId", "text", "clientMsgId", "since", "status", "typing", "userId", "token",
            "__proto__", "constructor",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,6}",
    ];
    leaf.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn is_channel_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn code(result: &Result<impl Sized, GatewayError>) -> Option<ErrorCode> {
    result.as_ref().err().map(|e| e.code)
}

proptest! {
    #![proptest_config(config(500))]

    /// Every client event's payload parser takes any JSON: it parses or
    /// answers INVALID_PAYLOAD, and what it parses is what was sent.
    #[test]
    fn event_payloads_parse_or_are_invalid(payload in json_value()) {
        let join = JoinRequest::parse(&payload);
        let leave = LeaveRequest::parse(&payload);
        let send = parse_request::<SendMessageRequest>(events::MESSAGE_SEND, &payload);
        let presence = parse_request::<PresenceUpdateRequest>(events::PRESENCE_UPDATE, &payload);
        let typing = parse_request::<TypingRequest>(events::TYPING, &payload);
        let online = UsersOnlineRequest::parse(&payload);
        for c in [code(&join), code(&leave), code(&send), code(&presence), code(&typing), code(&online)]
            .into_iter()
            .flatten()
        {
            prop_assert_eq!(c, ErrorCode::InvalidPayload);
        }
        let named = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Ok(join) = &join {
            let sent = payload.as_str().map(str::to_owned).or_else(|| named("channelId"));
            prop_assert_eq!(Some(join.channel_id.clone()), sent);
        }
        if let Ok(leave) = &leave {
            let sent = payload.as_str().map(str::to_owned).or_else(|| named("channelId"));
            prop_assert_eq!(Some(leave.channel_id.clone()), sent);
        }
        if let Ok(send) = &send {
            prop_assert_eq!(Some(send.channel_id.clone()), named("channelId"));
            prop_assert_eq!(Some(send.text.clone()), named("text"));
        }
        if let Ok(typing) = &typing {
            prop_assert_eq!(Some(typing.typing), payload.get("typing").and_then(Value::as_bool));
        }
    }

    /// The well-formed payloads round-trip: decode(encode(x)) == x.
    #[test]
    fn well_formed_payloads_round_trip(
        channel in text(), body in text(), client_id in prop::option::of(text()), typing in any::<bool>(),
    ) {
        let join = JoinRequest::parse(&json!({ "channelId": channel }));
        prop_assert_eq!(join.map(|j| j.channel_id), Ok(channel.clone()));
        let bare = LeaveRequest::parse(&json!(channel));
        prop_assert_eq!(bare.map(|l| l.channel_id), Ok(channel.clone()));
        let mut message = json!({ "channelId": channel, "text": body });
        if let Some(id) = &client_id {
            message["clientMsgId"] = json!(id);
        }
        let send = parse_request::<SendMessageRequest>(events::MESSAGE_SEND, &message);
        prop_assert_eq!(
            send,
            Ok(SendMessageRequest { channel_id: channel.clone(), text: body, client_msg_id: client_id })
        );
        let typed = parse_request::<TypingRequest>(events::TYPING, &json!({ "channelId": channel, "typing": typing }));
        prop_assert_eq!(typed, Ok(TypingRequest { channel_id: channel, typing }));
    }

    /// Channel ids: exactly 1-128 of `[A-Za-z0-9_.:-]`; a user's room never
    /// passes as a channel id, so no channel can alias a user's sockets.
    #[test]
    fn channel_ids_are_exactly_the_contract(id in text(), user in text()) {
        prop_assert_eq!(validate::channel_id(&id).is_ok(), is_channel_id(&id));
        if let Err(e) = validate::channel_id(&id) {
            prop_assert_eq!(e.code, ErrorCode::InvalidPayload);
        }
        prop_assert!(validate::channel_id(&user_room(&user)).is_err());
    }

    /// Message text: refused when blank, PAYLOAD_TOO_LARGE over the limit
    /// (counted in UTF-16 units, as JavaScript does), else accepted.
    #[test]
    fn message_text_rules(body in text(), max in 1usize..5000) {
        let expected = if body.trim().is_empty() {
            Some(ErrorCode::InvalidPayload)
        } else if body.encode_utf16().count() > max {
            Some(ErrorCode::PayloadTooLarge)
        } else {
            None
        };
        prop_assert_eq!(code(&validate::message_text(&body, max)), expected);
        let _ = validate::client_msg_id(&body);
    }

    /// Channel patterns of a token: any list compiles or is refused, and an
    /// accepted pattern without `*` matches exactly itself.
    #[test]
    fn channel_patterns_never_panic(patterns in prop::collection::vec(text(), 0..4), probe in text()) {
        if let Ok(access) = ChannelAccess::patterns(patterns.clone()) {
            let _ = access.allows(&probe);
            for p in patterns.iter().filter(|p| !p.contains('*')) {
                prop_assert!(access.allows(p));
            }
        }
    }

    /// Dev-mode handshakes: any `auth` value is refused as UNAUTHORIZED or
    /// gives exactly the claimed, well-formed userId.
    #[test]
    fn dev_mode_auth_takes_any_value(auth in json_value()) {
        let result = Authenticator::new(&AuthConfig::Dev).authenticate(&auth);
        match result {
            Ok(identity) => {
                prop_assert_eq!(Some(identity.user_id.as_str()), auth.get("userId").and_then(Value::as_str));
                prop_assert!(!identity.user_id.chars().any(char::is_control));
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::Unauthorized),
        }
    }

    /// JWT mode: arbitrary tokens, and tokens built from arbitrary header
    /// and claims JSON with a random or no signature, are all refused.
    #[test]
    fn forged_tokens_are_refused(
        raw in text(),
        header in json_value(),
        claims in json_value(),
        signature in prop::option::of("[A-Za-z0-9_\\-]{0,64}"),
        alg in prop::sample::select(vec!["HS256", "none", "None", "HS384", "RS256", "ES256"]),
    ) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let authenticator = Authenticator::new(&AuthConfig::Jwt(JwtSettings::hs256(SECRET)));
        let mut header = header;
        if let Value::Object(map) = &mut header {
            map.insert("alg".into(), json!(alg));
        }
        let built = format!(
            "{}.{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string()),
            signature.unwrap_or_default()
        );
        for token in [raw.clone(), built, format!("{raw}.{raw}.{raw}")] {
            let result = authenticator.authenticate(&json!({ "token": token }));
            prop_assert_eq!(code(&result), Some(ErrorCode::Unauthorized), "token {:?}", token);
        }
        // Wrong shapes of the auth object itself.
        for auth in [json!({ "token": claims }), claims.clone(), json!({ "userId": raw })] {
            let result = authenticator.authenticate(&auth);
            prop_assert_eq!(code(&result), Some(ErrorCode::Unauthorized));
        }
    }

    /// Validly signed tokens with arbitrary claims: accepted only with a
    /// well-formed string `sub` and a future `exp`, and then `sub` is the user.
    #[test]
    fn signed_tokens_with_any_claims(mut claims in prop::collection::btree_map(
        prop::sample::select(vec!["sub", "exp", "nbf", "name", "channels", "iat", "x"]).prop_map(str::to_owned),
        json_value(),
        0..6,
    ), valid_exp in any::<bool>(), sub in text()) {
        if valid_exp {
            claims.insert("exp".into(), json!(now_secs() + 600));
            claims.insert("sub".into(), json!(sub));
        }
        let token = sign(&claims);
        let authenticator = Authenticator::new(&AuthConfig::Jwt(JwtSettings::hs256(SECRET)));
        match authenticator.authenticate(&json!({ "token": token })) {
            Ok(identity) => {
                prop_assert_eq!(claims.get("sub").and_then(Value::as_str), Some(identity.user_id.as_str()));
                let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or_default();
                prop_assert!(exp + 5.0 >= now_secs() as f64, "expired token accepted: {:?}", claims);
            }
            Err(e) => prop_assert_eq!(e.code, ErrorCode::Unauthorized),
        }
    }

}

proptest! {
    // Each case runs a whole event sequence: fewer cases.
    #![proptest_config(config(120))]

    /// Sequences of arbitrary events from three users against the chat
    /// service: nothing panics, a refused event changes no stored state,
    /// and stored channels always satisfy the contract (valid ids, caps).
    #[test]
    fn refused_events_change_nothing(ops in prop::collection::vec((0usize..3, 0usize..7, json_value()), 1..25)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        runtime.block_on(async {
            let chat = service();
            let users = ["alice", "bob", "carol"];
            for (n, user) in users.iter().enumerate() {
                chat.connect(user, &format!("conn-{n}")).await.unwrap_or_else(|e| panic!("{e}"));
            }
            for (user, event, payload) in ops {
                let user = users[user];
                let before = snapshot(&chat, &users).await;
                let outcome = apply(&chat, user, events::CLIENT_EVENTS[event], &payload).await;
                let after = snapshot(&chat, &users).await;
                if let Err(e) = outcome {
                    assert_eq!(before, after, "refused {} {payload} ({e}) changed state", events::CLIENT_EVENTS[event]);
                }
                for (channels, _) in after.values() {
                    assert!(channels.len() <= MAX_CHANNELS, "{after:?}");
                    assert!(channels.iter().all(|c| is_channel_id(c)), "{after:?}");
                }
            }
        });
    }
}

const MAX_CHANNELS: usize = 3;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sign(claims: &BTreeMap<String, Value>) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap_or_else(|e| panic!("encode: {e}"))
}

fn service() -> ChatService {
    let generous = RateQuota {
        count: 1_000_000,
        period: Duration::from_secs(60),
    };
    ChatService::new(
        Backends::in_memory(),
        Limits {
            max_message_length: 40,
            max_connections_per_user: 5,
            max_channels_per_user: MAX_CHANNELS,
            rate_limits: RatePolicy {
                default: generous,
                per_event: HashMap::new(),
            },
        },
        "fuzz-node",
    )
}

/// What a refused event must not change: every user's channels, their
/// channel list (members, last activity) and presence.
async fn snapshot(chat: &ChatService, users: &[&str]) -> BTreeMap<String, (Vec<String>, Value)> {
    let mut all = BTreeMap::new();
    for user in users {
        let mut channels = chat
            .user_channels(user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        channels.sort();
        let list = chat
            .channel_list(user)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let online = chat
            .users_online(user, UsersOnlineRequest::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let views = json!({ "list": list, "online": online });
        all.insert((*user).to_owned(), (channels, views));
    }
    all
}

/// Runs one client event as the gateway does (parse, then the service).
async fn apply(
    chat: &ChatService,
    user: &str,
    event: &str,
    payload: &Value,
) -> Result<(), GatewayError> {
    let identity = Identity::new(user);
    match event {
        events::CHANNEL_JOIN => chat
            .join(&identity, JoinRequest::parse(payload)?)
            .await
            .map(drop),
        events::CHANNEL_LEAVE => chat
            .leave(user, LeaveRequest::parse(payload)?)
            .await
            .map(drop),
        events::MESSAGE_SEND => chat
            .send_message(user, parse_request(event, payload)?, None)
            .await
            .map(drop),
        events::PRESENCE_UPDATE => {
            let request: PresenceUpdateRequest = parse_request(event, payload)?;
            chat.set_presence(user, request.status).await.map(drop)
        }
        events::TYPING => chat
            .typing(user, parse_request(event, payload)?)
            .await
            .map(drop),
        events::USERS_ONLINE => chat
            .users_online(user, UsersOnlineRequest::parse(payload)?)
            .await
            .map(drop),
        events::CHANNEL_LIST => chat.channel_list(user).await.map(drop),
        other => panic!("not a client event: {other}"),
    }
}

/// Inputs kept after they once looked suspicious; each must be refused.
#[test]
fn regressions() {
    let authenticator = Authenticator::new(&AuthConfig::Jwt(JwtSettings::hs256(SECRET)));
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    let deep_claims = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        format!(
            "{}.{}.x",
            b64.encode(br#"{"alg":"HS256"}"#),
            b64.encode(claims)
        )
    };
    for token in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "\u{0}.\u{0}.\u{0}",
        huge.as_str(),
        deep_claims.as_str(),
    ] {
        let result = authenticator.authenticate(&json!({ "token": token }));
        assert_eq!(code(&result), Some(ErrorCode::Unauthorized), "{token:.40}");
    }
    for payload in [
        json!({ "channelId": "a", "since": { "__proto__": null } }),
        json!({ "_placeholder": true, "num": 0 }),
    ] {
        let _ = JoinRequest::parse(&payload);
    }
    // Found by `event_payloads_parse_or_are_invalid`: serde accepted a
    // struct as an array of its fields, e.g. `typing` `["online", false]`.
    for (event, payload) in [
        (events::CHANNEL_JOIN, json!(["general"])),
        (events::CHANNEL_LEAVE, json!(["general", null])),
        (events::MESSAGE_SEND, json!(["general", "hi"])),
        (events::TYPING, json!(["general", false])),
        (events::PRESENCE_UPDATE, json!(["away"])),
        (events::USERS_ONLINE, json!(["general"])),
    ] {
        let result = match event {
            events::CHANNEL_JOIN => JoinRequest::parse(&payload).map(drop),
            events::CHANNEL_LEAVE => LeaveRequest::parse(&payload).map(drop),
            events::MESSAGE_SEND => parse_request::<SendMessageRequest>(event, &payload).map(drop),
            events::TYPING => parse_request::<TypingRequest>(event, &payload).map(drop),
            events::PRESENCE_UPDATE => {
                parse_request::<PresenceUpdateRequest>(event, &payload).map(drop)
            }
            _ => UsersOnlineRequest::parse(&payload).map(drop),
        };
        assert_eq!(
            code(&result),
            Some(ErrorCode::InvalidPayload),
            "{event} {payload}"
        );
    }
    // The placeholder of a binary attachment is not a channel id.
    assert!(JoinRequest::parse(&json!({ "_placeholder": true, "num": 0 })).is_err());
}
