//! SVG figure of a bench invocation: latency, CPU per delivery, RSS per
//! connection, one bar per (scenario, server).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{Outcome, Run};

const CHATGATE: RGBColor = RGBColor(214, 96, 36);
const NODE: RGBColor = RGBColor(60, 130, 70);
const OTHER: RGBColor = RGBColor(80, 100, 170);

/// One bar: label, value, server (for the colour), and optionally the part
/// of the value drawn darker at the bottom (user CPU inside user + system).
type Bar = (String, f64, String, Option<f64>);

fn colour(server: &str) -> RGBColor {
    match server {
        "chatgate" => CHATGATE,
        "node" => NODE,
        _ => OTHER,
    }
}

fn traffic_bars(
    runs: &[Run],
    metric: impl Fn(&crate::scenarios::TrafficResult) -> Option<f64>,
) -> Vec<Bar> {
    runs.iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Fanout(t) | Outcome::Rooms(t) | Outcome::Cluster(t) => metric(t).map(|v| {
                (
                    format!("{} {}", r.scenario, r.server),
                    v,
                    r.server.clone(),
                    None,
                )
            }),
            _ => None,
        })
        .collect()
}

/// Writes the figure; panels without data are left out.
pub(crate) fn write_svg(path: &Path, runs: &[Run]) -> Result<(), String> {
    let panels: Vec<(&str, Vec<Bar>)> = vec![
        (
            "latency p50 (ms)",
            traffic_bars(runs, |t| Some(t.latency_us[0] as f64 / 1000.0)),
        ),
        (
            "latency p99 (ms)",
            traffic_bars(runs, |t| Some(t.latency_us[1] as f64 / 1000.0)),
        ),
        (
            "server CPU per delivery (us; dark = user, light = system)",
            traffic_bars(runs, crate::scenarios::TrafficResult::cpu_per_delivery_us)
                .into_iter()
                .zip(traffic_bars(
                    runs,
                    crate::scenarios::TrafficResult::user_cpu_per_delivery_us,
                ))
                .map(|(total, user)| (total.0, total.1, total.2, Some(user.1)))
                .collect(),
        ),
        (
            "server RSS per idle connection (KiB)",
            runs.iter()
                .filter_map(|r| match &r.outcome {
                    Outcome::Idle(i) => i
                        .rss_per_conn_kib()
                        .map(|v| (format!("idle {}", r.server), v, r.server.clone(), None)),
                    _ => None,
                })
                .collect(),
        ),
    ];
    let panels: Vec<_> = panels.into_iter().filter(|(_, b)| !b.is_empty()).collect();
    if panels.is_empty() {
        return Ok(());
    }
    let root =
        SVGBackend::new(path, (1400, 520 * panels.len().div_ceil(2) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((panels.len().div_ceil(2), 2));
    for ((title, bars), area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, title, bars).map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    bars: &[Bar],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = bars.len() as u32;
    let ymax = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-6) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n).into_segmented(), 0.0..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars
                .get(*i as usize)
                .map(|b| b.0.clone())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_style(("sans-serif", 14))
        .y_label_style(("sans-serif", 13))
        .draw()?;
    // With parts (user CPU inside user + system), the whole bar is light and
    // the part is drawn over it in full colour.
    let has_parts = bars.iter().any(|b| b.3.is_some());
    let bar = |i: usize, value: f64, fill: ShapeStyle| {
        let i = i as u32;
        let mut rect = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), value),
            ],
            fill,
        );
        rect.set_margin(0, 0, 12, 12);
        rect
    };
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let fill = if has_parts {
            colour(&b.2).mix(0.4).filled()
        } else {
            colour(&b.2).filled()
        };
        bar(i, b.1, fill)
    }))?;
    chart.draw_series(
        bars.iter()
            .enumerate()
            .filter_map(|(i, b)| b.3.map(|part| bar(i, part, colour(&b.2).filled()))),
    )?;
    let style =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let label = if b.1 >= 100.0 {
            format!("{:.0}", b.1)
        } else if b.1 >= 1.0 {
            format!("{:.2}", b.1)
        } else {
            format!("{:.3}", b.1)
        };
        Text::new(
            label,
            (SegmentValue::CenterOf(i as u32), b.1),
            style.clone(),
        )
    }))?;
    Ok(())
}
