//! `wactl history ENV [--limit N]`

use super::GlobalArgs;
use crate::cluster::{RevisionLine, revision};
use crate::ui::table::{Align, Table};
use crate::ui::{OutputFormat, Ui, paint, short_image, time};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  wactl history staging             every recorded revision, oldest first
  wactl history staging --limit 5   the five newest
  wactl history staging --output json | jq '.[-1].started_at'")]
pub struct Args {
    /// Environment whose recorded revisions to list.
    pub environment: String,
    /// Only the newest N revisions.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub clusters: super::clusters::ClusterArgs,
}

pub fn run(global: &GlobalArgs, ui: &Ui, args: &Args) -> anyhow::Result<()> {
    let (name, clusters) = (&args.environment, &args.clusters);
    super::clusters::run_each(global, ui, name, clusters, "history", |ui, env, access| {
        run_in(ui, env, access, args.limit)
    })
}

/// `history` in one cluster.
fn run_in(
    ui: &Ui,
    env: &crate::config::Environment,
    access: &crate::cluster::Access,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let revisions = super::block_on(async {
        let client = crate::cluster::connect(env, access).await?;
        revision::list(&client, &env.cluster.namespace, &env.name).await
    })??;
    let mut lines: Vec<RevisionLine> = revisions.iter().map(RevisionLine::from).collect();
    if let Some(limit) = limit {
        lines.drain(..lines.len().saturating_sub(limit));
    }
    if ui.format == OutputFormat::Json {
        ui.json(&serde_json::to_value(&lines)?);
        return Ok(());
    }
    if lines.is_empty() {
        println!(
            "{}: no revisions in namespace {}",
            env.name, env.cluster.namespace
        );
        return Ok(());
    }
    table(&lines, ui.color_out, jiff::Timestamp::now()).print()?;
    Ok(())
}

/// The revisions as a table; ages are counted from `now`.
fn table(lines: &[RevisionLine], colour: bool, now: jiff::Timestamp) -> Table {
    let mut columns = vec![
        ("rev", Align::Right),
        ("status", Align::Left),
        ("started", Align::Left),
        ("age", Align::Left),
        ("by", Align::Left),
        ("image", Align::Left),
    ];
    // A note column only when a revision has one.
    if lines
        .iter()
        .any(|l| l.rollback_of.is_some() || l.message.is_some())
    {
        columns.push(("note", Align::Left));
    }
    let mut table = Table::new(&columns);
    for l in lines {
        let note = match (l.rollback_of, &l.message) {
            (Some(of), _) => format!("rollback to {of}"),
            (None, Some(m)) => m.lines().next().unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        table.row(vec![
            l.number.to_string(),
            status_colour(l.status, colour),
            time::local(&l.started_at),
            time::age_at(&l.started_at, now),
            l.user.clone(),
            short_image(&l.image),
            note,
        ]);
    }
    table
}

/// A revision status, coloured as `diff` colours changes: green done, red failed, yellow
/// undone or cut short.
pub fn status_colour(status: &str, colour: bool) -> String {
    let code = match status {
        "succeeded" => "32",
        "failed" => "31",
        "rolled-back" | "interrupted" | "pending" => "33",
        _ => "",
    };
    if code.is_empty() {
        status.to_owned()
    } else {
        paint(colour, code, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(number: u32, status: &'static str, user: &str, started_at: &str) -> RevisionLine {
        RevisionLine {
            number,
            status,
            image: format!(
                "127.0.0.1:5000/wa/address-service@sha256:{}",
                "ab".repeat(32)
            ),
            git_commit: None,
            user: user.into(),
            host: "vm".into(),
            started_at: started_at.into(),
            finished_at: None,
            message: None,
            rollback_of: None,
            objects: 10,
            canary: None,
        }
    }

    #[test]
    fn history_columns_line_up_with_times_a_person_reads() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().expect("time");
        let mut failed = line(9, "failed", "octocat", "2026-11-30T11:55:00.123456789Z");
        failed.message = Some("rollout failed\nsecond line".into());
        let mut back = line(10, "succeeded", "alice@vm", "2026-11-28T11:00:00Z");
        back.rollback_of = Some(8);
        let rows = [
            line(
                8,
                "succeeded",
                "Jane Doe <jane@example.com>",
                "2026-11-30T11:59:18Z",
            ),
            failed,
            back,
        ];
        let lines = table(&rows, false, now).lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            lines[0].starts_with("REV  STATUS     STARTED"),
            "{}",
            lines[0]
        );
        // Every column starts where its header does, whatever the data.
        for header in ["STATUS", "STARTED", "AGE", "BY", "IMAGE"] {
            let at = lines[0].find(header).expect("header");
            for l in &lines[1..] {
                assert_eq!(&l[at - 2..at], "  ", "{header} in {l}");
                assert_ne!(l.as_bytes()[at], b' ', "{header} in {l}");
            }
        }
        assert!(lines[1].contains("42 s ago"), "{}", lines[1]);
        assert!(
            lines[2].contains("5 min ago") && lines[2].contains(" octocat "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with("rollout failed"), "{}", lines[2]);
        assert!(lines[3].contains("2 days ago"), "{}", lines[3]);
        assert!(lines[3].ends_with("rollback to 8"), "{}", lines[3]);
        // The digest once, short; no nanoseconds.
        assert!(lines[1].ends_with("@sha256:abababababab"), "{}", lines[1]);
        assert!(!lines.iter().any(|l| l.contains(".123")), "{lines:#?}");
    }
}
