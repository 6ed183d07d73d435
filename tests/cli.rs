//! CLI behaviour pinned by transcripts: `tests/cmd/*.md` and `*.toml` (trycmd).
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test --test cli`.

#[test]
fn transcripts() {
    trycmd::TestCases::new()
        .case("tests/cmd/*.md")
        .case("tests/cmd/*.toml");
}
