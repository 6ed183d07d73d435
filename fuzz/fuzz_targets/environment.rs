//! Any bytes given to the environment parser, resolver and renderer: errors are fine,
//! panics, hangs and runaway memory are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match wactl::config::load_from_str("fuzz", text) {
        Ok(env) => {
            let _ = wactl::render::render(&env, &wactl::render::RenderOptions::default());
        }
        // Rendering the error must not panic either (it quotes source lines).
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
