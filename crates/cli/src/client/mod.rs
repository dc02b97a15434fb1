//! The partner's client: the commands that speak Gridroll's HTTP API with an API key,
//! from anywhere, rather than open the database. The server and key come from
//! `--url`/`GRIDROLL_URL` and `--key`/`GRIDROLL_KEY`, or from a profile saved by
//! `gridroll login`. A profile's key is sent only to the server it was saved for.

pub mod api;
pub mod jobs;
pub mod meters;
pub mod profile;
pub mod progress;
pub mod upload;

use std::time::Duration;

use anyhow::bail;
use clap::Args;

pub use api::Client;

/// Where the server is and which key to send.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The Gridroll server, e.g. http://127.0.0.1:8080 (default: the profile's).
    #[arg(long, env = "GRIDROLL_URL")]
    pub url: Option<String>,
    /// The partner's API key (default: the profile's). Prefer GRIDROLL_KEY or
    /// `gridroll login`: other users of the machine can see a command's arguments.
    #[arg(long, env = "GRIDROLL_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The profile saved by `gridroll login` to use when --url or --key is not given (its
    /// key is sent only to its own server).
    #[arg(
        long,
        env = "GRIDROLL_PROFILE",
        default_value = profile::DEFAULT,
    )]
    pub profile: String,
    /// The longest wait for the server, in seconds: for the answer to a request, and for
    /// an upload or a download to move (a large file may take longer in all).
    #[arg(long, env = "GRIDROLL_TIMEOUT", value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
}

impl Remote {
    /// A client of the server, with the URL and key given or saved. The saved key goes
    /// only to the saved server: with another URL, the key must be given too.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let timeout = Duration::from_secs(self.timeout);
        match (&self.url, &self.key) {
            (Some(url), Some(key)) => Client::new(url, key, timeout),
            (None, key) => {
                let saved = profile::load(&self.profile)?;
                Client::new(&saved.url, key.as_ref().unwrap_or(&saved.key), timeout)
            }
            (Some(url), None) => {
                let Some(saved) = profile::find(&self.profile)? else {
                    bail!(
                        "no API key given for {url}: pass --key or GRIDROLL_KEY, or save one \
                         with `gridroll login --url {url}`"
                    );
                };
                let client = Client::new(url, &saved.key, timeout)?;
                if api::parse_url(&saved.url)? != *client.base() {
                    bail!(
                        "the profile {:?} holds a key for {}, not for {}: give that server's key \
                         with --key or GRIDROLL_KEY, or save it with `gridroll login --url {} \
                         --profile NAME`",
                        self.profile,
                        saved.url,
                        client.base().as_str().trim_end_matches('/'),
                        client.base().as_str().trim_end_matches('/'),
                    );
                }
                Ok(client)
            }
        }
    }
}

/// How a client command ended, for its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Done; the job COMPLETED.
    Success,
    /// The job ended COMPLETED_WITH_ERRORS.
    CompletedWithErrors,
    /// The job FAILED, or the file was refused.
    Failed,
}

impl Outcome {
    /// The documented exit status: 0, 3 or 4.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::CompletedWithErrors => 3,
            Self::Failed => 4,
        }
    }

    /// The outcome of a job's final status.
    pub fn of_status(status: &str) -> Self {
        match status {
            "COMPLETED" => Self::Success,
            "COMPLETED_WITH_ERRORS" => Self::CompletedWithErrors,
            _ => Self::Failed,
        }
    }
}
