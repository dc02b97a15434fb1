//! Webhook subscriptions, their deliveries and the dispatcher.

pub mod client;
pub mod dispatch;
pub mod service;

use client::{ClientOptions, WebhookClient};

use crate::config::WebhookConfig;

/// The client that sends deliveries as `config` says.
pub fn client_for(config: &WebhookConfig) -> WebhookClient {
    let options = ClientOptions {
        allow_private: config.allow_private,
        timeout: config.timeout,
        ..ClientOptions::default()
    };
    // Building fails only when the TLS backend cannot start, which no input causes.
    WebhookClient::new(options).expect("the webhook HTTP client starts")
}
