//! `gridroll serve`: the HTTP API, the portal and the workers, with a demo partner when
//! asked for.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use gridroll_domain::scope::Scopes;
use gridroll_domain::timestamp::now_millis;
use gridroll_domain::webhook::RetrySchedule;
use gridroll_server::auth::issue_api_key;
use gridroll_server::body::BodyPace;
use gridroll_server::config::WebhookConfig;
use gridroll_server::rate_limit::RateLimit;
use gridroll_server::slots::UploadSlots;
use gridroll_server::{AppState, Config, portal};
use gridroll_store::{AddUserError, PasswordSet, Role};

use crate::catalog::read_catalog;
use crate::database::{Database, redact};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GRIDROLL_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    database: Database,
    /// Create a demo partner if there is none, and print a fresh API key for it.
    #[arg(long)]
    demo: bool,
    /// Job workers in this process.
    #[arg(long, env = "GRIDROLL_WORKERS", default_value_t = 2)]
    workers: usize,
    /// Assets processed per transaction.
    #[arg(long, env = "GRIDROLL_CHUNK_SIZE", default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..))]
    chunk_size: u32,
    /// Largest bulk upload body, in bytes.
    #[arg(long, env = "GRIDROLL_MAX_BODY_BYTES", default_value_t = 256 * 1024 * 1024)]
    max_body_bytes: u64,
    /// How long a worker's claim on a job lasts without renewal, in seconds. Another
    /// process takes over a job whose worker died once this has passed.
    #[arg(long, env = "GRIDROLL_LEASE_SECONDS", default_value_t = 30.0)]
    lease_seconds: f64,
    /// Bulk uploads received at once; further ones are answered 429.
    #[arg(long, env = "GRIDROLL_MAX_CONCURRENT_UPLOADS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_uploads: u32,
    /// Bulk uploads one partner may send at once (default: half of
    /// --max-concurrent-uploads), so that one partner cannot hold every place.
    #[arg(long, env = "GRIDROLL_MAX_UPLOADS_PER_PARTNER", value_parser = clap::value_parser!(u32).range(1..))]
    max_uploads_per_partner: Option<u32>,
    /// Requests each API key may make per minute to this process; past them it is
    /// answered 429 until the minute ends.
    #[arg(long, env = "GRIDROLL_RATE_LIMIT", default_value_t = 6000, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// Seconds a request body may go without sending a byte before the request is
    /// refused (408).
    #[arg(long, env = "GRIDROLL_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Fewest bytes per second a request body must arrive at, measured over each 30 s the
    /// server waits for it (408 below).
    #[arg(long, env = "GRIDROLL_MIN_BODY_RATE", default_value_t = 1024)]
    min_body_rate: u64,
    /// Marks portal cookies Secure and makes invitation links https://: set it when the
    /// portal is reached over HTTPS (directly or through a proxy).
    #[arg(long, env = "GRIDROLL_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Requests arrive through a reverse proxy that appends the client's address to
    /// X-Forwarded-For: the portal's sign-in throttle counts by that address.
    #[arg(long, env = "GRIDROLL_BEHIND_PROXY")]
    behind_proxy: bool,
    /// Token that opens the operator API (/operator/v1); without it the API is closed.
    #[arg(long, env = "GRIDROLL_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: Option<String>,
    /// A catalog file whose programs are added at start when missing (default: the
    /// catalog shipped with Gridroll).
    #[arg(long, env = "GRIDROLL_PROGRAMS")]
    programs: Option<PathBuf>,
    #[command(flatten)]
    webhooks: WebhookArgs,
}

/// How webhooks are delivered and events kept.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Allow webhook receivers on private, loopback and other reserved addresses, and
    /// plain http: for local development and tests, never in production.
    #[arg(long, env = "GRIDROLL_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// The delays before each attempt of a delivery (s, m or h), the first usually 0s.
    #[arg(
        long,
        env = "GRIDROLL_WEBHOOK_RETRY_SCHEDULE",
        default_value = "0s,1m,2m,4m,8m,16m,29m,1h,2h,4h"
    )]
    webhook_retry_schedule: RetrySchedule,
    /// Seconds one delivery attempt may take, the receiver's answer included.
    #[arg(long, env = "GRIDROLL_WEBHOOK_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    webhook_timeout: u64,
    /// Hours after which a subscription whose deliveries have all failed is disabled.
    #[arg(long, env = "GRIDROLL_WEBHOOK_DISABLE_AFTER", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    webhook_disable_after: u64,
    /// Hours a rotated-out signing secret keeps signing beside the new one.
    #[arg(long, env = "GRIDROLL_WEBHOOK_SECRET_OVERLAP", default_value_t = 24)]
    webhook_secret_overlap: u64,
    /// The share of its time, in percent, the webhook dispatcher sends while this
    /// process writes a job's chunks; it rests the remainder, so that a large import
    /// keeps the machine and its webhooks follow it (100: never rest).
    #[arg(long, env = "GRIDROLL_WEBHOOK_IMPORT_SHARE", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    webhook_import_share: u8,
    /// Days events and delivery attempts are kept.
    #[arg(long, env = "GRIDROLL_EVENT_RETENTION", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    event_retention: u64,
}

