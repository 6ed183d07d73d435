use clap::Parser;
use std::process::ExitCode;
use wactl::cli::{self, Cli};
use wactl::ui::Ui;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let ui = Ui::new(
        cli.global.output,
        cli.global.quiet,
        cli.global.verbose,
        cli.global.no_color,
    );
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): nothing left to say, and nobody to say it to.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let code = cli::exit_code(&error);
            ui.error(&error, code);
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A closed stdout ends the command quietly with success, as in every Unix tool. Rust
/// ignores SIGPIPE, so a write to a closed pipe fails, and `println!` panics on that
/// failure: that one panic becomes a quiet exit 0; every other panic is reported as usual.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}
