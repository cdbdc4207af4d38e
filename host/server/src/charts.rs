//! Server-drawn charts: numbers per day as a small, self-contained SVG picture (stacked bars
//! with a legend, a value axis and day labels), for the overview's trends and the printable
//! report. No script, no style sheet, no external reference: the picture is presentation
//! attributes only, so it shows the same as an `<img>` (a `data:` URL under the dashboard's
//! CSP), inline in the report, or opened on its own.
//!
//! Text in a picture can come from outside: an integration id is operator data, and callers
//! may put anything into a title or a label. Every text is written through [`xml_escape`](crate::escape::xml_escape),
//! attribute values included, so no input can open an element or an attribute. Numbers are
//! formatted by us. A picture is accessible on its own (`role="img"`, a `<title>` and a
//! `<desc>` that says what it shows in words); callers also give the numbers as a table.
//!
//! It deliberately does not scale to many bars: a day is one bar and a chart shows at most
//! [`MAX_BARS`] of them (a trend's longest period).

use std::fmt::Write as _;

use crate::escape::xml_escape;

/// The most bars a chart draws (90 days); callers bound their periods to it.
pub const MAX_BARS: usize = 90;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 28.0;

/// The two palettes: a picture is drawn for the theme it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    /// Dark text on white.
    Light,
    /// Light text on the dashboard's dark surface.
    Dark,
}

impl Theme {
    fn background(self) -> &'static str {
        match self {
            Theme::Light => "#ffffff",
            Theme::Dark => "#1a1e24",
        }
    }
    fn text(self) -> &'static str {
        match self {
            Theme::Light => "#1b1f24",
            Theme::Dark => "#e7eaee",
        }
    }
    fn grid(self) -> &'static str {
        match self {
            Theme::Light => "#d0d5dc",
            Theme::Dark => "#38404a",
        }
    }
}

/// One stacked part of every bar, with its colour in each theme (at least 3:1 against the
/// background, as the dashboard's risk colours are).
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's word for it.
    pub label: &'static str,
    /// One value per bar.
    pub values: Vec<f64>,
    /// Its colour on the light background.
    pub light: &'static str,
    /// Its colour on the dark background.
    pub dark: &'static str,
}

/// A stacked bar chart: one bar per label, each bar the sum of the series.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// A prefix for the picture's element ids (unique within the page that shows it inline).
    pub id: String,
    /// What it shows, in one line (the picture's `<title>`, also drawn at its top).
    pub title: String,
    /// What it shows in words, numbers included (the picture's `<desc>`).
    pub desc: String,
    /// One label per bar (a day, `MM-DD`); only a few are drawn.
    pub labels: Vec<String>,
    /// The stacked parts, bottom first.
    pub series: Vec<Series>,
    /// The unit of the value axis (`files`, `files/s`, `s`).
    pub unit: &'static str,
}

/// A round axis maximum at or above `max` (1, 2 or 5 times a power of ten).
fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

/// A value for an axis label, with as many decimals as the grid's `step` needs to tell one
/// line from the next (none for steps of 1 or more; 2 for a step of 0.025).
fn axis_number(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 || !(step.is_finite() && step > 0.0) {
        0
    } else {
        ((-step.log10()).ceil() as usize).min(6)
    };
    format!("{v:.decimals$}")
}

