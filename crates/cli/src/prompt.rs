//! Secrets typed by a person or piped by a script: read without echo from the terminal
//! when standard input is one, else one line of standard input.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};

/// Whether a person is typing (standard input is a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// A secret: from the terminal without echo after `prompt`, or the first line of
/// standard input (its line ending removed).
pub fn secret(prompt: &str) -> anyhow::Result<String> {
    if interactive() {
        let typed = rpassword::prompt_password(prompt).context("reading from the terminal")?;
        return Ok(typed);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("standard input is empty: pipe the secret in, or run the command in a terminal");
    }
    Ok(line)
}

/// A new password: typed twice at a terminal (the two must match), or one line of
/// standard input.
pub fn new_password(whose: &str) -> anyhow::Result<String> {
    let password = secret(&format!("New password for {whose}: "))?;
    if interactive() {
        let again = secret("The same password again: ")?;
        if again != password {
            bail!("the two passwords differ; nothing was changed");
        }
    }
    Ok(password)
}
