//! Command line and environment: every setting is a flag and an environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "address-service",
    version,
    about = "World Address: validates, normalises and formats postal addresses."
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One HTTP GET; exit 0 on 200, 1 otherwise (the container's HEALTHCHECK, no curl needed).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
        /// Give up after this long.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Manage API keys in the database (`DATABASE_URL`).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        /// Who or what the key is for.
        #[arg(long)]
        name: String,
        /// What the key may call: `countries`, `addresses` (repeatable; default both).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Revoke a key by its prefix (the 8 hex digits after `wa_`).
    Revoke { prefix: String },
    /// List keys (prefixes, names, scopes, revocation; never secrets).
    List,
}

/// How the server runs.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Requests taking longer get 503 `timeout` (e.g. `10s`, `500ms`).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Larger request bodies get 413.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 65536)]
    pub body_limit_bytes: usize,
    /// After SIGTERM, in-flight requests get this long to finish before the process exits.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// After SIGTERM, keep accepting (while /readyz says 503) for this long, so load balancers
    /// stop sending traffic before the listener closes.
    #[arg(long, env = "SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// PostgreSQL for API keys and the audit log (`postgres://user:pass@host:port/db`).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis for rate limiting shared across replicas (`redis://host:port`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Requests per minute per API key (or client IP without keys); needs Redis.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u64,
    /// Proxies whose `X-Forwarded-For` is believed (comma-separated address blocks, e.g.
    /// `10.0.0.0/8,fd00::/8`): behind them, the per-IP rate limit and the audit log use the
    /// client address they recorded. Empty: the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<crate::client::Cidr>,
    /// `/v1` requires `Authorization: Bearer KEY` or `X-API-Key: KEY`; needs the database.
    #[arg(long, env = "REQUIRE_API_KEY")]
    pub require_api_key: bool,
    /// Log format on stderr.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_cidr(s: &str) -> Result<crate::client::Cidr, String> {
    s.parse()
}

/// A duration in humantime's grammar, the one wactl checks at `wactl validate`: `10s`,
/// `500ms`, `2m`, `1h 30m`. clap puts the setting's flag and variable name in front of the
/// message.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}; use a duration like 10s, 500ms or 1m 30s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2days"), Ok(Duration::from_secs(2 * 86_400)));
        for bad in ["ten", "3", "5x", "", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_duration_names_the_setting() {
        let err = Cli::try_parse_from(["address-service", "--request-timeout", "10 sec0nds"])
            .expect_err("bad duration");
        let text = err.to_string();
        assert!(
            text.contains("--request-timeout") && text.contains("REQUEST_TIMEOUT"),
            "{text}"
        );
        assert!(text.contains("10 sec0nds"), "{text}");
    }

    #[test]
    fn trusted_proxies_from_flag_and_environment() {
        let cli = Cli::try_parse_from([
            "address-service",
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1",
        ])
        .expect("parses");
        assert_eq!(cli.serve.trusted_proxies.len(), 2);
        let err = Cli::try_parse_from(["address-service", "--trusted-proxies", "10.0.0.0/40"])
            .expect_err("bad prefix");
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
