//! Rate-limit settings: `RATE_LIMITS="message:send=60/min,channel:join=10/min,default=100/min"`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::protocol::events::CLIENT_EVENTS;

/// The built-in rate limits of the wire contract (the seed's values).
pub const DEFAULT_RATE_LIMITS: &str = "message:send=60/min,channel:join=10/min,default=100/min";

/// How many events a user may send per period, e.g. `60/min`.
///
/// Parsed from `<count>/<period>` where the period is a unit (`ms`, `s`, `min`,
/// `h`, `d`, also `sec`, `m`, `hour`, `day` and plurals), optionally preceded
/// by a number: `60/min`, `10/s`, `100/h`, `5/30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Events allowed per period; at least 1.
    pub count: u32,
    /// Length of the period; never zero.
    pub period: Duration,
}

impl Rate {
    /// A rate of `count` events per `period`.
    pub const fn new(count: u32, period: Duration) -> Rate {
        Rate { count, period }
    }

    /// `count` events per minute.
    pub const fn per_minute(count: u32) -> Rate {
        Rate::new(count, Duration::from_secs(60))
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        let Some((count, period)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} is not a rate: write <count>/<period>, e.g. 60/min or 5/30s"
            ));
        };
        let count: u32 = match count.trim().parse() {
            Ok(count) if count >= 1 => count,
            _ => {
                return Err(format!(
                    "{text:?}: the count must be a whole number of at least 1"
                ));
            }
        };
        let period = parse_period(period.trim()).ok_or_else(|| {
            format!(
                "{text:?}: the period must be a unit (ms, s, min, h, d), optionally with a \
                 number before it, e.g. 30s"
            )
        })?;
        Ok(Rate { count, period })
    }
}

/// Parses `min`, `30s`, `2h`, `500ms`... into a non-zero duration.
fn parse_period(text: &str) -> Option<Duration> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = if number.is_empty() {
        1
    } else {
        number.parse().ok()?
    };
    let unit_ms: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    let millis = number.checked_mul(unit_ms)?;
    (millis > 0).then(|| Duration::from_millis(millis))
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.period.as_millis();
        let (n, unit) = if ms.is_multiple_of(86_400_000) {
            (ms / 86_400_000, "d")
        } else if ms.is_multiple_of(3_600_000) {
            (ms / 3_600_000, "h")
        } else if ms.is_multiple_of(60_000) {
            (ms / 60_000, "min")
        } else if ms.is_multiple_of(1_000) {
            (ms / 1_000, "s")
        } else {
            (ms, "ms")
        };
        if n == 1 {
            write!(f, "{}/{unit}", self.count)
        } else {
            write!(f, "{}/{n}{unit}", self.count)
        }
    }
}

/// Per-user rate limits: one [`Rate`] per event name, and a default for all
/// other events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// The rate of every event without an entry in `per_event`.
    pub default: Rate,
    /// Rates of specific events, by event name (e.g. `message:send`).
    pub per_event: HashMap<String, Rate>,
}

impl RateLimits {
    /// The rate that applies to `event`.
    pub fn for_event(&self, event: &str) -> Rate {
        self.per_event.get(event).copied().unwrap_or(self.default)
    }

    /// Parses a comma-separated list of `event=rate` entries (`default=rate`
    /// sets the rate of all other events) on top of the built-in limits
    /// ([`DEFAULT_RATE_LIMITS`]): events not mentioned keep their built-in rate.
    ///
    /// Every bad entry is reported, each naming the entry.
    pub fn parse(text: &str) -> Result<RateLimits, Vec<String>> {
        let mut limits = RateLimits::default();
        let mut seen: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((event, rate)) = entry.split_once('=') else {
                problems.push(format!(
                    "entry {entry:?} is not <event>=<rate>, e.g. message:send=60/min"
                ));
                continue;
            };
            let event = event.trim();
            if event.is_empty() {
                problems.push(format!("entry {entry:?} has no event name"));
                continue;
            }
            if seen.iter().any(|s| s == event) {
                problems.push(format!("event {event:?} is listed twice"));
                continue;
            }
            seen.push(event.to_owned());
            if let Err(why) = check_event_name(event) {
                problems.push(format!("entry {entry:?}: {why}"));
                continue;
            }
            match rate.parse::<Rate>() {
                Ok(rate) if event == "default" => limits.default = rate,
                Ok(rate) => {
                    limits.per_event.insert(event.to_owned(), rate);
                }
                Err(why) => problems.push(format!("entry {entry:?}: {why}")),
            }
        }
        if problems.is_empty() {
            Ok(limits)
        } else {
            Err(problems)
        }
    }
}

/// The names `RATE_LIMITS` accepts: every client -> server event of the wire
/// contract ([`CLIENT_EVENTS`]) and `default`.
pub fn known_event_names() -> impl Iterator<Item = &'static str> {
    CLIENT_EVENTS.iter().copied().chain(["default"])
}

/// Refuses an event name that no client can send (a typo such as
/// `message:sned` would otherwise leave `message:send` at its built-in rate
/// without a word), suggesting the closest known name.
fn check_event_name(event: &str) -> Result<(), String> {
    if known_event_names().any(|known| known == event) {
        return Ok(());
    }
    let closest = known_event_names()
        .map(|known| (edit_distance(event, known), known))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, known)| *distance <= known.chars().count().div_ceil(2));
    let known: Vec<&str> = known_event_names().collect();
    let suggestion = closest.map_or_else(String::new, |(_, name)| format!("did you mean {name}? "));
    Err(format!(
        "unknown event {event:?}: {suggestion}(known: {})",
        known.join(", ")
    ))
}

