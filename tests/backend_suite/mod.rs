//! One behaviour suite for the backend traits, run against every backend
//! (`tests/redis_backend.rs` runs each case on the in-memory backend and on
//! a real `redis-server`), so both are proven to behave the same.
//!
//! Every case takes a fresh [`Backends`] (on Redis: its own server and key
//! prefix) and panics on a difference from the contract. No case sleeps for
//! a fixed time; the one refill check waits for the `retry_after` the
//! limiter itself reported.

#![allow(dead_code)]

pub(crate) mod redis_proc;

use std::collections::HashSet;
use std::time::Duration;

use chatgate::backend::{
    Appended, Backends, ChannelOverview, ConnectOutcome, ConnectionRecord, HistoryPolicy,
    JoinOutcome, PublishTemplate, RateQuota,
};
use chatgate::clock::now_ms;
use chatgate::protocol::{Message, PresenceStatus};

/// A connection record of `node`.
pub(crate) fn record(connection_id: &str, node: &str) -> ConnectionRecord {
    ConnectionRecord {
        connection_id: connection_id.to_owned(),
        node_id: node.to_owned(),
    }
}

fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn user_ids(presence: &[chatgate::protocol::PresenceInfo]) -> Vec<String> {
    presence.iter().map(|p| p.user_id.clone()).collect()
}

/// A user with several connections is online until the last one ends.
pub(crate) async fn presence_is_per_connection(b: Backends) {
    let p = &b.presence;
    let t = now_ms();
    let first = p
        .add_connection("alice", record("a1", "n1"), 3, t)
        .await
        .expect("add a1");
    assert_eq!(
        first,
        ConnectOutcome::Registered {
            first: true,
            status: PresenceStatus::Online
        }
    );
    // A second tab on another node.
    let second = p
        .add_connection("alice", record("a2", "n2"), 3, t + 1)
        .await
        .expect("add a2");
    assert_eq!(
        second,
        ConnectOutcome::Registered {
            first: false,
            status: PresenceStatus::Online
        }
    );
    // Registering the same connection again changes nothing.
    let again = p
        .add_connection("alice", record("a2", "n2"), 3, t + 2)
        .await
        .expect("add a2 again");
    assert!(matches!(
        again,
        ConnectOutcome::Registered { first: false, .. }
    ));
    // Counted once each, whichever node holds them.
    assert_eq!(p.connection_count("alice").await.expect("count"), 2);
    assert_eq!(p.connection_count("nobody").await.expect("count"), 0);
    assert_eq!(
        p.remove_connection("alice", "a1", t + 3)
            .await
            .expect("rm a1"),
        None
    );
    assert_eq!(
        user_ids(&p.online_users().await.expect("online")),
        names(&["alice"])
    );
    assert_eq!(
        p.remove_connection("alice", "a2", t + 4)
            .await
            .expect("rm a2"),
        Some(t + 4)
    );
    // Removing twice, or an unknown connection, is harmless.
    assert_eq!(
        p.remove_connection("alice", "a2", t + 5)
            .await
            .expect("rm a2 again"),
        None
    );
    assert_eq!(
        p.remove_connection("nobody", "x", t + 5)
            .await
            .expect("rm unknown"),
        None
    );
    assert!(p.online_users().await.expect("online").is_empty());
    assert_eq!(p.connection_count("alice").await.expect("count"), 0);
}

/// The per-user connection cap.
pub(crate) async fn connection_cap(b: Backends) {
    let p = &b.presence;
    let t = now_ms();
    for id in ["c1", "c2"] {
        let outcome = p
            .add_connection("bob", record(id, "n"), 2, t)
            .await
            .expect("add");
        assert!(matches!(outcome, ConnectOutcome::Registered { .. }));
    }
    assert_eq!(
        p.add_connection("bob", record("c3", "n"), 2, t)
            .await
            .expect("add c3"),
        ConnectOutcome::TooManyConnections
    );
    // A refused connection left nothing behind: freeing one slot admits one.
    p.remove_connection("bob", "c1", t).await.expect("rm");
    assert!(matches!(
        p.add_connection("bob", record("c3", "n"), 2, t)
            .await
            .expect("add c3"),
        ConnectOutcome::Registered { first: false, .. }
    ));
    // A cap of zero admits no one.
    assert_eq!(
        p.add_connection("carol", record("x", "n"), 0, t)
            .await
            .expect("add"),
        ConnectOutcome::TooManyConnections
    );
    assert_eq!(
        user_ids(&p.online_users().await.expect("online")),
        names(&["bob"])
    );
}

