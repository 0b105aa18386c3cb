//! An SVG plot of a run: latency (p50, p99) and throughput over time, with
//! the number of connected participants. No plotting library: a few lines
//! and labels are all it takes.

use crate::report::{Report, Tick};

const WIDTH: f64 = 900.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const GAP: f64 = 50.0;

fn polyline(
    ticks: &[Tick],
    top: f64,
    max: f64,
    t_max: f64,
    value: impl Fn(&Tick) -> f64,
) -> String {
    let points: Vec<String> = ticks
        .iter()
        .map(|t| {
            let x = LEFT + (WIDTH - LEFT - RIGHT) * t.t / t_max.max(1.0);
            let y = top + PANEL - PANEL * (value(t) / max.max(1e-9)).min(1.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    points.join(" ")
}

fn panel(out: &mut String, top: f64, title: &str, unit: &str, max: f64, t_max: f64) {
    let x1 = WIDTH - RIGHT;
    out.push_str(&format!(
        r##"<rect x="{LEFT}" y="{top}" width="{w}" height="{PANEL}" fill="none" stroke="#999"/>
<text x="{LEFT}" y="{ty}" font-size="14" font-weight="bold">{title}</text>
<text x="{lx}" y="{top_label}" font-size="11" text-anchor="end">{max:.1} {unit}</text>
<text x="{lx}" y="{bottom}" font-size="11" text-anchor="end">0</text>
<text x="{x1}" y="{axis}" font-size="11" text-anchor="end">{t_max:.0} s</text>
"##,
        w = WIDTH - LEFT - RIGHT,
        ty = top - 8.0,
        lx = LEFT - 6.0,
        top_label = top + 10.0,
        bottom = top + PANEL,
        axis = top + PANEL + 14.0,
    ));
}

/// The plot as an SVG document.
pub fn svg(report: &Report) -> String {
    let ticks = &report.timeline;
    let t_max = ticks.last().map_or(1.0, |t| t.t);
    let lat_max = ticks.iter().map(|t| t.latency_p99_ms).fold(1.0, f64::max) * 1.1;
    let frames_max = ticks.iter().map(|t| t.frames as f64).fold(1.0, f64::max) * 1.1;
    let conn_max = ticks.iter().map(|t| t.connected as f64).fold(1.0, f64::max) * 1.1;
    let height = TOP + 2.0 * PANEL + GAP + 40.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="20" font-size="15">Veil load test: {p} participants, {r} rooms; loss {loss:.4}, p99 {p99:.1} ms, {dec} decrypt failures</text>
"#,
        p = report.participants,
        r = report.scenario.rooms,
        loss = report.loss_ratio,
        p99 = report.latency_ms.p99,
        dec = report.decrypt_failures,
    );
    let top1 = TOP + 10.0;
    panel(
        &mut out,
        top1,
        "End-to-end frame latency (p50 blue, p99 red)",
        "ms",
        lat_max,
        t_max,
    );
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
        polyline(ticks, top1, lat_max, t_max, |t| t.latency_p50_ms)
    ));
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"{}\"/>\n",
        polyline(ticks, top1, lat_max, t_max, |t| t.latency_p99_ms)
    ));
    let top2 = top1 + PANEL + GAP;
    panel(
        &mut out,
        top2,
        "Frames decrypted per second (green), participants connected (grey, right)",
        "frames/s",
        frames_max,
        t_max,
    );
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"{}\"/>\n",
        polyline(ticks, top2, frames_max, t_max, |t| t.frames as f64)
    ));
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#888\" stroke-dasharray=\"4 3\" points=\"{}\"/>\n<text x=\"{x}\" y=\"{y}\" font-size=\"11\">{conn_max:.0}</text>\n",
        polyline(ticks, top2, conn_max, t_max, |t| t.connected as f64),
        x = WIDTH - RIGHT + 6.0,
        y = top2 + 10.0,
    ));
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_is_an_svg_with_one_point_per_second() {
        let report = Report {
            timeline: (0..5)
                .map(|i| Tick {
                    t: i as f64,
                    connected: 3,
                    frames: 100 + i,
                    latency_p50_ms: 2.0,
                    latency_p99_ms: 9.0,
                    packets_out: 0.0,
                })
                .collect(),
            ..Report::default()
        };
        let svg = svg(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        let first = svg.split("points=\"").nth(1).unwrap();
        assert_eq!(first.split('"').next().unwrap().split(' ').count(), 5);
    }
}
