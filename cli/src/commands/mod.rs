//! One module per `mockforge` subcommand.

pub mod control_plane;
pub mod edge;
pub mod mock;
pub mod node_token;
pub mod serve;

use mockforge_control_plane::config::OAuthProvider;

use crate::settings::Settings;

/// Builds the control plane's configuration from validated settings.
pub(crate) fn control_plane_config(settings: &Settings) -> mockforge_control_plane::ControlPlaneConfig {
    let defaults = mockforge_control_plane::ControlPlaneConfig::new(settings.data_dir.clone());
    let oauth_providers = settings
        .oauth
        .iter()
        .map(|(name, (id, secret))| {
            let provider = match name.as_str() {
                "github" => OAuthProvider::github(id.clone(), secret.clone()),
                _ => OAuthProvider::google(id.clone(), secret.clone()),
            };
            (name.clone(), provider)
        })
        .collect();
    mockforge_control_plane::ControlPlaneConfig {
        data_dir: settings.data_dir.clone(),
        database_url: settings.database_url.clone(),
        redis_url: settings.redis_url.clone(),
        public_edge_url: settings.public_edge_url.clone(),
        admin_emails: settings.admin_emails.clone(),
        jwt_secret: settings.jwt_secret.clone(),
        allow_private_networks: settings.fetch.allow_private_networks,
        max_document_bytes: settings.fetch.max_document_bytes,
        fetch_timeout: settings.fetch.timeout,
        plans: settings.plans.clone(),
        public_api_url: settings.public_api_url.clone(),
        legal_dir: settings.legal_dir.clone().unwrap_or(defaults.legal_dir.clone()),
        master_key: settings.master_key.clone(),
        smtp_url: settings.mail.smtp_url.clone(),
        mail_from: settings.mail.from.clone().unwrap_or(defaults.mail_from.clone()),
        support_email: settings.mail.support_address.clone().unwrap_or(defaults.support_email.clone()),
        stripe_secret_key: settings.stripe.secret_key.clone(),
        stripe_webhook_secret: settings.stripe.webhook_secret.clone(),
        stripe_api_base: settings.stripe.api_base.clone().unwrap_or(defaults.stripe_api_base.clone()),
        stripe_price_ids: settings.stripe.price_ids.clone(),
        oauth_providers,
        gdpr_grace_period: settings.gdpr_grace_period.unwrap_or(defaults.gdpr_grace_period),
        s3_storage: settings.s3_storage.clone(),
        ..defaults
    }
}

/// Builds a multi-threaded tokio runtime for a long-running command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("mockforge").build()?;
    Ok(runtime)
}

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
