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
        // Ctrl-C at the prompt reaches the reader as a character, and it raises SIGINT
        // before it has given the terminal back its echo: with SIGINT's default action
        // the process would end there and leave the terminal without echo. While a
        // listener holds the signal, the reader returns, gives the terminal back, and the
        // command ends as interrupted.
        let _held = hold_interrupts();
        return match rpassword::prompt_password(prompt) {
            Ok(typed) => Ok(typed),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                Err(crate::Interrupted::Other.into())
            }
            Err(e) => Err(e).context("reading from the terminal"),
        };
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

/// A listener for SIGINT, when the command runs on a runtime that can hold one.
#[cfg(unix)]
fn hold_interrupts() -> Option<tokio::signal::unix::Signal> {
    tokio::runtime::Handle::try_current().ok()?;
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
}

#[cfg(not(unix))]
fn hold_interrupts() -> Option<()> {
    None
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
