//! Settings shared by the `mockforge` commands, layered from a TOML file, environment variables
//! and flags. A flag beats its environment variable, and the environment beats the file.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mockforge_edge::TlsConfig;
use mockforge_snapshot::{PlanLimits, PlanTable};

mod s3;

/// Settings as given on the command line or in the environment, before validation.
#[derive(Args, Debug, Clone, Default)]
pub struct SettingArgs {
    /// TOML configuration file; flags and environment variables override its keys.
    #[arg(long, env = "MOCKFORGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the SQLite database, artifacts and generated secrets [default: ./mockforge-data].
    #[arg(long, env = "MOCKFORGE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,

    /// Address of the control-plane API [default: 127.0.0.1:8080].
    #[arg(long, env = "MOCKFORGE_API_LISTEN", value_name = "ADDR")]
    pub api_listen: Option<String>,

    /// Address of the edge that serves hosted mocks [default: 127.0.0.1:8081].
    #[arg(long, env = "MOCKFORGE_EDGE_LISTEN", value_name = "ADDR")]
    pub edge_listen: Option<String>,

    /// Address of the edge's admin listener, which serves Prometheus metrics at /metrics, or
    /// `off` [default: 127.0.0.1:9091].
    #[arg(long, env = "MOCKFORGE_EDGE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Maximum number of open client connections on the edge. More get 503 and are closed
    /// [default: 10000].
    #[arg(long, env = "MOCKFORGE_EDGE_MAX_CONNECTIONS", value_name = "COUNT")]
    pub edge_max_connections: Option<String>,

    /// Number of worker threads that serve requests on the edge [default: the number of CPU
    /// cores].
    #[arg(long, env = "MOCKFORGE_EDGE_THREADS", value_name = "COUNT")]
    pub edge_threads: Option<String>,

    /// Maximum number of requests the edge serves at once. More get 503 [default: 10000].
    #[arg(long, env = "MOCKFORGE_EDGE_MAX_CONCURRENT_REQUESTS", value_name = "COUNT")]
    pub edge_max_concurrent_requests: Option<String>,

    /// Maximum request body size in bytes on the edge. A plan's max_request_body_bytes can only
    /// lower it. Larger bodies get 413 [default: 10485760].
    #[arg(long, env = "MOCKFORGE_EDGE_MAX_REQUEST_BODY_BYTES", value_name = "BYTES")]
    pub edge_max_request_body_bytes: Option<String>,

    /// Maximum size in bytes of a request line and headers on the edge. Larger heads get 431
    /// [default: 65536].
    #[arg(long, env = "MOCKFORGE_EDGE_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub edge_max_header_bytes: Option<String>,

    /// Time in milliseconds a client has to send a request head from its first byte, and then
    /// the request body. Slower requests get 408 [default: 30000].
    #[arg(long, env = "MOCKFORGE_EDGE_REQUEST_TIMEOUT_MS", value_name = "MS")]
    pub edge_request_timeout_ms: Option<String>,

    /// Address of the edge's TLS listener, for example 0.0.0.0:8443; needs --tls-cert and
    /// --tls-key [default: no TLS listener].
    #[arg(long, env = "MOCKFORGE_EDGE_TLS_LISTEN", value_name = "ADDR")]
    pub tls_listen: Option<String>,

    /// PEM certificate chain for `*.{base domain}`, served to every organization subdomain
    /// without a custom certificate.
    #[arg(long, env = "MOCKFORGE_EDGE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<String>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "MOCKFORGE_EDGE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<String>,

    /// Directory of custom certificates chosen by SNI: NAME.crt with NAME.key serves the server
    /// name NAME, and a NAME without a dot serves NAME.{base domain}.
    #[arg(long, env = "MOCKFORGE_EDGE_TLS_CERT_DIR", value_name = "DIR")]
    pub tls_cert_dir: Option<String>,

    /// Interval in seconds between two checks of the certificate files for changes [default: 5].
    #[arg(long, env = "MOCKFORGE_EDGE_TLS_RELOAD_INTERVAL_SECONDS", value_name = "SECONDS")]
    pub tls_reload_interval_seconds: Option<String>,

    /// Database URL: `sqlite:PATH` or `postgres://...` [default: a SQLite file in the data directory].
    #[arg(long, env = "MOCKFORGE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Redis URL (`redis://HOST:PORT`); without it, state that Redis would share stays in memory.
    #[arg(long, env = "MOCKFORGE_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// Public URL of hosted mocks, with `{org}` standing for the organization slug
    /// [default: http://{org}.localhost:{edge port}].
    #[arg(long, env = "MOCKFORGE_PUBLIC_EDGE_URL", value_name = "URL")]
    pub public_edge_url: Option<String>,

    /// Comma-separated e-mail addresses whose accounts are platform admins.
    #[arg(long, env = "MOCKFORGE_ADMIN_EMAILS", value_name = "LIST")]
    pub admin_emails: Option<String>,

    /// Allow fetching OpenAPI documents from private, loopback and link-local addresses
    /// [default: true for `serve`, false for `control-plane`].
    #[arg(long, env = "MOCKFORGE_FETCH_ALLOW_PRIVATE_NETWORKS", value_name = "BOOL")]
    pub fetch_allow_private_networks: Option<String>,

    /// Maximum size in bytes of a fetched or uploaded OpenAPI document [default: 33554432].
    #[arg(long, env = "MOCKFORGE_FETCH_MAX_DOCUMENT_BYTES", value_name = "BYTES")]
    pub fetch_max_document_bytes: Option<String>,

    /// Timeout in seconds for fetching an OpenAPI document [default: 10].
    #[arg(long, env = "MOCKFORGE_FETCH_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub fetch_timeout_seconds: Option<String>,

    /// Public base URL of the control-plane API, for e-mailed links and OAuth redirects
    /// [default: http://{api listen address}].
    #[arg(long, env = "MOCKFORGE_PUBLIC_API_URL", value_name = "URL")]
    pub public_api_url: Option<String>,

