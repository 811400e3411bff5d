//! The picture's vocabulary, shared by both views: the page, text made safe for SVG, durations
//! written for a person, the time axis, the colours and the legend.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};

use crate::protocol::CallState;

/// The page's width in px: A4 landscape at 96 dpi is 1123 px wide.
pub(super) const PAGE: f64 = 1100.0;
/// Where the time axis starts; the column to its left holds the labels.
pub(super) const LEFT: f64 = 170.0;
/// The time axis's width.
pub(super) const PLOT: f64 = 880.0;
/// Black, for text and the axis: the picture prints on any printer.
pub(super) const INK: &str = "#000000";
/// Red, for a violation; always with a written `✗` too, which survives black-and-white.
pub(super) const ALARM: &str = "#cc0000";
/// The checkpoints' dashed lines and badges.
pub(super) const CHECKPOINT: &str = "#7f3f00";
/// A retention capability's bar.
pub(super) const CAPABILITY: &str = "#6fa8dc";
/// A request's tick.
pub(super) const REQUEST: &str = "#1f4e79";
/// A completed answer's or a notification's tick.
pub(super) const GOOD: &str = "#38761d";
/// Any other answer's tick, or no answer.
pub(super) const BAD: &str = "#990000";

/// The states, in the order of their bands.
pub(super) const BANDS: [CallState; 5] = [
    CallState::NotRecording,
    CallState::PendingRecording,
    CallState::Recording,
    CallState::Failed,
    CallState::Ended,
];

/// The fill of a state's band.
pub(super) fn colour(state: CallState) -> &'static str {
    match state {
        CallState::NotRecording => "#d9d9d9",
        CallState::PendingRecording => "#ffd966",
        CallState::Recording => "#e06666",
        CallState::Failed => "#8e7cc3",
        _ => "#666666",
    }
}

/// `text` made safe inside an SVG element or a double-quoted attribute: markup escaped, and the characters XML
/// 1.0 cannot hold (controls other than tab, newline and carriage return) replaced by `�`. Call
/// ids and reasons come from the trail, which an attacker may have written.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, the last one `…` when it was cut.
pub(super) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A length of time, unsigned, in the unit that fits it (ns, µs, ms or s) with three
/// significant digits: `420 µs`, `1.02 s`, `0 ns`.
pub(super) fn duration(d: TimeDelta) -> String {
    let Some(ns) = d.num_nanoseconds().map(i64::unsigned_abs) else {
        return format!("{} s", d.num_seconds().unsigned_abs());
    };
    let three = |v: f64, unit: &str| {
        if v >= 100.0 {
            format!("{v:.0} {unit}")
        } else if v >= 10.0 {
            format!("{v:.1} {unit}")
        } else {
            format!("{v:.2} {unit}")
        }
    };
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        three(ns as f64 / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        three(ns as f64 / 1e6, "ms")
    } else {
        three(ns as f64 / 1e9, "s")
    }
}

/// An instant written once, in full, for a person: `2026-11-27 09:00:00.000000 UTC`.
pub(super) fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string()
}

/// Microseconds from `from` to `to`, saturating.
fn micros(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX)
}

/// A linear time axis: from the earliest instant drawn, `origin`, over at least 1 ms.
#[derive(Debug, Clone, Copy)]
pub(super) struct Axis {
    origin: DateTime<Utc>,
    span_us: i64,
}

