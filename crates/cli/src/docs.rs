//! Shell completions and the manual page, generated from the command's own definitions so
//! that they never disagree with `--help`.

use std::io::Write;

use clap_complete::Shell;

/// Writes `shell`'s completion script for gridroll to standard output.
pub fn completions(mut command: clap::Command, shell: Shell) -> anyhow::Result<()> {
    // Made in memory first: the generator cannot report a reader that went away.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "gridroll", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(())
}

/// Writes the manual page (roff) to standard output: the command, then a section per
/// subcommand, each with its options and example.
pub fn man(command: clap::Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let command = command.version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands() {
        render_section(&mut out, sub, "gridroll")?;
    }
    Ok(())
}

fn render_section(
    out: &mut dyn std::io::Write,
    command: &clap::Command,
    parent: &str,
) -> anyhow::Result<()> {
    let name = format!("{parent} {}", command.get_name());
    if command.has_subcommands() {
        for sub in command.get_subcommands() {
            render_section(out, sub, &name)?;
        }
    }
    writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
    let man = clap_mangen::Man::new(command.clone());
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    if command.get_after_help().is_some() {
        man.render_extra_section(out)?;
    }
    Ok(())
}
