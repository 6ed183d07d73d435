//! `cargo xtask bench render`: `wactl render staging` against `helm template` of a chart
//! that produces the same Kubernetes objects, timed side by side by hyperfine.
//!
//! The chart is generated from wactl's own output: every scalar of every object becomes a
//! value in `values.yaml` that its template looks up, so Helm does real templating work
//! for every field, and the bench first checks that both produce identical objects.

use crate::{bench, project};
use anyhow::{Context, bail, ensure};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use xshell::cmd;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per command.
    #[arg(long, default_value_t = 30)]
    pub runs: u32,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let sh = project::shell()?;
    cmd!(sh, "cargo build --quiet --release --bin wactl").run()?;
    let wactl = project::target_dir().join("release/wactl");
    let helm = bench::ensure_helm()?;
    let work = std::env::temp_dir().join(format!("wactl-bench-render-{}", std::process::id()));
    let out = work.join("out");
    let chart = work.join("chart");
    let env_dir = project::root().join("environments");

    cmd!(sh, "{wactl} --env-dir {env_dir} render staging --out {out}").run()?;
    let objects = read_objects(&out.join("k8s"))?;
    write_chart(&chart, &objects)?;
    let namespace = objects[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let helm_output = cmd!(
        sh,
        "{helm} template world-address {chart} --namespace {namespace}"
    )
    .read()?;
    let helm_objects: Vec<Value> =
        serde_saphyr::from_multiple(&helm_output).context("parsing helm's output")?;
    ensure!(
        sorted(helm_objects.into_iter().filter(|o| !o.is_null()).collect())
            == sorted(objects.clone()),
        "the generated chart does not reproduce wactl's objects"
    );

    let wactl_cmd = format!(
        "{} --env-dir {} render staging --out {}",
        wactl.display(),
        env_dir.display(),
        work.join("timed").display()
    );
    // The same render with the image named: no git at all, so the table shows what asking
    // git for the tag of `latest` costs.
    let wactl_image_cmd = format!(
        "{} --env-dir {} render staging --image ghcr.io/world-address/address-service:1.0.0 --out {}",
        wactl.display(),
        env_dir.display(),
        work.join("timed-image").display()
    );
    let helm_cmd = format!(
        "{} template world-address {} --namespace {namespace}",
        helm.display(),
        chart.display()
    );
    let load_before = load_average();
    let timings = bench::hyperfine(&[&wactl_cmd, &wactl_image_cmd, &helm_cmd], args.runs)?;
    let load_after = load_average();
    let [wactl_t, image_t, helm_t] = timings[..] else {
        bail!("hyperfine returned {} results", timings.len())
    };
    let ratio = helm_t.mean / wactl_t.mean;
    let cpu_ratio = helm_t.cpu / wactl_t.cpu;
    let image_ratio = helm_t.mean / image_t.mean;
    let image_cpu_ratio = helm_t.cpu / image_t.cpu;
    let files = std::fs::read_dir(out.join("k8s"))?.count();
    let markdown = format!(
        "`cargo xtask bench render`: whole processes timed by hyperfine ({runs} runs after 3 warm-ups), release build of wactl. \
         wactl renders and type-checks all artifacts of `staging` ({total} files, {files} Kubernetes objects) and writes them to disk; \
         `staging`'s image tag is `latest`, so wactl asks git for the tag a build of this checkout would get, unless `--image` names it. \
         Helm {helm_version} renders a generated chart that produces the same {files} objects (checked equal before timing) to stdout.\n\n\
         | command | wall mean | σ | CPU (user+sys) |\n| --- | ---: | ---: | ---: |\n\
         | `wactl render staging` (tag from git) | {:.1} ms | {:.1} ms | {:.1} ms |\n\
         | `wactl render staging --image …` (no git) | {:.1} ms | {:.1} ms | {:.1} ms |\n\
         | `helm template` (same objects) | {:.1} ms | {:.1} ms | {:.1} ms |\n\n\
         **wactl is {ratio:.1}× faster than Helm in wall time and uses {cpu_ratio:.1}× less CPU** \
         ({image_ratio:.1}× and {image_cpu_ratio:.1}× with `--image`; aim: ≥ 10×).\n\n\
         Load average (1 min) on the shared machine: {load_before} before timing, {load_after} after.\n",
        wactl_t.mean * 1e3,
        wactl_t.stddev * 1e3,
        wactl_t.cpu * 1e3,
        image_t.mean * 1e3,
        image_t.stddev * 1e3,
        image_t.cpu * 1e3,
        helm_t.mean * 1e3,
        helm_t.stddev * 1e3,
        helm_t.cpu * 1e3,
        runs = args.runs,
        total = walk_count(&out),
        helm_version = "v3.22.0",
    );
    bench::write_section(
        "render",
        "`cargo xtask bench render` — `wactl render staging` vs `helm template`.",
        &markdown,
    )?;
    println!("{markdown}");
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The 1-minute load average, as the table reports it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

pub(crate) fn read_objects(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths
        .iter()
        .map(|p| Ok(serde_saphyr::from_str(&std::fs::read_to_string(p)?)?))
        .collect()
}

/// One template per object; every scalar is looked up from `values.yaml`.
pub(crate) fn write_chart(chart: &Path, objects: &[Value]) -> anyhow::Result<()> {
    std::fs::create_dir_all(chart.join("templates"))?;
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: world-address\nversion: 0.1.0\n",
    )?;
    let mut values = BTreeMap::new();
    for (i, object) in objects.iter().enumerate() {
        let key = format!("o{i}");
        let mut leaves = BTreeMap::new();
        let template = templated(object, &key, &mut leaves);
        values.insert(key, leaves);
        std::fs::write(
            chart.join(format!("templates/{i:02}.yaml")),
            serde_json::to_string_pretty(&template)?
                .replace("\"{{", "{{")
                .replace("}}\"", "}}"),
        )?;
    }
    std::fs::write(
        chart.join("values.yaml"),
        serde_json::to_string_pretty(&values)?,
    )?;
    Ok(())
}

fn templated(value: &Value, key: &str, leaves: &mut BTreeMap<String, Value>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), templated(v, key, leaves)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| templated(v, key, leaves)).collect())
        }
        scalar => {
            let leaf = format!("v{}", leaves.len());
            leaves.insert(leaf.clone(), scalar.clone());
            Value::String(format!("{{{{ .Values.{key}.{leaf} | toJson }}}}"))
        }
    }
}

fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(|o| o.to_string());
    objects
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
