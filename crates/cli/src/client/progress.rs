//! Progress bars on standard error, drawn only when it is a terminal: a script's logs get
//! the result lines and nothing else.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of bytes sent of `total`.
pub fn bytes(total: u64, label: &str) -> ProgressBar {
    bar(
        total,
        label,
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
}

/// A bar of assets processed of `total`.
pub fn assets(total: u64, label: &str) -> ProgressBar {
    bar(
        total,
        label,
        "{msg} [{bar:30}] {pos}/{len} assets {elapsed}",
    )
}

fn bar(total: u64, label: &str, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    bar
}