impl Axis {
    /// The axis from `origin` to `end` (at least 1 ms).
    pub(super) fn new(origin: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            origin,
            span_us: micros(origin, end).max(1_000),
        }
    }

    /// Where `at` is drawn (clamped to the axis).
    pub(super) fn x(&self, at: DateTime<Utc>) -> f64 {
        let us = micros(self.origin, at).clamp(0, self.span_us);
        LEFT + PLOT * us as f64 / self.span_us as f64
    }

    /// The axis's ticks: a round step (1, 2 or 5 times a power of ten microseconds) giving at
    /// most nine ticks from 0, each with its x and its label in the unit that fits the step.
    pub(super) fn ticks(&self) -> Vec<(f64, String)> {
        let mut step: i64 = 1;
        'find: loop {
            for m in [1, 2, 5] {
                if m * step * 8 >= self.span_us {
                    step *= m;
                    break 'find;
                }
            }
            step *= 10;
        }
        let (unit, name) = if step >= 100_000 {
            (1_000_000, "s")
        } else if step >= 100 {
            (1_000, "ms")
        } else {
            (1, "µs")
        };
        let decimals = usize::from(step % unit != 0);
        (0..)
            .map(|k| k * step)
            .take_while(|t| *t <= self.span_us)
            .map(|t| {
                let x = LEFT + PLOT * t as f64 / self.span_us as f64;
                (x, format!("{:.*} {name}", decimals, t as f64 / unit as f64))
            })
            .collect()
    }

    /// Draws the axis at `y` with its labelled ticks, a light grid line per tick from `grid_top`
    /// down to the axis, and its title (what 0 is, written once in UTC). Returns the y below it.
    pub(super) fn draw(&self, svg: &mut String, grid_top: f64, y: f64, zero: &str) -> f64 {
        for (x, label) in self.ticks() {
            let _ = writeln!(
                svg,
                r##"<line class="grid" x1="{x:.1}" y1="{grid_top:.1}" x2="{x:.1}" y2="{y:.1}" stroke="#dddddd" stroke-width="0.5"/><line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="{INK}"/><text class="axis-tick" x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">{label}</text>"##,
                y + 5.0,
                y + 16.0,
            );
        }
        let _ = writeln!(
            svg,
            r#"<line class="axis" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{INK}"/><text class="axis-title" x="{LEFT}" y="{:.1}" font-size="11">time since {} ({})</text>"#,
            LEFT + PLOT,
            y + 32.0,
            instant(self.origin),
            escape(zero),
        );
        y + 40.0
    }

    /// Writes the ticks' labels alone at `y`: the axis repeated above a long page.
    pub(super) fn labels(&self, svg: &mut String, y: f64) {
        for (x, label) in self.ticks() {
            let _ = writeln!(
                svg,
                r#"<text class="axis-tick-top" x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="10">{label}</text>"#,
            );
        }
    }
}

