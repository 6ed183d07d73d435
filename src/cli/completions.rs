//! `wactl completions SHELL`: the shell completion script, generated from the clap definition.

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Install (bash): wactl completions bash > ~/.local/share/bash-completion/completions/wactl\n\
Install (zsh): wactl completions zsh > \"${fpath[1]}/_wactl\"\n\
Install (fish): wactl completions fish > ~/.config/fish/completions/wactl.fish"
)]
pub struct Args {
    /// Shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    use std::io::Write;
    let mut command = super::Cli::command();
    // Generated into memory first: clap_complete panics on a failed write, and a closed
    // stdout (`| head`) must end quietly instead.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "wactl", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shell clap_complete knows gets a script that names the verbs.
    #[test]
    fn every_shell_gets_a_script_naming_the_verbs() {
        let shells = [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::PowerShell,
        ];
        for shell in shells {
            let mut command = super::super::Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "wactl", &mut out);
            let script = String::from_utf8(out).expect("scripts are UTF-8");
            for verb in ["deploy", "rollback", "completions"] {
                assert!(script.contains(verb), "{shell}: no {verb}");
            }
        }
        assert_eq!(shells.len(), 5);
    }
}