/// The cap holds when many connections arrive at once.
pub(crate) async fn connection_cap_is_atomic(b: Backends) {
    let t = now_ms();
    let attempts = (0..24).map(|i| {
        let presence = b.presence.clone();
        async move {
            presence
                .add_connection("dave", record(&format!("d{i}"), "n"), 5, t)
                .await
                .expect("add")
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let registered = outcomes
        .iter()
        .filter(|o| matches!(o, ConnectOutcome::Registered { .. }))
        .count();
    let first = outcomes
        .iter()
        .filter(|o| matches!(o, ConnectOutcome::Registered { first: true, .. }))
        .count();
    assert_eq!(registered, 5, "exactly the cap is admitted: {outcomes:?}");
    assert_eq!(first, 1, "exactly one connection brings the user online");
}

/// Status, lists of online users, and what a reconnect keeps.
pub(crate) async fn status_and_online_lists(b: Backends) {
    let p = &b.presence;
    let t = now_ms();
    assert_eq!(
        p.set_status("zoe", PresenceStatus::Away, t)
            .await
            .expect("status"),
        None,
        "an offline user has no status to set"
    );
    for user in ["zoe", "amy", "bo{b}", "%7D"] {
        p.add_connection(user, record(&format!("{user}-1"), "n"), 5, t)
            .await
            .expect("add");
    }
    let away = p
        .set_status("zoe", PresenceStatus::Away, t + 10)
        .await
        .expect("status")
        .expect("zoe is online");
    assert_eq!(away.status, PresenceStatus::Away);
    assert_eq!(away.last_seen, t + 10);
    // A second connection keeps the status.
    let second = p
        .add_connection("zoe", record("zoe-2", "n"), 5, t + 11)
        .await
        .expect("add");
    assert_eq!(
        second,
        ConnectOutcome::Registered {
            first: false,
            status: PresenceStatus::Away
        }
    );
    let all = p.online_users().await.expect("online");
    assert_eq!(
        user_ids(&all),
        names(&["%7D", "amy", "bo{b}", "zoe"]),
        "sorted"
    );
    let zoe = all.iter().find(|u| u.user_id == "zoe").expect("zoe listed");
    assert_eq!(zoe.status, PresenceStatus::Away);
    assert!(zoe.last_seen >= t + 10);
    // online_among keeps the order asked for and drops offline users.
    let among = p
        .online_among(&names(&["nobody", "zoe", "amy", "ghost"]))
        .await
        .expect("among");
    assert_eq!(user_ids(&among), names(&["zoe", "amy"]));
    assert!(p.online_among(&[]).await.expect("empty").is_empty());
    // Offline, the status is forgotten: the next connection starts online.
    p.remove_connection("zoe", "zoe-1", t + 20)
        .await
        .expect("rm");
    p.remove_connection("zoe", "zoe-2", t + 21)
        .await
        .expect("rm");
    let back = p
        .add_connection("zoe", record("zoe-3", "n"), 5, t + 30)
        .await
        .expect("add");
    assert_eq!(
        back,
        ConnectOutcome::Registered {
            first: true,
            status: PresenceStatus::Online
        }
    );
}

/// Joining, the per-user channel cap, re-joining and leaving.
pub(crate) async fn membership(b: Backends) {
    let c = &b.channels;
    let t = now_ms();
    assert_eq!(
        c.join("u", "b", 2, t).await.expect("join"),
        JoinOutcome::Joined
    );
    assert_eq!(
        c.join("u", "a", 2, t).await.expect("join"),
        JoinOutcome::Joined
    );
    assert_eq!(
        c.join("u", "c", 2, t).await.expect("join"),
        JoinOutcome::TooManyChannels
    );
    // Re-joining is fine at the cap.
    assert_eq!(
        c.join("u", "a", 2, t).await.expect("join"),
        JoinOutcome::AlreadyMember
    );
    assert_eq!(
        c.join("w", "a", 2, t).await.expect("join"),
        JoinOutcome::Joined
    );
    assert_eq!(
        c.user_channels("u").await.expect("channels"),
        names(&["a", "b"])
    );
    assert_eq!(c.members("a").await.expect("members"), names(&["u", "w"]));
    assert!(c.is_member("u", "a").await.expect("is_member"));
    assert!(!c.is_member("u", "c").await.expect("is_member"));
    assert!(c.members("c").await.expect("members").is_empty());
    assert!(c.leave("u", "a").await.expect("leave"));
    assert!(!c.leave("u", "a").await.expect("leave twice"));
    assert!(!c.leave("u", "never").await.expect("leave unknown"));
    assert_eq!(c.user_channels("u").await.expect("channels"), names(&["b"]));
    assert_eq!(c.members("a").await.expect("members"), names(&["w"]));
    // After leaving, the cap has room again.
    assert_eq!(
        c.join("u", "c", 2, t).await.expect("join"),
        JoinOutcome::Joined
    );
    assert!(
        c.user_channels("nobody")
            .await
            .expect("channels")
            .is_empty()
    );
}

/// The channel cap holds when many joins arrive at once.
pub(crate) async fn channel_cap_is_atomic(b: Backends) {
    let t = now_ms();
    let joins = (0..16).map(|i| {
        let channels = b.channels.clone();
        async move {
            channels
                .join("eve", &format!("ch-{i}"), 3, t)
                .await
                .expect("join")
        }
    });
    let outcomes = futures_util::future::join_all(joins).await;
    let joined = outcomes
        .iter()
        .filter(|o| **o == JoinOutcome::Joined)
        .count();
    assert_eq!(joined, 3, "{outcomes:?}");
    assert_eq!(
        b.channels
            .user_channels("eve")
            .await
            .expect("channels")
            .len(),
        3
    );
}

/// Channel activity: starts at the first join, moves with messages (never
/// back), and an empty channel is forgotten.
pub(crate) async fn channel_activity(b: Backends) {
    let c = &b.channels;
    let t = now_ms();
    c.join("u", "x", 10, t).await.expect("join");
    c.join("v", "x", 10, t + 50).await.expect("join");
    c.join("u", "y", 10, t + 10).await.expect("join");
    let stats = c
        .channel_stats(&names(&["x", "y", "none"]))
        .await
        .expect("stats");
    assert_eq!(stats, vec![(t, 2), (t + 10, 1), (0, 0)]);
    send_at(&b, "x", t + 100).await;
    send_at(&b, "x", t + 90).await;
    let overview = c
        .channel_overview(&names(&["y", "x", "none"]))
        .await
        .expect("overview");
    assert_eq!(
        overview,
        vec![
            ChannelOverview {
                last_activity: t + 10,
                members: names(&["u"]),
            },
            ChannelOverview {
                last_activity: t + 100,
                members: names(&["u", "v"]),
            },
            ChannelOverview {
                last_activity: 0,
                members: Vec::new(),
            },
        ]
    );
    assert!(c.channel_overview(&[]).await.expect("empty").is_empty());
    c.leave("u", "y").await.expect("leave");
    assert_eq!(
        c.channel_stats(&names(&["y"])).await.expect("stats"),
        vec![(0, 0)]
    );
}

/// Message ids: unique across channels, increasing per channel, never below
/// the send time times 1000, and exact in JavaScript (below 2^53).
pub(crate) async fn message_ids(b: Backends) {
    let t = now_ms();
    let sends = (0..40).map(|i| {
        let channels = b.channels.clone();
        async move {
            let channel = if i % 2 == 0 { "even" } else { "odd" };
            let mut ids = Vec::new();
            for _ in 0..5 {
                let id = channels.next_message_id(t).await.expect("message id");
                ids.push((id, t));
            }
            (channel, ids)
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut seen = HashSet::new();
    for (_, ids) in &results {
        for window in ids.windows(2) {
            assert!(
                window[0].0 < window[1].0,
                "ids increase within a channel: {ids:?}"
            );
        }
        for (id, ts) in ids {
            assert!(seen.insert(*id), "id {id} handed out twice");
            assert!(*id >= ts * 1000, "id {id} below ts {ts} * 1000");
            assert!(*id < (1_u64 << 53), "id {id} not exact in JavaScript");
        }
    }
    assert_eq!(seen.len(), 200);
    // A later send gets a larger id, even in another channel.
    let a = send_at(&b, "even", now_ms()).await;
    let c = send_at(&b, "third", now_ms()).await;
    assert!(c > a && seen.iter().all(|id| *id < a));
}

/// GCRA: the full quota at once, then refused with a retry delay, separately
/// per user and per event; after the delay one more fits.
pub(crate) async fn rate_limits(b: Backends) {
    let r = &b.rate_limits;
    let slow = RateQuota {
        count: 3,
        period: Duration::from_secs(60),
    };
    for _ in 0..3 {
        assert_eq!(
            r.check("ann", "message:send", slow).await.expect("check"),
            None
        );
    }
    let retry = r
        .check("ann", "message:send", slow)
        .await
        .expect("check")
        .expect("the fourth is refused");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(20),
        "retry after {retry:?}"
    );
    // Refused events are not counted: still refused, not later.
    let again = r
        .check("ann", "message:send", slow)
        .await
        .expect("check")
        .expect("still refused");
    assert!(again <= retry);
    assert_eq!(
        r.check("ben", "message:send", slow)
            .await
            .expect("other user"),
        None
    );
    assert_eq!(
        r.check("ann", "typing", slow).await.expect("other event"),
        None
    );

    let fast = RateQuota {
        count: 2,
        period: Duration::from_millis(200),
    };
    for _ in 0..2 {
        assert_eq!(r.check("cid", "typing", fast).await.expect("check"), None);
    }
    let wait = r
        .check("cid", "typing", fast)
        .await
        .expect("check")
        .expect("refused");
    assert!(wait <= Duration::from_millis(100), "wait {wait:?}");
    // Waiting what the limiter said (and a hair for clock granularity) admits one.
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    assert_eq!(r.check("cid", "typing", fast).await.expect("check"), None);
    assert!(
        r.check("cid", "typing", fast)
            .await
            .expect("check")
            .is_some()
    );
}

/// A backend is ready once it can serve.
pub(crate) async fn readiness(b: Backends) {
    assert!(b.is_ready());
}

/// A message of `channel` with the given id and ts.
/// A message sent into `channel` at `ts` as the two-step send path does it:
/// an id, then the record (activity, and no history here). Returns the id.
async fn send_at(b: &Backends, channel: &str, ts: u64) -> u64 {
    let id = b.channels.next_message_id(ts).await.expect("message id");
    let off = HistoryPolicy { size: 0, ..POLICY };
    b.history
        .record(&message(channel, id, ts), off, ts)
        .await
        .expect("record");
    id
}

fn message(channel: &str, id: u64, ts: u64) -> Message {
    Message {
        id,
        channel_id: channel.to_owned(),
        user_id: format!("user-{}", id % 3),
        text: format!("message {id} \"quoted\" ünïcødé 💬"),
        ts,
        client_msg_id: id.is_multiple_of(2).then(|| format!("c-{id}")),
    }
}

fn ids(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.id).collect()
}

const POLICY: HistoryPolicy = HistoryPolicy {
    size: 5,
    ttl_ms: 60_000,
};

/// History keeps the newest `size` messages whole, in id order (also when
/// they arrive out of order), and answers `since` (with `complete` exact
/// about trimmed and cut messages) and `before` pages.
pub(crate) async fn history_keeps_the_newest(b: Backends) {
    let h = &b.history;
    let t = now_ms();
    let id = |k: u64| t * 1000 + k;
    // Eight messages, two of them out of id order (ids come from a counter
    // before the store, so two senders may store in either order).
    for k in [1, 2, 3, 5, 4, 6, 7, 8] {
        h.record(&message("room", id(k), t), POLICY, t)
            .await
            .expect("record");
    }
    // Stored whole: exactly the message:new payload.
    let newest = h.before("room", None, 2, POLICY, t).await.expect("before");
    assert_eq!(
        newest.messages,
        vec![message("room", id(7), t), message("room", id(8), t)]
    );
    assert!(newest.has_more);
    // Paging back: 5, 6, then 4 and no more (1..3 were trimmed).
    let page = h
        .before("room", Some(id(7)), 2, POLICY, t)
        .await
        .expect("page");
    assert_eq!(
        (ids(&page.messages), page.has_more),
        (vec![id(5), id(6)], true)
    );
    let page = h
        .before("room", Some(id(5)), 2, POLICY, t)
        .await
        .expect("page");
    assert_eq!((ids(&page.messages), page.has_more), (vec![id(4)], false));
    let page = h
        .before("room", Some(id(4)), 2, POLICY, t)
        .await
        .expect("page");
    assert_eq!((ids(&page.messages), page.has_more), (vec![], false));
    let all = h.before("room", None, 100, POLICY, t).await.expect("all");
    assert_eq!(
        (ids(&all.messages), all.has_more),
        (vec![id(4), id(5), id(6), id(7), id(8)], false)
    );

    let since = |since: u64, limit: usize| {
        let h = h.clone();
        async move {
            let missed = h
                .since("room", since, limit, POLICY, t)
                .await
                .expect("since");
            (ids(&missed.messages), missed.complete)
        }
    };
    // Up to date: nothing missed, nothing lost.
    assert_eq!(since(id(8), 100).await, (vec![], true));
    assert_eq!(since(id(6), 100).await, (vec![id(7), id(8)], true));
    // 3 was trimmed, but it is not after `since`.
    assert_eq!(
        since(id(3), 100).await,
        (vec![id(4), id(5), id(6), id(7), id(8)], true)
    );
    // 3 was trimmed and is after `since`: a gap.
    assert_eq!(
        since(id(2), 100).await,
        (vec![id(4), id(5), id(6), id(7), id(8)], false)
    );
    // The limit keeps the newest and says it cut some.
    assert_eq!(since(id(5), 2).await, (vec![id(7), id(8)], false));
    assert_eq!(since(id(6), 2).await, (vec![id(7), id(8)], true));
    // An id from the future: nothing after it.
    assert_eq!(since(id(1_000_000), 100).await, (vec![], true));

    // A channel without history: nothing after a recent id was lost, but
    // before the TTL window anything may have been.
    let fresh = h
        .since("quiet", t * 1000, 100, POLICY, t)
        .await
        .expect("since");
    assert_eq!((fresh.messages.len(), fresh.complete), (0, true));
    let old = h.since("quiet", 1, 100, POLICY, t).await.expect("since");
    assert_eq!((old.messages.len(), old.complete), (0, false));
    let page = h.before("quiet", None, 10, POLICY, t).await.expect("page");
    assert_eq!((page.messages.len(), page.has_more), (0, false));
}

/// Messages older than the TTL are gone (time is injected: `now_ms`), and
/// the floor says they were lost; with history off nothing is stored but
/// the channel's activity still moves.
pub(crate) async fn history_expires_and_can_be_off(b: Backends) {
    let h = &b.history;
    let t = now_ms();
    let old_ts = t - 50_000;
    let old = |k: u64| old_ts * 1000 + k;
    let new = t * 1000 + 1;
    h.record(&message("c", old(1), old_ts), POLICY, t)
        .await
        .expect("record");
    h.record(&message("c", old(2), old_ts), POLICY, t)
        .await
        .expect("record");
    h.record(&message("c", new, t), POLICY, t)
        .await
        .expect("record");
    let missed = h.since("c", old(1), 100, POLICY, t).await.expect("since");
    assert_eq!(
        (ids(&missed.messages), missed.complete),
        (vec![old(2), new], true)
    );
    // 20 s later the old two are past the 60 s TTL.
    let later = t + 20_000;
    let missed = h.since("c", 0, 100, POLICY, later).await.expect("since");
    assert_eq!((ids(&missed.messages), missed.complete), (vec![new], false));
    let missed = h
        .since("c", old(1), 100, POLICY, later)
        .await
        .expect("since");
    assert_eq!(
        (ids(&missed.messages), missed.complete),
        (vec![new], false),
        "2 expired"
    );
    let missed = h
        .since("c", old(2), 100, POLICY, later)
        .await
        .expect("since");
    assert_eq!((ids(&missed.messages), missed.complete), (vec![new], true));
    let page = h.before("c", None, 10, POLICY, later).await.expect("page");
    assert_eq!((ids(&page.messages), page.has_more), (vec![new], false));
    // Long after, everything is gone, and a gap before the last is reported.
    let much_later = t + 200_000;
    let missed = h
        .since("c", new, 100, POLICY, much_later)
        .await
        .expect("since");
    assert!(missed.messages.is_empty());
    let missed = h
        .since("c", old(2), 100, POLICY, much_later)
        .await
        .expect("since");
    assert_eq!((missed.messages.len(), missed.complete), (0, false));
    let page = h
        .before("c", None, 10, POLICY, much_later)
        .await
        .expect("page");
    assert!(page.messages.is_empty() && !page.has_more);

    // History off: only the activity moves.
    b.channels.join("u", "off", 10, t).await.expect("join");
    let off = HistoryPolicy { size: 0, ..POLICY };
    h.record(&message("off", t * 1000 + 7, t + 5), off, t + 5)
        .await
        .expect("record");
    assert_eq!(
        b.channels
            .channel_stats(&names(&["off"]))
            .await
            .expect("stats"),
        vec![(t + 5, 1)]
    );
    let page = h
        .before("off", None, 10, POLICY, t + 5)
        .await
        .expect("page");
    assert!(page.messages.is_empty());
}

/// Many senders at once: every message is kept exactly once, in id order,
/// the activity is the newest ts, and ids from `next_message_id` are unique.
pub(crate) async fn history_under_concurrent_sends(b: Backends) {
    let t = now_ms();
    let policy = HistoryPolicy {
        size: 100,
        ttl_ms: 60_000,
    };
    b.channels.join("u", "busy", 10, t).await.expect("join");
    let sends = (0..40_u64).map(|i| {
        let b = b.clone();
        async move {
            let id = b.channels.next_message_id(t + i).await.expect("id");
            b.history
                .record(&message("busy", id, t + i), policy, t + i)
                .await
                .expect("record");
            id
        }
    });
    let mut sent = futures_util::future::join_all(sends).await;
    sent.sort_unstable();
    let page = b
        .history
        .before("busy", None, 100, policy, t + 40)
        .await
        .expect("page");
    assert_eq!(ids(&page.messages), sent);
    assert!(!page.has_more);
    assert_eq!(
        b.channels
            .channel_stats(&names(&["busy"]))
            .await
            .expect("stats"),
        vec![(t + 39, 1)]
    );
}

/// The ordered send: where a backend can (Redis, one server or a Cluster)
/// it assigns increasing ids and the message is in its channel's history
/// when the call returns; where it keeps an ordered log (a Redis Cluster,
/// in the slot of the sharded pub/sub channel) the log holds every channel's
/// messages after an id, in id order, exactly.
pub(crate) async fn ordered_send_and_log(b: Backends) {
    let t = now_ms();
    let template = PublishTemplate {
        channel: "socket.io#/#".to_owned(),
        parts: Default::default(),
        member: None,
    };
    let mut sent = Vec::new();
    for (i, channel) in ["a", "b", "a"].into_iter().enumerate() {
        let draft = message(channel, 0, t + i as u64);
        match b
            .history
            .append_and_publish(&draft, &template, POLICY, t + i as u64)
            .await
            .expect("ordered send")
        {
            Some(Appended::Published(sent_message)) => {
                assert_eq!(sent_message.text, draft.text);
                sent.push(sent_message);
            }
            Some(Appended::NotMember) => panic!("no membership was asked for"),
            // The in-memory backend: the caller keeps the order.
            None => return,
        }
    }
    assert!(sent.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let a = b
        .history
        .since("a", 0, 10, POLICY, t + 3)
        .await
        .expect("since");
    assert_eq!(ids(&a.messages), [sent[0].id, sent[2].id]);
    let Some(log) = b.history.log_since(0, 10).await.expect("log") else {
        return;
    };
    assert_eq!(log.messages, sent);
    assert!(log.complete);
    let after_first = b.history.log_since(sent[0].id, 10).await.expect("log");
    let after_first = after_first.expect("a log");
    assert_eq!(ids(&after_first.messages), [sent[1].id, sent[2].id]);
    assert!(after_first.complete);
    let cut = b
        .history
        .log_since(0, 2)
        .await
        .expect("log")
        .expect("a log");
    assert_eq!(ids(&cut.messages), [sent[0].id, sent[1].id]);
    assert!(!cut.complete, "cut by the limit");
}
