//! When wactl colours its output: the `NO_COLOR`, `CLICOLOR_FORCE`, `CLICOLOR` and `TERM`
//! conventions of the Rust CLI ecosystem, on a pipe and on a real terminal (a pty from
//! util-linux `script`).

use std::process::{Command, Output};

const ERROR_LABEL: &str = "\x1b[1;31merror\x1b[0m";

/// `wactl validate` of an environment that does not exist: a failure, so the `error:`
/// label is printed, coloured or not. `vars` are set on top of a colour-neutral environment.
fn failing_validate(vars: &[(&str, &str)], extra_args: &[&str], on_terminal: bool) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let wactl = env!("CARGO_BIN_EXE_wactl");
    let mut args: Vec<String> = vec!["--env-dir".into(), format!("{root}/environments")];
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    args.extend(["validate".into(), "no-such-environment".into()]);
    let mut command = if on_terminal {
        let quoted: Vec<String> = std::iter::once(wactl.to_owned())
            .chain(args)
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let mut c = Command::new("script");
        c.args([
            "--quiet",
            "--return",
            "--command",
            &quoted.join(" "),
            "/dev/null",
        ]);
        c
    } else {
        let mut c = Command::new(wactl);
        c.args(args);
        c
    };
    for var in [
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "GITHUB_ACTIONS",
        "CI",
    ] {
        command.env_remove(var);
    }
    command.env("TERM", "xterm-256color");
    command.envs(vars.iter().copied());
    let output = command.output().expect("run wactl");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    output
}

/// The text the person sees: stderr on a pipe, the terminal's output through `script`.
fn seen(output: &Output, on_terminal: bool) -> String {
    let bytes = if on_terminal {
        &output.stdout
    } else {
        &output.stderr
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    assert!(text.contains("error"), "the error is printed: {text:?}");
    text
}

/// Variables, extra arguments, on a terminal, coloured.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
    bool,
    bool,
);

#[test]
fn colour_follows_the_ecosystem_conventions() {
    let cases: &[Case] = &[
        (&[], &[], false, false),
        (&[], &[], true, true),
        (&[("NO_COLOR", "1")], &[], true, false),
        // An empty NO_COLOR is not set.
        (&[("NO_COLOR", "")], &[], true, true),
        (&[("TERM", "dumb")], &[], true, false),
        (&[("CLICOLOR", "0")], &[], true, false),
        (&[("CLICOLOR_FORCE", "1")], &[], false, true),
        (
            &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
            &[],
            false,
            false,
        ),
        (&[("CLICOLOR_FORCE", "1")], &["--no-color"], false, false),
        (
            &[("CLICOLOR_FORCE", "1"), ("GITHUB_ACTIONS", "true")],
            &[],
            false,
            false,
        ),
        (&[], &["--no-color"], true, false),
    ];
    let mut tried = 0;
    for (vars, extra_args, on_terminal, coloured) in cases {
        let output = failing_validate(vars, extra_args, *on_terminal);
        let text = seen(&output, *on_terminal);
        assert_eq!(
            text.contains(ERROR_LABEL),
            *coloured,
            "{vars:?} {extra_args:?} on a terminal: {on_terminal}: {text:?}"
        );
        if !coloured {
            assert!(!text.contains('\x1b'), "no escape codes at all: {text:?}");
        }
        tried += 1;
    }
    assert_eq!(tried, 11);
}
