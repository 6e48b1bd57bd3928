//! Event rates for `/status`, derived from the Prometheus counters without a
//! background task: each call of `/status` records a reading, and the rates
//! are the difference to the oldest reading still in the window.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metrics::counter_by_label;

/// The window of the event rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Event rates over the last [`RATE_WINDOW`], per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRates {
    /// The seconds the rates are measured over (up to the window).
    pub window_seconds: f64,
    /// Client events of every kind.
    pub events_per_second: f64,
    /// Client messages (`message:send` accepted).
    pub messages_per_second: f64,
    /// Client events refused with an error code (rate limits included).
    pub refused_per_second: f64,
    /// Client events by event name.
    pub by_event: BTreeMap<String, f64>,
}

/// One reading of the counters.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    by_event: Vec<(String, f64)>,
    messages: f64,
    refused: f64,
}

impl Sample {
    fn read(at: Instant, text: &str) -> Sample {
        let by_event = counter_by_label(text, "chatgate_events_total", "event");
        let refused = counter_by_label(text, "chatgate_events_total", "outcome")
            .into_iter()
            .filter(|(outcome, _)| outcome != "ok")
            .map(|(_, n)| n)
            .sum();
        let messages = counter_by_label(text, "chatgate_messages_total", "")
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        Sample {
            at,
            by_event,
            messages,
            refused,
        }
    }

    fn events(&self) -> f64 {
        self.by_event.iter().map(|(_, n)| n).sum()
    }
}

/// Readings of the event counters taken at each `/status` call (at most one
/// per second, and none older than needed for [`RATE_WINDOW`]), from which
/// rates are derived without a background task.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: VecDeque<Sample>,
}

impl RateWindow {
    /// Records the counters in `metrics_text` (rendered Prometheus text) as
    /// read at `now`, and returns the rates since the oldest kept reading, or
    /// `None` while there is less than a second of history.
    pub fn observe(&mut self, now: Instant, metrics_text: &str) -> Option<EventRates> {
        let recent = self
            .samples
            .back()
            .is_some_and(|last| now.saturating_duration_since(last.at) < Duration::from_secs(1));
        if !recent {
            self.samples.push_back(Sample::read(now, metrics_text));
        }
        // Keep one reading at or beyond the window's start.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|s| now.saturating_duration_since(s.at) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let current = Sample::read(now, metrics_text);
        let oldest = self.samples.front()?;
        let seconds = now.saturating_duration_since(oldest.at).as_secs_f64();
        if seconds < 1.0 {
            return None;
        }
        let per_second =
            |now: f64, then: f64| ((now - then).max(0.0) / seconds * 100.0).round() / 100.0;
        let by_event = current
            .by_event
            .iter()
            .map(|(event, n)| {
                let then = oldest
                    .by_event
                    .iter()
                    .find(|(e, _)| e == event)
                    .map_or(0.0, |(_, n)| *n);
                (event.clone(), per_second(*n, then))
            })
            .collect();
        Some(EventRates {
            window_seconds: (seconds * 10.0).round() / 10.0,
            events_per_second: per_second(current.events(), oldest.events()),
            messages_per_second: per_second(current.messages, oldest.messages),
            refused_per_second: per_second(current.refused, oldest.refused),
            by_event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(send_ok: u32, send_limited: u32, typing: u32, messages: u32) -> String {
        format!(
            "chatgate_events_total{{event=\"message:send\",outcome=\"ok\"}} {send_ok}\n\
             chatgate_events_total{{event=\"message:send\",outcome=\"RATE_LIMITED\"}} {send_limited}\n\
             chatgate_events_total{{event=\"typing\",outcome=\"ok\"}} {typing}\n\
             chatgate_messages_total {messages}\n"
        )
    }

    #[test]
    fn rates_need_a_second_then_follow_the_counters() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        assert_eq!(window.observe(start, &text(0, 0, 0, 0)), None);
        assert_eq!(
            window.observe(start + Duration::from_millis(500), &text(5, 0, 0, 5)),
            None
        );
        let rates = window
            .observe(start + Duration::from_secs(10), &text(20, 10, 30, 20))
            .expect("rates after 10 s");
        assert_eq!(rates.window_seconds, 10.0);
        assert_eq!(rates.events_per_second, 6.0);
        assert_eq!(rates.messages_per_second, 2.0);
        assert_eq!(rates.refused_per_second, 1.0);
        assert_eq!(rates.by_event.get("typing"), Some(&3.0));
        assert_eq!(rates.by_event.get("message:send"), Some(&3.0));
    }

    #[test]
    fn old_readings_leave_the_window() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        for second in 0..200u32 {
            window.observe(
                start + Duration::from_secs(u64::from(second)),
                &text(second, 0, 0, 0),
            );
        }
        assert!(window.samples.len() <= 62, "{}", window.samples.len());
        let rates = window
            .observe(start + Duration::from_secs(200), &text(200, 0, 0, 0))
            .expect("rates");
        assert!(rates.window_seconds <= 61.0);
        assert_eq!(rates.events_per_second, 1.0);
    }
}