    /// Directory of the legal Markdown documents (terms.md, privacy.md, dpa.md, faq.md)
    /// [default: the repository's config/legal].
    #[arg(long, env = "MOCKFORGE_LEGAL_DIR", value_name = "DIR")]
    pub legal_dir: Option<String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub api_listen: SocketAddr,
    pub edge_listen: SocketAddr,
    /// Address of the edge's metrics listener; `None` when turned off.
    pub admin_listen: Option<SocketAddr>,
    /// The edge's TLS listener; `None` when `tls.listen` is not set.
    pub edge_tls: Option<TlsConfig>,
    /// Maximum number of open client connections on the edge.
    pub edge_max_connections: usize,
    /// Number of the edge's worker threads.
    pub edge_threads: usize,
    pub edge_max_concurrent_requests: usize,
    pub edge_max_request_body_bytes: usize,
    pub edge_max_header_bytes: usize,
    /// Time a client has to send a request head, and then its body, to the edge.
    pub edge_request_timeout: Duration,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// URL template of hosted mocks, containing `{org}` as the first label of its host.
    pub public_edge_url: String,
    /// The host part after `{org}.` in `public_edge_url`, without a port: the edge's base domain.
    pub base_domain: String,
    pub admin_emails: Vec<String>,
    /// Secret for signing JWTs; when absent the control plane generates one into the data directory.
    pub jwt_secret: Option<String>,
    pub fetch: FetchSettings,
    /// Limits of each plan: the defaults, with each `[plans.NAME]` table of the file replacing
    /// the plan of that name.
    pub plans: PlanTable,
    /// Public base URL of the control-plane API, used in e-mailed links and OAuth redirects.
    pub public_api_url: String,
    /// Directory of the legal Markdown documents; `None` keeps the control plane's default.
    pub legal_dir: Option<PathBuf>,
    /// Key that encrypts stored provider keys; generated into the data directory when absent.
    pub master_key: Option<String>,
    pub mail: MailSettings,
    pub stripe: StripeSettings,
    /// OAuth client id and secret by provider name (`github`, `google`).
    pub oauth: BTreeMap<String, (String, String)>,
    /// Time between a GDPR deletion request and the deletion; `None` keeps the default (24 h).
    pub gdpr_grace_period: Option<Duration>,
    /// S3-compatible bucket for marketplace files; `None` keeps them in the data directory.
    pub s3_storage: Option<mockforge_control_plane::s3_storage::S3StorageConfig>,
}

/// Outgoing e-mail. Without an SMTP URL, messages go to `{data dir}/outbox/`.
#[derive(Debug, Clone, Default)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: Option<String>,
    pub support_address: Option<String>,
}

/// Stripe billing. Without a secret key, checkout returns a "billing is not configured" error.
#[derive(Debug, Clone, Default)]
pub struct StripeSettings {
    pub secret_key: Option<String>,
    pub webhook_secret: Option<String>,
    pub api_base: Option<String>,
    /// Stripe price id by plan name.
    pub price_ids: BTreeMap<String, String>,
}

/// Limits for fetching customers' OpenAPI documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    pub allow_private_networks: bool,
    pub max_document_bytes: u64,
    pub timeout: Duration,
}

/// Which command the settings are for; it decides defaults that differ between local and
/// production use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `mockforge serve`: everything in one process on a developer's machine.
    AllInOne,
    /// `mockforge control-plane`: the API alone, as operators run it.
    ControlPlane,
}

/// Every invalid setting found, reported together.
#[derive(Debug)]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// Keys the configuration file may contain, with the flag and variable that override each.
const KEYS: &[(&str, &str, &str)] = &[
    ("data_dir", "--data-dir", "MOCKFORGE_DATA_DIR"),
    ("api_listen", "--api-listen", "MOCKFORGE_API_LISTEN"),
    ("edge_listen", "--edge-listen", "MOCKFORGE_EDGE_LISTEN"),
    ("admin_listen", "--admin-listen", "MOCKFORGE_EDGE_ADMIN_LISTEN"),
    ("edge_max_connections", "--edge-max-connections", "MOCKFORGE_EDGE_MAX_CONNECTIONS"),
    ("edge_threads", "--edge-threads", "MOCKFORGE_EDGE_THREADS"),
    ("edge_max_concurrent_requests", "--edge-max-concurrent-requests", "MOCKFORGE_EDGE_MAX_CONCURRENT_REQUESTS"),
    ("edge_max_request_body_bytes", "--edge-max-request-body-bytes", "MOCKFORGE_EDGE_MAX_REQUEST_BODY_BYTES"),
    ("edge_max_header_bytes", "--edge-max-header-bytes", "MOCKFORGE_EDGE_MAX_HEADER_BYTES"),
    ("edge_request_timeout_ms", "--edge-request-timeout-ms", "MOCKFORGE_EDGE_REQUEST_TIMEOUT_MS"),
    ("tls.listen", "--tls-listen", "MOCKFORGE_EDGE_TLS_LISTEN"),
    ("tls.cert", "--tls-cert", "MOCKFORGE_EDGE_TLS_CERT"),
    ("tls.key", "--tls-key", "MOCKFORGE_EDGE_TLS_KEY"),
    ("tls.cert_dir", "--tls-cert-dir", "MOCKFORGE_EDGE_TLS_CERT_DIR"),
    ("tls.reload_interval_seconds", "--tls-reload-interval-seconds", "MOCKFORGE_EDGE_TLS_RELOAD_INTERVAL_SECONDS"),
    ("database_url", "--database-url", "MOCKFORGE_DATABASE_URL"),
    ("redis_url", "--redis-url", "MOCKFORGE_REDIS_URL"),
    ("public_edge_url", "--public-edge-url", "MOCKFORGE_PUBLIC_EDGE_URL"),
    ("admin_emails", "--admin-emails", "MOCKFORGE_ADMIN_EMAILS"),
    ("jwt_secret", "", "MOCKFORGE_JWT_SECRET"),
    ("fetch.allow_private_networks", "--fetch-allow-private-networks", "MOCKFORGE_FETCH_ALLOW_PRIVATE_NETWORKS"),
    ("fetch.max_document_bytes", "--fetch-max-document-bytes", "MOCKFORGE_FETCH_MAX_DOCUMENT_BYTES"),
    ("fetch.timeout_seconds", "--fetch-timeout-seconds", "MOCKFORGE_FETCH_TIMEOUT_SECONDS"),
    ("public_api_url", "--public-api-url", "MOCKFORGE_PUBLIC_API_URL"),
    ("legal_dir", "--legal-dir", "MOCKFORGE_LEGAL_DIR"),
    ("master_key", "", "MOCKFORGE_MASTER_KEY"),
    ("mail.smtp_url", "", "MOCKFORGE_SMTP_URL"),
    ("mail.from", "", "MOCKFORGE_MAIL_FROM"),
    ("mail.support_address", "", "MOCKFORGE_SUPPORT_EMAIL"),
    ("stripe.secret_key", "", "MOCKFORGE_STRIPE_SECRET_KEY"),
    ("stripe.webhook_secret", "", "MOCKFORGE_STRIPE_WEBHOOK_SECRET"),
    ("stripe.api_base", "", "MOCKFORGE_STRIPE_API_BASE"),
    ("stripe.price_ids", "", "MOCKFORGE_STRIPE_PRICE_IDS"),
    ("oauth.github.client_id", "", "MOCKFORGE_OAUTH_GITHUB_CLIENT_ID"),
    ("oauth.github.client_secret", "", "MOCKFORGE_OAUTH_GITHUB_CLIENT_SECRET"),
    ("oauth.google.client_id", "", "MOCKFORGE_OAUTH_GOOGLE_CLIENT_ID"),
    ("oauth.google.client_secret", "", "MOCKFORGE_OAUTH_GOOGLE_CLIENT_SECRET"),
    ("gdpr.grace_period_hours", "", "MOCKFORGE_GDPR_GRACE_PERIOD_HOURS"),
    ("s3.bucket", "", "MOCKFORGE_S3_BUCKET"),
    ("s3.endpoint", "", "MOCKFORGE_S3_ENDPOINT"),
    ("s3.region", "", "MOCKFORGE_S3_REGION"),
    ("s3.path_style", "", "MOCKFORGE_S3_PATH_STYLE"),
    ("s3.prefix", "", "MOCKFORGE_S3_PREFIX"),
];

