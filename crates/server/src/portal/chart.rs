//! Horizontal bar charts drawn as SVG on the server: no script, readable by screen
//! readers (a title and a text label per bar), and sharp at any width.

use std::fmt::Write;

use super::layout::count;

const ROW_HEIGHT: u32 = 28;
const LABEL_WIDTH: u32 = 170;
const BAR_WIDTH: u32 = 300;
const VALUE_WIDTH: u32 = 80;

/// One bar: its label, its value, and where it links to.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub href: String,
    /// A class of its own for the bar's colour (an enrollment status's, as its badge).
    pub class: Option<String>,
}

/// An SVG of one bar per entry, longest bar for the largest value.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
    let height = (bars.len().max(1) as u32) * ROW_HEIGHT;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    if bars.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="0" y="18" class="chart-empty">No meters yet</text>"#
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = i as u32 * ROW_HEIGHT;
        let length = ((bar.value as f64 / max as f64) * f64::from(BAR_WIDTH)).round() as u32;
        let _ = write!(
            svg,
            r#"<a href="{href}"><text x="{lx}" y="{ty}" text-anchor="end" class="chart-label">{label}</text><rect x="{bx}" y="{ry}" width="{w}" height="{h}" rx="3" class="chart-bar{class}"><title>{label}: {value}</title></rect><text x="{vx}" y="{ty}" class="chart-value">{value}</text></a>"#,
            href = escape(&bar.href),
            lx = LABEL_WIDTH - 8,
            ty = y + 19,
            label = escape(&bar.label),
            bx = LABEL_WIDTH,
            ry = y + 5,
            w = length.max(2),
            h = ROW_HEIGHT - 10,
            vx = LABEL_WIDTH + length.max(2) + 6,
            value = count(bar.value),
            class = bar
                .class
                .as_deref()
                .map(|c| format!(" {}", escape(c)))
                .unwrap_or_default(),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: u64) -> Bar {
        Bar {
            label: label.to_owned(),
            value,
            href: format!("/portal/meters?status={label}"),
            class: None,
        }
    }

    #[test]
    fn the_largest_value_gets_the_full_width_and_others_their_share() {
        let svg = bars("Meters", &[bar("A", 50), bar("B", 100)]);
        assert!(svg.contains(&format!(r#"width="{BAR_WIDTH}""#)));
        assert!(svg.contains(&format!(r#"width="{}""#, BAR_WIDTH / 2)));
        assert!(svg.contains("<title>B: 100</title>"));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = bars("<Meters>", &[bar("<b>&", 1)]);
        assert!(svg.contains("&lt;b&gt;&amp;"));
        assert!(!svg.contains("<b>&"));
        assert!(svg.contains("aria-label=\"&lt;Meters&gt;\""));
    }

    #[test]
    fn an_empty_chart_says_so() {
        assert!(bars("Meters", &[]).contains("No meters yet"));
    }
}
