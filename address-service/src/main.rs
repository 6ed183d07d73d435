//! `address-service`: parse the command line, set up logging, run.

use address_service::config::{Cli, Command, KeysCommand};
use address_service::{healthcheck, server};
use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: allocation and freeing were a quarter of the
/// instructions of a validate request (callgrind), and its thread-local free lists suit the
/// runtime's short-lived per-request allocations (docs/benchmarks.md, service).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck { url, timeout }) => match healthcheck::check(&url, timeout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("healthcheck: {e}");
                ExitCode::from(1)
            }
        },
        Some(Command::Keys(command)) => {
            server::init_logging(cli.serve.log_format);
            let Some(runtime) = runtime() else {
                return ExitCode::from(1);
            };
            match runtime.block_on(keys(cli.serve.database_url.as_deref(), command)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("address-service keys: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        None => {
            server::init_logging(cli.serve.log_format);
            let Some(runtime) = runtime() else {
                return ExitCode::from(1);
            };
            match runtime.block_on(server::run(cli.serve)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "address-service failed");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("address-service: starting the runtime: {e}");
            None
        }
    }
}

/// `address-service keys …`: output on stdout, one line per key.
async fn keys(database_url: Option<&str>, command: KeysCommand) -> anyhow::Result<()> {
    let url = database_url
        .ok_or_else(|| anyhow::anyhow!("DATABASE_URL (or --database-url) is required"))?;
    let db = address_service::db::Db::connect(url).await?;
    match command {
        KeysCommand::Create { name, scopes } => {
            let scopes = if scopes.is_empty() {
                address_service::db::SCOPES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            } else {
                scopes
            };
            let (key, record) = db.create_key(&name, &scopes).await?;
            println!("{key}");
            eprintln!(
                "created key {} ({}) with scopes {}; it is not shown again",
                record.prefix,
                record.name,
                record.scopes.join(",")
            );
        }
        KeysCommand::Revoke { prefix } => {
            if !db.revoke_key(&prefix).await? {
                anyhow::bail!("no active key with prefix {prefix:?}");
            }
            eprintln!("revoked key {prefix}");
        }
        KeysCommand::List => {
            for k in db.list_keys().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.prefix,
                    k.name,
                    k.scopes.join(","),
                    if k.revoked { "revoked" } else { "active" }
                );
            }
        }
    }
    Ok(())
}