/// One raw setting and where it came from, for error messages.
struct RawValue {
    text: String,
    origin: String,
}

/// The layers a setting can come from.
struct Layers {
    /// Values from flags or the environment, by file key.
    overrides: BTreeMap<&'static str, String>,
    /// Values from the configuration file, flattened to dotted keys.
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
}

impl Layers {
    fn get(&self, key: &'static str) -> Option<RawValue> {
        let (_, flag, variable) = KEYS.iter().find(|(name, _, _)| *name == key).expect("known key");
        if let Some(text) = self.overrides.get(key) {
            let origin = if flag.is_empty() { variable.to_string() } else { format!("{flag} / {variable}") };
            return Some(RawValue { text: text.clone(), origin });
        }
        let path = self.file_path.as_deref().unwrap_or(Path::new("the configuration file"));
        self.file.get(key).map(|text| RawValue { text: text.clone(), origin: format!("`{key}` in {}", path.display()) })
    }
}

impl Settings {
    /// Builds the settings of an edge named `node_name` in reports.
    pub fn edge_config(&self, node_name: &str) -> mockforge_edge::EdgeConfig {
        mockforge_edge::EdgeConfig {
            listen: self.edge_listen,
            base_domain: self.base_domain.clone(),
            node_name: node_name.to_owned(),
            plans: self.plans.clone(),
            admin_listen: self.admin_listen,
            max_connections: self.edge_max_connections,
            threads: self.edge_threads,
            max_concurrent_requests: self.edge_max_concurrent_requests,
            max_request_body_bytes: self.edge_max_request_body_bytes,
            max_header_bytes: self.edge_max_header_bytes,
            request_timeout: self.edge_request_timeout,
            allow_private_upstreams: self.fetch.allow_private_networks,
            tls: self.edge_tls.clone(),
            ..mockforge_edge::EdgeConfig::default()
        }
    }