/// What a legend entry's sample looks like.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sample {
    /// A filled box: a state's band, a capability's bar.
    Fill(&'static str),
    /// A thin vertical tick ending in a dot: a request, an answer, a notification.
    Tick(&'static str),
    /// A numbered badge over a dashed line: a checkpoint.
    Checkpoint,
    /// A short dashed line across a call's strip: a checkpoint in the whole trail's view.
    Mark,
    /// A red `✗` badge: a violation.
    Violation,
    /// A light vertical line: the axis's grid.
    Grid,
}

/// Draws the legend from `y`, two entries a row: what every mark and line of the picture
/// means. Returns the y below it.
pub(super) fn legend(svg: &mut String, y: f64, entries: &[(Sample, String)]) -> f64 {
    let _ = writeln!(
        svg,
        r#"<text class="legend-title" x="10" y="{:.1}" font-size="12" font-weight="bold">Legend</text>"#,
        y + 12.0
    );
    let top = y + 24.0;
    for (i, (sample, words)) in entries.iter().enumerate() {
        let x = 10.0 + (PAGE / 2.0) * (i % 2) as f64;
        let row = top + 18.0 * (i / 2) as f64;
        match sample {
            Sample::Fill(fill) => {
                let _ = write!(
                    svg,
                    r##"<rect x="{x}" y="{row:.1}" width="26" height="11" fill="{fill}" stroke="#999999" stroke-width="0.5"/>"##
                );
            }
            Sample::Tick(colour) => {
                let _ = write!(
                    svg,
                    r#"<line x1="{:.1}" y1="{row:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}"/><circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x + 13.0,
                    x + 13.0,
                    row + 8.0,
                    x + 13.0,
                    row + 8.0,
                );
            }
            Sample::Checkpoint => {
                let _ = write!(
                    svg,
                    r#"<line x1="{:.1}" y1="{row:.1}" x2="{:.1}" y2="{:.1}" stroke="{CHECKPOINT}" stroke-width="1.5" stroke-dasharray="4 3"/>{}"#,
                    x + 20.0,
                    x + 20.0,
                    row + 12.0,
                    badge(x + 8.0, row + 6.0, "1", false),
                );
            }
            Sample::Mark => {
                let _ = write!(
                    svg,
                    r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{CHECKPOINT}" stroke-width="1.5" stroke-dasharray="3 2"/>"#,
                    x + 13.0,
                    row - 2.0,
                    x + 13.0,
                    row + 13.0,
                );
            }
            Sample::Violation => {
                let _ = write!(svg, "{}", badge(x + 13.0, row + 6.0, "✗", true));
            }
            Sample::Grid => {
                let _ = write!(
                    svg,
                    r##"<line x1="{:.1}" y1="{row:.1}" x2="{:.1}" y2="{:.1}" stroke="#dddddd"/>"##,
                    x + 13.0,
                    x + 13.0,
                    row + 12.0,
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<text class="legend" x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            x + 34.0,
            row + 10.0,
            escape(words)
        );
    }
    top + 18.0 * entries.len().div_ceil(2) as f64
}

/// A badge of a fixed size, whatever the axis's scale, centred on (`x`, `y`): a checkpoint's
/// number, or a violation's `✗` in red.
pub(super) fn badge(x: f64, y: f64, label: &str, violation: bool) -> String {
    let (class, stroke) = if violation {
        ("violation-badge", ALARM)
    } else {
        ("checkpoint-badge", CHECKPOINT)
    };
    format!(
        r##"<g class="{class}"><circle cx="{x:.1}" cy="{y:.1}" r="8" fill="#ffffff" stroke="{stroke}" stroke-width="1.5"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10" font-weight="bold" fill="{stroke}">{}</text></g>"##,
        y + 3.5,
        escape(label)
    )
}

/// The page's opening: a fixed width, a white background, black sans-serif text.
fn open(svg: &mut String, height: f64, title: &str) {
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE}" height="{height:.0}" viewBox="0 0 {PAGE} {height:.0}" font-family="sans-serif" font-size="12" fill="{INK}"><title>{}</title><rect width="100%" height="100%" fill="#ffffff"/>"##,
        escape(title)
    );
}

/// The page: `body` under [`open`], `height` high.
pub(super) fn page(body: &str, height: f64, title: &str) -> String {
    let mut svg = String::new();
    open(&mut svg, height + 10.0, title);
    svg.push_str(body);
    svg.push_str("</svg>\n");
    svg
}

/// The legend's entries for the states, in both views: `NotRecording{kind}: …`, with `kind`
/// what the view draws them as (`" band"`, or nothing).
pub(super) fn state_entries(kind: &str) -> Vec<(Sample, String)> {
    [
        (CallState::NotRecording, "no recording requested"),
        (
            CallState::PendingRecording,
            "`recording` sent, not acknowledged yet",
        ),
        (CallState::Recording, "acknowledged; media may be retained"),
        (CallState::Failed, "recording failed, or `failed` reported"),
        (
            CallState::Ended,
            "Graph ended the call, or a crashed run's call recovered",
        ),
    ]
    .into_iter()
    .map(|(state, meaning)| {
        (
            Sample::Fill(colour(state)),
            format!("{state}{kind}: {meaning}"),
        )
    })
    .collect()
}

/// `parts` joined with `; ` and cut into lines of at most `max` characters: between parts
/// where it can, inside a part longer than a line.
pub(super) fn wrap(parts: &[String], max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for part in parts {
        let extra = if line.is_empty() { 0 } else { 2 };
        if !line.is_empty() && line.chars().count() + extra + part.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push_str("; ");
        }
        line.push_str(part);
        while line.chars().count() > max {
            let head: String = line.chars().take(max).collect();
            let tail: String = line.chars().skip(max).collect();
            lines.push(head);
            line = tail;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` cut into lines of at most `max` characters between words (inside a word longer than
/// a line).
pub(super) fn wrap_words(text: &str, max: usize) -> Vec<String> {
    let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
        while line.chars().count() > max {
            lines.push(line.chars().take(max).collect());
            line = line.chars().skip(max).collect();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes `text` (escaped here) from (`x`, `y`) as lines of at most `max` characters,
/// `leading` apart, each a `<text>` with `attributes`. Returns the y of the line after.
pub(super) fn paragraph(
    svg: &mut String,
    (x, y): (f64, f64),
    leading: f64,
    max: usize,
    attributes: &str,
    text: &str,
) -> f64 {
    let mut y = y;
    for line in wrap_words(text, max) {
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" {attributes}>{}</text>"#,
            escape(&line)
        );
        y += leading;
    }
    y
}
