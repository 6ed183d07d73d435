//! `wactl schema`

pub fn run() -> anyhow::Result<()> {
    println!("{}", crate::config::json_schema());
    Ok(())
}
