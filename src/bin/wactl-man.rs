//! Writes `wactl.1` and one `wactl-VERB.1` per verb, generated from the clap definition,
//! into the directory given as the only argument (run through `cargo xtask man`).

use clap::CommandFactory;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: wactl-man OUT_DIR");
        return ExitCode::from(2);
    };
    let out = std::path::PathBuf::from(out);
    let written = std::fs::create_dir_all(&out)
        .and_then(|()| clap_mangen::generate_to(wactl::cli::Cli::command(), &out));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: writing man pages into {}: {error}", out.display());
            ExitCode::FAILURE
        }
    }
}