    /// Resolves settings from flags, the environment and the configuration file, reporting every
    /// invalid value at once.
    pub fn resolve(args: &SettingArgs, profile: Profile) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let (file, plans) = match &args.config {
            Some(path) => read_config_file(path, &mut problems),
            None => (BTreeMap::new(), BTreeMap::new()),
        };
        let layers = Layers { overrides: overrides_from(args), file, file_path: args.config.clone() };
        let mut settings = Self::from_layers(&layers, profile, &mut problems);
        settings.plans = PlanTable::with_configured(plans);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError { problems })
        }
    }

    fn from_layers(layers: &Layers, profile: Profile, problems: &mut Vec<String>) -> Settings {
        let data_dir = layers.get("data_dir").map_or_else(|| PathBuf::from("./mockforge-data"), |raw| PathBuf::from(raw.text));
        let api_listen: SocketAddr = parse_or(layers.get("api_listen"), "127.0.0.1:8080", "a socket address such as 127.0.0.1:8080", problems);
        let edge_listen: SocketAddr = parse_or(layers.get("edge_listen"), "127.0.0.1:8081", "a socket address such as 127.0.0.1:8081", problems);
        let admin_listen = match layers.get("admin_listen") {
            Some(raw) if raw.text.trim().eq_ignore_ascii_case("off") => None,
            raw => Some(parse_or(raw, "127.0.0.1:9091", "a socket address such as 127.0.0.1:9091, or off", problems)),
        };
        let edge_max_connections = parse_positive(
            layers.get("edge_max_connections"),
            mockforge_edge::DEFAULT_MAX_CONNECTIONS as u64,
            "a positive number of connections",
            problems,
        );
        let edge_max_connections = usize::try_from(edge_max_connections).unwrap_or(usize::MAX);
        let mut positive_usize = |key: &'static str, default: usize, expected: &str| {
            let value = parse_positive(layers.get(key), default as u64, expected, problems);
            usize::try_from(value).unwrap_or(usize::MAX)
        };
        let edge_threads =
            positive_usize("edge_threads", mockforge_edge::default_threads(), "a positive number of threads");
        let edge_max_concurrent_requests = positive_usize(
            "edge_max_concurrent_requests",
            mockforge_edge::DEFAULT_MAX_CONCURRENT_REQUESTS,
            "a positive number of requests",
        );
        let edge_max_request_body_bytes = positive_usize(
            "edge_max_request_body_bytes",
            mockforge_edge::DEFAULT_MAX_REQUEST_BODY_BYTES,
            "a positive number of bytes",
        );
        let edge_max_header_bytes = positive_usize(
            "edge_max_header_bytes",
            mockforge_edge::DEFAULT_MAX_HEADER_BYTES,
            "a positive number of bytes",
        );
        let edge_request_timeout = Duration::from_millis(parse_positive(
            layers.get("edge_request_timeout_ms"),
            mockforge_edge::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
            "a positive number of milliseconds",
            problems,
        ));
        let edge_tls = edge_tls_from(layers, edge_listen, problems);
        let database_url = layers.get("database_url").and_then(|raw| check_database_url(raw, problems));
        let redis_url = layers.get("redis_url").and_then(|raw| check_redis_url(raw, problems));

        let default_edge_url = format!("http://{{org}}.localhost:{}", edge_listen.port());
        let public_edge = layers.get("public_edge_url").unwrap_or(RawValue { text: default_edge_url, origin: "default".into() });
        let base_domain = base_domain_of(&public_edge, problems).unwrap_or_default();

        let admin_emails = layers.get("admin_emails").map(|raw| parse_emails(raw, problems)).unwrap_or_default();
        let jwt_secret = layers.get("jwt_secret").and_then(|raw| check_jwt_secret(raw, problems));

        let private_default = if profile == Profile::AllInOne { "true" } else { "false" };
        let fetch = FetchSettings {
            allow_private_networks: parse_or(layers.get("fetch.allow_private_networks"), private_default, "true or false", problems),
            max_document_bytes: parse_positive(layers.get("fetch.max_document_bytes"), 32 * 1024 * 1024, "a positive number of bytes", problems),
            timeout: Duration::from_secs(parse_positive(layers.get("fetch.timeout_seconds"), 10, "a positive number of seconds", problems)),
        };

        let public_api_url = layers.get("public_api_url").map_or_else(|| format!("http://{api_listen}"), |raw| raw.text);
        let text = |key: &'static str| layers.get(key).map(|raw| raw.text).filter(|text| !text.trim().is_empty());
        let mail = MailSettings { smtp_url: text("mail.smtp_url"), from: text("mail.from"), support_address: text("mail.support_address") };
        let stripe = StripeSettings {
            secret_key: text("stripe.secret_key"),
            webhook_secret: text("stripe.webhook_secret"),
            api_base: text("stripe.api_base"),
            price_ids: layers.get("stripe.price_ids").map(|raw| parse_price_ids(raw, problems)).unwrap_or_default(),
        };
        let mut oauth = BTreeMap::new();
        for provider in ["github", "google"] {
            let id_key: &'static str = if provider == "github" { "oauth.github.client_id" } else { "oauth.google.client_id" };
            let secret_key: &'static str = if provider == "github" { "oauth.github.client_secret" } else { "oauth.google.client_secret" };
            match (layers.get(id_key), layers.get(secret_key)) {
                (Some(id), Some(secret)) => {
                    oauth.insert(provider.to_string(), (id.text, secret.text));
                }
                (Some(raw), None) | (None, Some(raw)) => {
                    problems.push(format!("{}: the {provider} OAuth client needs both a client id and a client secret", raw.origin));
                }
                (None, None) => {}
            }
        }
        let gdpr_grace_period = layers
            .get("gdpr.grace_period_hours")
            .map(|raw| Duration::from_secs(3600 * parse_positive(Some(raw), 24, "a positive number of hours", problems)));
        let s3_storage = s3::s3_from(layers, &|variable| std::env::var(variable).ok(), problems);

        Settings {
            data_dir,
            api_listen,
            edge_listen,
            admin_listen,
            edge_tls,
            edge_max_connections,
            edge_threads,
            edge_max_concurrent_requests,
            edge_max_request_body_bytes,
            edge_max_header_bytes,
            edge_request_timeout,
            database_url,
            redis_url,
            public_edge_url: public_edge.text,
            base_domain,
            admin_emails,
            jwt_secret,
            fetch,
            plans: PlanTable::default(),
            public_api_url,
            legal_dir: layers.get("legal_dir").map(|raw| PathBuf::from(raw.text)),
            master_key: text("master_key"),
            mail,
            stripe,
            oauth,
            gdpr_grace_period,
            s3_storage,
        }
    }
}

fn overrides_from(args: &SettingArgs) -> BTreeMap<&'static str, String> {
    let pairs = [
        ("data_dir", &args.data_dir),
        ("api_listen", &args.api_listen),
        ("edge_listen", &args.edge_listen),
        ("admin_listen", &args.admin_listen),
        ("edge_max_connections", &args.edge_max_connections),
        ("edge_threads", &args.edge_threads),
        ("edge_max_concurrent_requests", &args.edge_max_concurrent_requests),
        ("edge_max_request_body_bytes", &args.edge_max_request_body_bytes),
        ("edge_max_header_bytes", &args.edge_max_header_bytes),
        ("edge_request_timeout_ms", &args.edge_request_timeout_ms),
        ("tls.listen", &args.tls_listen),
        ("tls.cert", &args.tls_cert),
        ("tls.key", &args.tls_key),
        ("tls.cert_dir", &args.tls_cert_dir),
        ("tls.reload_interval_seconds", &args.tls_reload_interval_seconds),
        ("database_url", &args.database_url),
        ("redis_url", &args.redis_url),
        ("public_edge_url", &args.public_edge_url),
        ("admin_emails", &args.admin_emails),
        ("fetch.allow_private_networks", &args.fetch_allow_private_networks),
        ("fetch.max_document_bytes", &args.fetch_max_document_bytes),
        ("fetch.timeout_seconds", &args.fetch_timeout_seconds),
        ("public_api_url", &args.public_api_url),
        ("legal_dir", &args.legal_dir),
    ];
    let mut overrides: BTreeMap<&'static str, String> =
        pairs.into_iter().filter_map(|(key, value)| value.clone().map(|value| (key, value))).collect();
    // Secrets and rarely changed settings have no flag, because flags are visible to every user
    // in the process list. They come from the environment or the file.
    for (key, flag, variable) in KEYS {
        if flag.is_empty() {
            if let Ok(value) = std::env::var(variable) {
                overrides.insert(key, value);
            }
        }
    }
    overrides
}