/// The optimal-string-alignment distance between `a` and `b`: insertions,
/// deletions, substitutions and swaps of adjacent characters each cost 1,
/// so `sned` is one edit away from `send`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

impl Default for RateLimits {
    /// The contract's limits: `message:send` 60/min, `channel:join` 10/min,
    /// everything else 100/min.
    fn default() -> RateLimits {
        RateLimits {
            default: Rate::per_minute(100),
            per_event: HashMap::from([
                ("message:send".to_owned(), Rate::per_minute(60)),
                ("channel:join".to_owned(), Rate::per_minute(10)),
            ]),
        }
    }
}

impl fmt::Display for RateLimits {
    /// The same syntax as `RATE_LIMITS`, events sorted, `default` last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut events: Vec<_> = self.per_event.iter().collect();
        events.sort_by(|a, b| a.0.cmp(b.0));
        for (event, rate) in events {
            write!(f, "{event}={rate},")?;
        }
        write!(f, "default={}", self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Result<Rate, String> {
        text.parse()
    }

    #[test]
    fn rate_syntax() {
        assert_eq!(rate("60/min"), Ok(Rate::per_minute(60)));
        assert_eq!(rate("10/s"), Ok(Rate::new(10, Duration::from_secs(1))));
        assert_eq!(rate("100/h"), Ok(Rate::new(100, Duration::from_secs(3600))));
        assert_eq!(rate("5/30s"), Ok(Rate::new(5, Duration::from_secs(30))));
        assert_eq!(
            rate(" 7 / 2min "),
            Ok(Rate::new(7, Duration::from_secs(120)))
        );
        assert_eq!(
            rate("3/500ms"),
            Ok(Rate::new(3, Duration::from_millis(500)))
        );
        assert_eq!(rate("1/day"), Ok(Rate::new(1, Duration::from_secs(86_400))));
        assert_eq!(rate("2/MIN"), Ok(Rate::per_minute(2)));
    }

    #[test]
    fn bad_rates() {
        for bad in [
            "",
            "60",
            "0/min",
            "-1/min",
            "x/min",
            "60/",
            "60/fortnight",
            "60/0s",
            "60/min/s",
            "1.5/s",
            "60/-1s",
        ] {
            assert!(rate(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rate_display_round_trips() {
        for text in [
            "60/min", "10/s", "100/h", "5/30s", "3/500ms", "1/d", "4/90s",
        ] {
            let parsed = rate(text).expect("valid");
            assert_eq!(rate(&parsed.to_string()), Ok(parsed), "{text}");
        }
        assert_eq!(Rate::per_minute(60).to_string(), "60/min");
    }

    #[test]
    fn defaults_match_the_contract() {
        let parsed = RateLimits::parse(DEFAULT_RATE_LIMITS).expect("valid");
        assert_eq!(parsed, RateLimits::default());
        assert_eq!(parsed.for_event("message:send"), Rate::per_minute(60));
        assert_eq!(parsed.for_event("channel:join"), Rate::per_minute(10));
        assert_eq!(parsed.for_event("typing"), Rate::per_minute(100));
    }

    #[test]
    fn entries_override_the_built_in_limits() {
        let parsed = RateLimits::parse("message:send=5/s, typing=1000/min").expect("valid");
        assert_eq!(
            parsed.for_event("message:send"),
            Rate::new(5, Duration::from_secs(1))
        );
        assert_eq!(parsed.for_event("typing"), Rate::per_minute(1000));
        assert_eq!(parsed.for_event("channel:join"), Rate::per_minute(10));
        assert_eq!(parsed.for_event("other"), Rate::per_minute(100));
    }

    #[test]
    fn unknown_event_names_are_refused_with_a_suggestion() {
        let problems = RateLimits::parse("message:sned=3/min").expect_err("typo");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("did you mean message:send?"),
            "{problems:?}"
        );
        let problems = RateLimits::parse("defualt=5/s,chanel:join=1/s").expect_err("typos");
        assert!(
            problems[0].contains("did you mean default?"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("did you mean channel:join?"),
            "{problems:?}"
        );
        // Far from every name: no guess, but the list of known names.
        let problems = RateLimits::parse("zzzzzzzzzzzzzz=1/s").expect_err("unknown");
        assert!(!problems[0].contains("did you mean"), "{problems:?}");
        assert!(problems[0].contains("message:send"), "{problems:?}");
        // Server -> client events are not rate limited either.
        assert!(RateLimits::parse("message:new=1/s").is_err());
        for known in known_event_names() {
            assert!(
                RateLimits::parse(&format!("{known}=1/s")).is_ok(),
                "{known}"
            );
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("send", "send"), 0);
        assert_eq!(edit_distance("sned", "send"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("typo", "typing"), 3);
    }

    #[test]
    fn every_bad_entry_is_named() {
        let problems = RateLimits::parse(
            "message:send=fast,nonsense,=5/s,default=0/min,typing=1/s,typing=2/s",
        )
        .expect_err("invalid");
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].contains("message:send=fast"));
        assert!(problems[1].contains("nonsense"));
        assert!(problems[2].contains("no event name"));
        assert!(problems[3].contains("default=0/min"));
        assert!(problems[4].contains("typing"));
    }
}
