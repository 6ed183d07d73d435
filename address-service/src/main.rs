//! `address-service`: parse the command line, set up logging, run.

use address_service::config::{Cli, Command};
use address_service::{healthcheck, server};
use clap::Parser;
use std::process::ExitCode;

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
        None => {
            server::init_logging(cli.serve.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("address-service: starting the runtime: {e}");
                    return ExitCode::from(1);
                }
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