type PlanTables = BTreeMap<String, PlanLimits>;

/// Reads the TOML file into dotted keys (`fetch.timeout_seconds`) and its `[plans.NAME]` tables.
/// Unknown keys are problems, so a misspelt key does not go unnoticed.
fn read_config_file(path: &Path, problems: &mut Vec<String>) -> (BTreeMap<String, String>, PlanTables) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            problems.push(format!("cannot read the configuration file {}: {error}", path.display()));
            return Default::default();
        }
    };
    let mut table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            problems.push(format!("the configuration file {} is not valid TOML: {error}", path.display()));
            return Default::default();
        }
    };
    let plans = table.remove("plans").map(|plans| read_plans(path, plans, problems)).unwrap_or_default();
    // `[stripe.price_ids]` maps plan names to prices, so it reads as one "plan=price" list.
    if let Some(toml::Value::Table(stripe)) = table.get_mut("stripe") {
        if let Some(toml::Value::Table(prices)) = stripe.remove("price_ids") {
            let pairs: Vec<String> = prices
                .iter()
                .map(|(plan, price)| format!("{plan}={}", price.as_str().map_or_else(|| price.to_string(), str::to_string)))
                .collect();
            stripe.insert("price_ids".into(), toml::Value::String(pairs.join(",")));
        }
    }

    let mut flat = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut flat);
    for key in flat.keys() {
        if let Some(message) = s3::secret_in_file(key) {
            problems.push(format!("{}: {message}", path.display()));
        } else if !KEYS.iter().any(|(name, _, _)| name == key) {
            let known: Vec<&str> = KEYS.iter().map(|(name, _, _)| *name).collect();
            problems.push(format!("unknown key `{key}` in {}; known keys: {}, plans.NAME", path.display(), known.join(", ")));
        }
    }
    (flat, plans)
}

/// Reads `[plans.NAME]` tables; each key is a non-negative integer limit.
fn read_plans(path: &Path, plans: toml::Value, problems: &mut Vec<String>) -> PlanTables {
    let toml::Value::Table(plans) = plans else {
        problems.push(format!("`plans` in {} must be a table of plans, such as [plans.free]", path.display()));
        return PlanTables::new();
    };
    let mut table = PlanTables::new();
    for (name, limits) in plans {
        match limits.try_into::<PlanLimits>() {
            Ok(limits) => {
                table.insert(name, limits);
            }
            Err(error) => problems.push(format!(
                "`plans.{name}` in {}: {}; expected keys requests_per_minute, requests_per_30d, max_deployments, \
                 deployment_rps, max_request_body_bytes and max_storage_bytes with non-negative integer values",
                path.display(),
                error.message()
            )),
        }
    }
    table
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten(&key, value, out);
            }
        }
        toml::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_string)).collect();
            out.insert(prefix.to_string(), items.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn parse_or<T: std::str::FromStr>(raw: Option<RawValue>, default: &str, expected: &str, problems: &mut Vec<String>) -> T
where
    T::Err: fmt::Display,
{
    let raw = raw.unwrap_or(RawValue { text: default.to_string(), origin: "default".into() });
    match raw.text.trim().parse() {
        Ok(value) => value,
        Err(_) => {
            problems.push(format!("{}: invalid value {:?}; expected {expected}", raw.origin, raw.text));
            default.parse().unwrap_or_else(|error| panic!("default {default:?} does not parse: {error}"))
        }
    }
}

fn parse_positive(raw: Option<RawValue>, default: u64, expected: &str, problems: &mut Vec<String>) -> u64 {
    let Some(raw) = raw else { return default };
    match raw.text.trim().parse::<u64>() {
        Ok(value) if value > 0 => value,
        _ => {
            problems.push(format!("{}: invalid value {:?}; expected {expected}", raw.origin, raw.text));
            default
        }
    }
}

fn check_database_url(raw: RawValue, problems: &mut Vec<String>) -> Option<String> {
    let text = raw.text.trim();
    if text.starts_with("sqlite:") || text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Some(text.to_string())
    } else {
        problems.push(format!("{}: invalid value {:?}; expected a sqlite:PATH or postgres://USER@HOST/DATABASE URL", raw.origin, raw.text));
        None
    }
}

fn check_redis_url(raw: RawValue, problems: &mut Vec<String>) -> Option<String> {
    let text = raw.text.trim();
    if text.is_empty() {
        return None;
    }
    if text.starts_with("redis://") || text.starts_with("rediss://") {
        Some(text.to_string())
    } else {
        problems.push(format!("{}: invalid value {:?}; expected a redis://HOST:PORT URL", raw.origin, raw.text));
        None
    }
}

fn check_jwt_secret(raw: RawValue, problems: &mut Vec<String>) -> Option<String> {
    if raw.text.len() >= 32 {
        Some(raw.text)
    } else {
        // The value is a secret, so the message gives its length only.
        problems.push(format!("{}: the JWT secret is {} characters long; expected at least 32", raw.origin, raw.text.len()));
        None
    }
}

fn parse_emails(raw: RawValue, problems: &mut Vec<String>) -> Vec<String> {
    let mut emails = Vec::new();
    for email in raw.text.split(',').map(str::trim).filter(|email| !email.is_empty()) {
        let valid = email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if valid {
            emails.push(email.to_ascii_lowercase());
        } else {
            problems.push(format!("{}: invalid e-mail address {email:?}; expected a comma-separated list such as admin@example.com", raw.origin));
        }
    }
    emails
}