impl BarChart {
    /// The picture, as SVG text.
    pub fn svg(&self, theme: Theme) -> String {
        let n = self.labels.len().clamp(1, MAX_BARS);
        let totals: Vec<f64> = (0..n)
            .map(|i| {
                self.series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0.0).max(0.0))
                    .sum()
            })
            .collect();
        let top = nice_ceiling(totals.iter().copied().fold(0.0, f64::max));
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let slot = plot_w / n as f64;
        let bar = (slot * 0.7).max(1.0);
        let id = xml_escape(&self.id);
        let mut s = String::with_capacity(4096 + n * 160);
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" font-family=\"system-ui, sans-serif\" font-size=\"12\" fill=\"{text}\">\
             <title id=\"{id}-title\">{title}</title><desc id=\"{id}-desc\">{desc}</desc>\
             <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"{bg}\"/>\
             <text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"600\">{title}</text>",
            text = theme.text(),
            bg = theme.background(),
            title = xml_escape(&self.title),
            desc = xml_escape(&self.desc),
        );
        // The legend, right of the title's line when there is more than one series.
        if self.series.len() > 1 {
            let mut x = LEFT;
            for series in &self.series {
                let colour = match theme {
                    Theme::Light => series.light,
                    Theme::Dark => series.dark,
                };
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"24\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{tx:.1}\" y=\"33\">{label}</text>",
                    tx = x + 14.0,
                    label = xml_escape(series.label),
                );
                x += 26.0 + 7.5 * series.label.len() as f64;
            }
        }
        // The value axis: four grid lines with their values.
        for step in 0..=4 {
            let v = top * f64::from(step) / 4.0;
            let y = TOP + plot_h - plot_h * f64::from(step) / 4.0;
            let _ = write!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{grid}\" stroke-width=\"1\"/><text x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{v}</text>",
                x2 = WIDTH - RIGHT,
                grid = theme.grid(),
                tx = LEFT - 6.0,
                ty = y + 4.0,
                v = axis_number(v, top / 4.0),
            );
        }
        let _ = write!(
            s,
            "<text x=\"8\" y=\"{y:.1}\" font-size=\"11\" transform=\"rotate(-90 8 {y:.1})\" text-anchor=\"middle\">{unit}</text>",
            y = TOP + plot_h / 2.0,
            unit = xml_escape(self.unit),
        );
        // The bars, each part stacked on the ones below it.
        for i in 0..n {
            let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
            let mut base = TOP + plot_h;
            for series in &self.series {
                let v = series.values.get(i).copied().unwrap_or(0.0).max(0.0);
                if v <= 0.0 {
                    continue;
                }
                let h = plot_h * v / top;
                base -= h;
                let colour = match theme {
                    Theme::Light => series.light,
                    Theme::Dark => series.dark,
                };
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>"
                );
            }
        }
        // A few day labels, evenly spread.
        let every = n.div_ceil(6).max(1);
        for (i, label) in self.labels.iter().take(n).enumerate() {
            // The last day too, unless it would crowd the label before it.
            let last = i + 1 == n && i % every > every / 2;
            if i % every != 0 && !last {
                continue;
            }
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\" font-size=\"11\">{label}</text>",
                x = LEFT + slot * i as f64 + slot / 2.0,
                y = HEIGHT - 10.0,
                label = xml_escape(label),
            );
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(title: &str, labels: Vec<String>) -> BarChart {
        BarChart {
            id: "c".into(),
            title: title.into(),
            desc: format!("desc of {title}"),
            series: vec![
                Series {
                    label: "high",
                    values: vec![1.0, 2.0],
                    light: "#b0212b",
                    dark: "#ff8b92",
                },
                Series {
                    label: "low",
                    values: vec![3.0],
                    light: "#2f5f8a",
                    dark: "#8cc2ff",
                },
            ],
            labels,
            unit: "files",
        }
    }

    /// A title is text wherever it lands (content and attribute positions): an integration
    /// id or a caller's label can never open an element, an attribute or an entity.
    #[test]
    fn hostile_text_in_a_chart_stays_text() {
        let hostile = "x\"/><script>alert(1)</script><a href='javascript:1'>&amp;\u{1}";
        let c = chart(hostile, vec![hostile.to_string(), "12-02".into()]);
        let svg = c.svg(Theme::Light);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<a "), "{svg}");
        assert!(!svg.contains('\u{1}'), "a control character is dropped");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("x&quot;/&gt;"));
        assert!(svg.contains("&amp;amp;"));
        // Well formed: every element opened is closed or self-closing, one root.
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    /// The picture says what it is without sight of it: a title and a description, linked
    /// from the root, and the root is announced as an image.
    #[test]
    fn a_chart_is_named_and_described() {
        let svg = chart("Files by risk", vec!["12-01".into(), "12-02".into()]).svg(Theme::Dark);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"c-title c-desc\""));
        assert!(svg.contains("<title id=\"c-title\">Files by risk</title>"));
        assert!(svg.contains("<desc id=\"c-desc\">desc of Files by risk</desc>"));
        assert!(svg.contains("#1a1e24"), "the dark palette");
    }

    /// Bars stack: the first day has two parts, the second one, and the axis tops out at a
    /// round number at or above the tallest bar (4 → 5).
    #[test]
    fn bars_stack_under_a_round_axis() {
        let svg = chart("t", vec!["12-01".into(), "12-02".into()]).svg(Theme::Light);
        assert_eq!(
            svg.matches("fill=\"#b0212b\"").count(),
            3,
            "two bars and the legend"
        );
        assert_eq!(
            svg.matches("fill=\"#2f5f8a\"").count(),
            2,
            "one bar and the legend"
        );
        assert!(svg.contains(">5</text>"), "{svg}");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(axis_number(0.05, 0.025), "0.05");
        assert_eq!(axis_number(0.5, 0.125), "0.5");
        assert_eq!(axis_number(50.0, 25.0), "50");
    }
}
