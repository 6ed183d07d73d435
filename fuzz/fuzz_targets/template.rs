//! Arbitrary template override text rendered through `wactl::render::render` for a complete
//! definition: tera errors are fine; panics are not, and no template may read a file or an
//! environment variable (a canary value in both must never reach the rendered output).
//!
//! Input: the first byte picks which built-in template the rest of the input overrides.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

/// base.yaml with every component, autoscaling and the ingress on, so every template renders.
const DEFINITION: &str = include_str!("../definitions/everything.yaml");

/// Put in a file next to the overrides and in the process environment.
const CANARY: &str = "fuzz-canary-7f3a9c2e5b";

struct Fixture {
    env: wactl::config::Environment,
    /// Holds the override directory for the whole run.
    _dir: tempfile::TempDir,
    overrides: PathBuf,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let env = wactl::config::load_from_str("fuzz", DEFINITION)
        .unwrap_or_else(|e| panic!("the fixed definition must load: {e}"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let overrides = dir.path().join("templates");
    std::fs::create_dir_all(&overrides).expect("override directory");
    std::fs::write(dir.path().join("canary.txt"), CANARY).expect("canary file");
    // SAFETY: set once, before any rendering and before other threads read the environment.
    unsafe { std::env::set_var("WACTL_FUZZ_CANARY", CANARY) };
    Fixture {
        env,
        _dir: dir,
        overrides,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let fixture = &*FIXTURE;
    let names = &*wactl::render::TEMPLATE_NAMES;
    let name = &names[usize::from(pick) % names.len()];
    let _ = std::fs::remove_dir_all(&fixture.overrides);
    let path = fixture.overrides.join(name);
    std::fs::create_dir_all(path.parent().expect("templates have a parent"))
        .expect("override subdirectory");
    std::fs::write(&path, text).expect("writing the override");
    let options = wactl::render::RenderOptions {
        image: None,
        templates: Some(fixture.overrides.clone()),
    };
    match wactl::render::render(&fixture.env, &options) {
        Ok(rendered) => {
            for (file, content) in &rendered.files {
                assert!(
                    !content.contains(CANARY),
                    "template {name} leaked the canary into {file}"
                );
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.contains(CANARY),
                "template {name} leaked the canary into an error: {message}"
            );
        }
    }
});