/// Parses `pro=price_123,team=price_456` into Stripe price ids by plan name.
fn parse_price_ids(raw: RawValue, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut prices = BTreeMap::new();
    for pair in raw.text.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((plan, price)) if !plan.trim().is_empty() && !price.trim().is_empty() => {
                prices.insert(plan.trim().to_string(), price.trim().to_string());
            }
            _ => problems.push(format!("{}: invalid entry {pair:?}; expected PLAN=PRICE_ID pairs such as pro=price_123", raw.origin)),
        }
    }
    prices
}

/// Reads the `tls.*` settings. Returns `None` when none is set, and reports a listen address
/// without a certificate and key, or files without a listen address.
fn edge_tls_from(layers: &Layers, edge_listen: SocketAddr, problems: &mut Vec<String>) -> Option<TlsConfig> {
    let listen = layers.get("tls.listen");
    let cert = layers.get("tls.cert").filter(|raw| !raw.text.trim().is_empty());
    let key = layers.get("tls.key").filter(|raw| !raw.text.trim().is_empty());
    let cert_dir = layers.get("tls.cert_dir").filter(|raw| !raw.text.trim().is_empty());
    // The interval is checked even without a listener, so the example file can show it.
    let reload_seconds = parse_positive(layers.get("tls.reload_interval_seconds"), 5, "a positive number of seconds", problems);
    let Some(listen) = listen else {
        for raw in [cert, key, cert_dir].into_iter().flatten() {
            problems.push(format!("{}: set without a TLS listen address; set --tls-listen (MOCKFORGE_EDGE_TLS_LISTEN) too", raw.origin));
        }
        return None;
    };
    let listen_origin = listen.origin.clone();
    let listen: SocketAddr = parse_or(Some(listen), "127.0.0.1:8443", "a socket address such as 0.0.0.0:8443", problems);
    if listen == edge_listen {
        problems.push(format!("{listen_origin}: {listen} is also the plain edge listen address; expected another port"));
    }
    let (Some(cert), Some(key)) = (cert, key) else {
        problems.push(format!(
            "{listen_origin}: the TLS listener needs a certificate and a key; set --tls-cert (MOCKFORGE_EDGE_TLS_CERT) and --tls-key (MOCKFORGE_EDGE_TLS_KEY)"
        ));
        return None;
    };
    Some(TlsConfig {
        cert_dir: cert_dir.map(|raw| PathBuf::from(raw.text.trim())),
        reload_interval: Duration::from_secs(reload_seconds),
        ..TlsConfig::new(listen, cert.text.trim(), key.text.trim())
    })
}

