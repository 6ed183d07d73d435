use clap::Parser;
use std::process::ExitCode;
use wactl::cli::{self, Cli};
use wactl::ui::Ui;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::new(
        cli.global.output,
        cli.global.quiet,
        cli.global.verbose,
        cli.global.no_color,
    );
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = cli::exit_code(&error);
            ui.error(&error, code);
            ExitCode::from(code)
        }
    }
}