impl WebhookArgs {
    fn config(&self) -> WebhookConfig {
        const HOUR: u64 = 3600;
        WebhookConfig {
            allow_private: self.webhook_allow_private,
            retry: self.webhook_retry_schedule.clone(),
            timeout: Duration::from_secs(self.webhook_timeout),
            disable_after: Duration::from_secs(self.webhook_disable_after * HOUR),
            secret_overlap: Duration::from_secs(self.webhook_secret_overlap * HOUR),
            event_retention: Duration::from_secs(self.event_retention * 24 * HOUR),
            import_share: self.webhook_import_share,
            ..WebhookConfig::default()
        }
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = args.database.open_alone().await?;
    if args.demo {
        let partner = match store.accounts.find_partner_by_name(DEMO_PARTNER).await? {
            Some(partner) => partner,
            None => {
                store
                    .accounts
                    .create_partner(DEMO_PARTNER, now_millis())
                    .await?
            }
        };
        let (_, key) = issue_api_key(
            store.accounts.as_ref(),
            partner.id,
            "demo",
            Scopes::ALL,
            now_millis(),
        )
        .await?;
        println!(
            "Demo partner {} is ready. Its API key:\n\n    export GRIDROLL_KEY={key}\n",
            partner.id
        );
        // A fresh password at every start: only its hash is kept, so it cannot be shown
        // again later.
        let password = gridroll_server::auth::random_token();
        let hash = portal::password::hash(password.clone()).await?;
        if store
            .accounts
            .set_password(DEMO_USER, Some(partner.id), &hash)
            .await?
            == PasswordSet::NoSuchUser
        {
            match store
                .accounts
                .add_user(partner.id, DEMO_USER, Role::Admin, &hash, now_millis())
                .await
            {
                Ok(_) | Err(AddUserError::EmailTaken) => {}
                Err(AddUserError::Store(e)) => return Err(e.into()),
            }
        }
        println!(
            "The portal is at http://{}/portal; sign in as {DEMO_USER} with the password\n\n    {password}\n",
            args.addr
        );
    }
    if !(args.lease_seconds.is_finite() && args.lease_seconds >= 0.1) {
        bail!("--lease-seconds must be at least 0.1");
    }
    let mut config = Config {
        max_body_bytes: args.max_body_bytes,
        workers: args.workers,
        chunk_size: args.chunk_size as usize,
        lease: Duration::from_secs_f64(args.lease_seconds),
        max_concurrent_uploads: args.max_concurrent_uploads as usize,
        max_uploads_per_partner: args.max_uploads_per_partner.map_or_else(
            || UploadSlots::default_share(args.max_concurrent_uploads as usize),
            |n| n as usize,
        ),
        body_pace: BodyPace {
            idle_timeout: Duration::from_secs(args.body_timeout),
            min_rate: args.min_body_rate,
        },
        secure_cookies: args.secure_cookies,
        behind_proxy: args.behind_proxy,
        webhooks: args.webhooks.config(),
        rate_limit: RateLimit {
            requests: NonZeroU32::new(args.rate_limit)
                .context("--rate-limit must be at least 1")?,
            window: Duration::from_secs(60),
        },
        ..Config::default()
    };
    if let Some(file) = &args.programs {
        config.programs = read_catalog(file)?;
    }
    if let Some(token) = args.operator_token.as_deref().filter(|t| !t.is_empty()) {
        if token.len() < 16 {
            bail!("--operator-token must be at least 16 characters");
        }
        config = config.with_operator_token(token);
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(addr = %listener.local_addr()?, database = %redact(&args.database.database_url), "gridroll is serving");
    gridroll_server::serve(listener, AppState::new(store, config), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

const DEMO_PARTNER: &str = "Demo Partner";
const DEMO_USER: &str = "demo@example.com";

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the work in hand");
}