/// Returns the base domain of a public edge URL such as `https://{org}.mockforge.dev`.
fn base_domain_of(raw: &RawValue, problems: &mut Vec<String>) -> Option<String> {
    let expected = "an http:// or https:// URL whose host starts with `{org}.`, such as https://{org}.mockforge.dev";
    let rest = raw.text.strip_prefix("https://").or_else(|| raw.text.strip_prefix("http://"));
    let authority = rest.map(|rest| rest.split('/').next().unwrap_or_default());
    let domain = authority.and_then(|authority| authority.strip_prefix("{org}."));
    let host = domain.map(|domain| domain.rsplit_once(':').map_or(domain, |(host, _port)| host));
    match host {
        Some(host) if !host.is_empty() && !host.contains('{') => Some(host.to_ascii_lowercase()),
        _ => {
            problems.push(format!("{}: invalid value {:?}; expected {expected}", raw.origin, raw.text));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(args: SettingArgs, file: &str) -> Result<Settings, SettingsError> {
        let dir = std::env::temp_dir().join(format!("mockforge-settings-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mockforge.toml");
        std::fs::write(&path, file).unwrap();
        let result = Settings::resolve(&SettingArgs { config: Some(path), ..args }, Profile::AllInOne);
        std::fs::remove_dir_all(dir).unwrap();
        result
    }

    #[test]
    fn defaults_without_file() {
        let settings = Settings::resolve(&SettingArgs::default(), Profile::AllInOne).unwrap();
        assert_eq!(settings.api_listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(settings.edge_listen, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("./mockforge-data"));
        assert_eq!(settings.public_edge_url, "http://{org}.localhost:8081");
        assert_eq!(settings.base_domain, "localhost");
        assert_eq!(settings.admin_listen, Some("127.0.0.1:9091".parse().unwrap()));
        assert!(settings.fetch.allow_private_networks);
        assert_eq!(settings.fetch.max_document_bytes, 32 * 1024 * 1024);
    }

    #[test]
    fn service_settings_come_from_file() {
        let file = "[stripe]\nsecret_key = \"sk_test_1\"\n[stripe.price_ids]\npro = \"price_pro\"\nteam = \"price_team\"\n\
                    [oauth.github]\nclient_id = \"id\"\nclient_secret = \"secret\"\n[mail]\nsmtp_url = \"smtp://127.0.0.1:2525\"\n\
                    [gdpr]\ngrace_period_hours = 2\n";
        let settings = resolve_with(SettingArgs::default(), file).unwrap();
        assert_eq!(settings.stripe.secret_key.as_deref(), Some("sk_test_1"));
        assert_eq!(settings.stripe.price_ids.get("team").map(String::as_str), Some("price_team"));
        assert_eq!(settings.oauth.get("github"), Some(&("id".to_string(), "secret".to_string())));
        assert_eq!(settings.mail.smtp_url.as_deref(), Some("smtp://127.0.0.1:2525"));
        assert_eq!(settings.gdpr_grace_period, Some(Duration::from_secs(7200)));
        assert_eq!(settings.public_api_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn api_url_and_legal_dir_flags() {
        let args = SettingArgs {
            public_api_url: Some("https://api.example.com".into()),
            legal_dir: Some("/srv/legal".into()),
            ..Default::default()
        };
        let settings = Settings::resolve(&args, Profile::ControlPlane).unwrap();
        assert_eq!(settings.public_api_url, "https://api.example.com");
        assert_eq!(settings.legal_dir, Some(PathBuf::from("/srv/legal")));
    }

    #[test]
    fn oauth_needs_id_and_secret() {
        let error = resolve_with(SettingArgs::default(), "[oauth.google]\nclient_id = \"id\"\n").unwrap_err();
        assert!(error.to_string().contains("google OAuth client needs both"), "{error}");
    }

    #[test]
    fn admin_listener_can_be_turned_off() {
        let args = SettingArgs { admin_listen: Some("off".into()), ..Default::default() };
        assert_eq!(Settings::resolve(&args, Profile::AllInOne).unwrap().admin_listen, None);

        let args = SettingArgs { admin_listen: Some("9091".into()), ..Default::default() };
        let error = Settings::resolve(&args, Profile::AllInOne).unwrap_err();
        assert!(error.to_string().contains("--admin-listen / MOCKFORGE_EDGE_ADMIN_LISTEN: invalid value \"9091\""), "{error}");
    }

    #[test]
    fn control_plane_refuses_private_networks_by_default() {
        let settings = Settings::resolve(&SettingArgs::default(), Profile::ControlPlane).unwrap();
        assert!(!settings.fetch.allow_private_networks);
    }

    #[test]
    fn flag_beats_file() {
        let args = SettingArgs { api_listen: Some("127.0.0.1:9000".into()), ..Default::default() };
        let settings = resolve_with(args, "api_listen = \"127.0.0.1:7000\"\nedge_listen = \"127.0.0.1:7001\"\n").unwrap();
        assert_eq!(settings.api_listen.port(), 9000);
        assert_eq!(settings.edge_listen.port(), 7001);
        assert_eq!(settings.public_edge_url, "http://{org}.localhost:7001");
    }

    #[test]
    fn file_reads_nested_fetch_table() {
        let settings = resolve_with(SettingArgs::default(), "[fetch]\nallow_private_networks = false\ntimeout_seconds = 3\n").unwrap();
        assert!(!settings.fetch.allow_private_networks);
        assert_eq!(settings.fetch.timeout, Duration::from_secs(3));
    }

    #[test]
    fn every_invalid_value_is_reported() {
        let args = SettingArgs { edge_listen: Some("nowhere".into()), ..Default::default() };
        let error = resolve_with(args, "api_listen = \"localhost\"\ndatabase_url = \"mysql://x\"\nunknown_key = 1\n").unwrap_err();
        let text = error.to_string();
        assert_eq!(error.problems.len(), 4, "{text}");
        assert!(text.contains("`api_listen` in"), "{text}");
        assert!(text.contains("\"localhost\""), "{text}");
        assert!(text.contains("--edge-listen / MOCKFORGE_EDGE_LISTEN: invalid value \"nowhere\""), "{text}");
        assert!(text.contains("mysql://x"), "{text}");
        assert!(text.contains("unknown key `unknown_key`"), "{text}");
    }

    #[test]
    fn public_edge_url_needs_org_label() {
        let args = SettingArgs { public_edge_url: Some("https://mocks.example.com".into()), ..Default::default() };
        let error = Settings::resolve(&args, Profile::AllInOne).unwrap_err();
        assert!(error.to_string().contains("{org}."), "{error}");

        let args = SettingArgs { public_edge_url: Some("https://{org}.mockforge.dev".into()), ..Default::default() };
        assert_eq!(Settings::resolve(&args, Profile::AllInOne).unwrap().base_domain, "mockforge.dev");
    }

    #[test]
    fn example_configuration_is_valid() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/mockforge.example.toml");
        let settings = Settings::resolve(&SettingArgs { config: Some(path), ..Default::default() }, Profile::ControlPlane).unwrap();
        assert_eq!(settings.plans, PlanTable::default(), "the example lists the built-in plans");
        assert_eq!(settings.api_listen.port(), 8080);
        assert_eq!(settings.edge_max_connections, 10_000);
        assert_eq!(settings.edge_max_concurrent_requests, mockforge_edge::DEFAULT_MAX_CONCURRENT_REQUESTS);
        assert_eq!(settings.edge_max_request_body_bytes, mockforge_edge::DEFAULT_MAX_REQUEST_BODY_BYTES);
        assert_eq!(settings.edge_max_header_bytes, mockforge_edge::DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(settings.edge_request_timeout, mockforge_edge::DEFAULT_REQUEST_TIMEOUT);
        assert!(!settings.fetch.allow_private_networks);

        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/production.toml");
        let settings = Settings::resolve(&SettingArgs { config: Some(path), ..Default::default() }, Profile::AllInOne).unwrap();
        assert!(!settings.fetch.allow_private_networks, "production never fetches from private networks");
        assert_eq!(settings.base_domain, "mockforge.dev");
    }

    #[test]
    fn plan_tables_replace_default_plans() {
        let settings = resolve_with(SettingArgs::default(), "[plans.free]\nrequests_per_minute = 5\n[plans.gold]\nrequests_per_30d = 9\n").unwrap();
        let free = settings.plans.limits("free").unwrap();
        assert_eq!(free.requests_per_minute, Some(5));
        assert_eq!(free.max_deployments, None);
        assert_eq!(settings.plans.limits("gold").unwrap().requests_per_30d, Some(9));
        assert_eq!(settings.plans.limits("pro").unwrap().requests_per_30d, Some(250_000));
    }

    #[test]
    fn plan_storage_quota_is_read() {
        let settings = resolve_with(SettingArgs::default(), "[plans.free]\nmax_storage_bytes = 4096\n").unwrap();
        assert_eq!(settings.plans.limits("free").unwrap().max_storage_bytes, Some(4096));
        assert_eq!(settings.plans.limits("pro").unwrap().max_storage_bytes, Some(20 * 1024 * 1024 * 1024));

        let error = resolve_with(SettingArgs::default(), "[plans.free]\nmax_storage_bytes = -1\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("`plans.free`"), "{text}");
        assert!(text.contains("max_storage_bytes"), "{text}");
    }

    #[test]
    fn edge_max_connections_is_layered() {
        let settings = Settings::resolve(&SettingArgs::default(), Profile::AllInOne).unwrap();
        assert_eq!(settings.edge_max_connections, mockforge_edge::DEFAULT_MAX_CONNECTIONS);

        let settings = resolve_with(SettingArgs::default(), "edge_max_connections = 250\n").unwrap();
        assert_eq!(settings.edge_max_connections, 250);

        let args = SettingArgs { edge_max_connections: Some("40".into()), ..Default::default() };
        let settings = resolve_with(args, "edge_max_connections = 250\n").unwrap();
        assert_eq!(settings.edge_max_connections, 40, "the flag beats the file");

        let error = resolve_with(SettingArgs::default(), "edge_max_connections = 0\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("`edge_max_connections`"), "{text}");
        assert!(text.contains("a positive number of connections"), "{text}");
    }

    #[test]
    fn edge_request_limits_are_layered() {
        let settings = Settings::resolve(&SettingArgs::default(), Profile::AllInOne).unwrap();
        let config = settings.edge_config("local");
        assert_eq!(config.max_concurrent_requests, mockforge_edge::DEFAULT_MAX_CONCURRENT_REQUESTS);
        assert_eq!(config.max_request_body_bytes, mockforge_edge::DEFAULT_MAX_REQUEST_BODY_BYTES);
        assert_eq!(config.max_header_bytes, mockforge_edge::DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(config.request_timeout, mockforge_edge::DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(config.node_name, "local");
        assert_eq!(config.threads, mockforge_edge::default_threads());

        let file = "edge_max_concurrent_requests = 500\nedge_max_request_body_bytes = 2048\n\
                    edge_max_header_bytes = 8192\nedge_request_timeout_ms = 1500\nedge_threads = 3\n";
        let config = resolve_with(SettingArgs::default(), file).unwrap().edge_config("eu-1");
        assert_eq!(config.threads, 3);
        assert_eq!(config.max_concurrent_requests, 500);
        assert_eq!(config.max_request_body_bytes, 2048);
        assert_eq!(config.max_header_bytes, 8192);
        assert_eq!(config.request_timeout, Duration::from_millis(1500));

        let args = SettingArgs { edge_request_timeout_ms: Some("250".into()), ..Default::default() };
        let settings = resolve_with(args, file).unwrap();
        assert_eq!(settings.edge_request_timeout, Duration::from_millis(250), "the flag beats the file");

        let file = "edge_max_header_bytes = 0\nedge_request_timeout_ms = \"30s\"\n";
        let text = resolve_with(SettingArgs::default(), file).unwrap_err().to_string();
        assert!(text.contains("`edge_max_header_bytes`"), "{text}");
        assert!(text.contains("a positive number of bytes"), "{text}");
        assert!(text.contains("`edge_request_timeout_ms`"), "{text}");
        assert!(text.contains("a positive number of milliseconds"), "{text}");
    }

    #[test]
    fn invalid_plan_key_is_reported() {
        let error = resolve_with(SettingArgs::default(), "[plans.free]\nrequests_per_hour = 5\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("`plans.free`"), "{text}");
        assert!(text.contains("requests_per_hour"), "{text}");

        let error = resolve_with(SettingArgs::default(), "[plans.free]\nrequests_per_minute = -1\n").unwrap_err();
        assert!(error.to_string().contains("`plans.free`"), "{error}");
    }

    #[test]
    fn tls_settings_from_flags_and_file() {
        let settings = Settings::resolve(&SettingArgs::default(), Profile::AllInOne).unwrap();
        assert!(settings.edge_tls.is_none(), "TLS is off by default");

        let args = SettingArgs { tls_listen: Some("0.0.0.0:8443".into()), tls_key: Some("/etc/mockforge/wildcard.key".into()), ..Default::default() };
        let file = "[tls]\ncert = \"/etc/mockforge/wildcard.crt\"\ncert_dir = \"/etc/mockforge/certs\"\nreload_interval_seconds = 2\n";
        let tls = resolve_with(args, file).unwrap().edge_tls.expect("TLS settings");
        assert_eq!(tls.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(tls.cert, PathBuf::from("/etc/mockforge/wildcard.crt"));
        assert_eq!(tls.key, PathBuf::from("/etc/mockforge/wildcard.key"));
        assert_eq!(tls.cert_dir, Some(PathBuf::from("/etc/mockforge/certs")));
        assert_eq!(tls.reload_interval, Duration::from_secs(2));
    }

    #[test]
    fn tls_listener_needs_cert_and_key() {
        let args = SettingArgs { tls_listen: Some("0.0.0.0:8443".into()), tls_cert: Some("wildcard.crt".into()), ..Default::default() };
        let error = Settings::resolve(&args, Profile::AllInOne).unwrap_err();
        assert!(error.to_string().contains("--tls-listen / MOCKFORGE_EDGE_TLS_LISTEN: the TLS listener needs a certificate and a key"), "{error}");

        let args = SettingArgs { tls_cert: Some("wildcard.crt".into()), ..Default::default() };
        let error = Settings::resolve(&args, Profile::AllInOne).unwrap_err();
        assert!(error.to_string().contains("--tls-cert / MOCKFORGE_EDGE_TLS_CERT: set without a TLS listen address"), "{error}");

        let args = SettingArgs { tls_listen: Some("8443".into()), tls_cert: Some("a.crt".into()), tls_key: Some("a.key".into()), ..Default::default() };
        let error = Settings::resolve(&args, Profile::AllInOne).unwrap_err();
        assert!(error.to_string().contains("invalid value \"8443\"; expected a socket address"), "{error}");
    }

    #[test]
    fn admin_emails_are_split_and_checked() {
        let args = SettingArgs { admin_emails: Some("Ops@Example.com, root@example.org".into()), ..Default::default() };
        let settings = Settings::resolve(&args, Profile::AllInOne).unwrap();
        assert_eq!(settings.admin_emails, vec!["ops@example.com", "root@example.org"]);

        let args = SettingArgs { admin_emails: Some("not-an-address".into()), ..Default::default() };
        assert!(Settings::resolve(&args, Profile::AllInOne).unwrap_err().to_string().contains("not-an-address"));
    }
}
