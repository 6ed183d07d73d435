//! The project's own workflows: they call wactl (never kubectl or docker), ask for the
//! least permissions they need, pin every action by commit SHA, never persist the checkout's
//! credentials, and pass actionlint and zizmor.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ACTIONLINT_VERSION: &str = "1.7.12";
const ZIZMOR_VERSION: &str = "1.32.0";

fn workflows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows")
}

fn workflow(name: &str) -> Value {
    let path = workflows_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every `run:` script of every job.
fn scripts(workflow: &Value) -> Vec<String> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn deploy_workflow_dispatches_staging_or_production() {
    let deploy = workflow("deploy.yml");
    let on = &deploy["on"];
    assert_eq!(on["push"]["branches"], serde_json::json!(["main"]));
    let input = &on["workflow_dispatch"]["inputs"]["environment"];
    assert_eq!(input["type"], "choice");
    assert_eq!(
        input["options"],
        serde_json::json!(["staging", "production"])
    );
    assert_eq!(
        deploy["permissions"],
        serde_json::json!({}),
        "nothing by default"
    );

    let job = &deploy["jobs"]["deploy"];
    let environment = job["environment"]["name"].as_str().expect("environment");
    assert!(environment.contains("inputs.environment") && environment.contains("'staging'"));
    assert_eq!(job["permissions"]["deployments"], "write");
    assert_eq!(job["permissions"]["contents"], "read");
    assert!(job["permissions"].get("pull-requests").is_none());
    // It reads the reviewed plan from the pull request's run, and applies it on a push.
    assert_eq!(job["permissions"]["actions"], "read");
    let fetch = job["steps"]
        .as_array()
        .expect("deploy steps")
        .iter()
        .find(|step| step["name"] == "Reviewed plan")
        .expect("the Reviewed plan step");
    assert_eq!(fetch["if"], "github.event_name == 'push'");
    assert!(
        fetch["run"]
            .as_str()
            .expect("run")
            .contains("--name wactl-plan-staging"),
        "{fetch}"
    );
    assert!(
        job["concurrency"]["group"]
            .as_str()
            .expect("group")
            .contains("inputs.environment")
    );
    assert_eq!(job["concurrency"]["cancel-in-progress"], false);

    let plan = &deploy["jobs"]["plan"];
    assert_eq!(plan["permissions"]["pull-requests"], "write");
    assert!(plan["permissions"].get("deployments").is_none());
    // The number reaches the script through the environment, never spliced into it.
    let diff = plan["steps"]
        .as_array()
        .expect("plan steps")
        .iter()
        .find(|step| step["name"] == "wactl diff staging")
        .expect("the wactl diff staging step");
    assert_eq!(diff["env"]["PR_NUMBER"], "${{ github.event.number }}");
    assert!(
        diff["run"]
            .as_str()
            .expect("run")
            .contains("diff staging --comment-pr \"$PR_NUMBER\""),
        "{diff}"
    );
    assert!(
        diff["run"]
            .as_str()
            .expect("run")
            .contains("--save-plan \"$RUNNER_TEMP/plan-staging.json\""),
        "{diff}"
    );
    let upload = plan["steps"]
        .as_array()
        .expect("plan steps")
        .iter()
        .find(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("the plan is kept as an artifact");
    assert_eq!(upload["with"]["name"], "wactl-plan-staging");
    assert!(
        scripts(&deploy)
            .iter()
            .any(|s| s.contains("wactl \"${args[@]}\"")
                && s.contains("--plan \"$RUNNER_TEMP/plan/plan-staging.json\""))
    );
}

#[test]
fn previews_go_up_on_push_down_on_close_and_are_collected_on_a_schedule() {
    let preview = workflow("preview.yml");
    assert_eq!(
        preview["on"]["pull_request"]["types"],
        serde_json::json!(["opened", "synchronize", "reopened", "closed"])
    );
    assert!(preview["on"]["schedule"][0]["cron"].is_string());
    let jobs = &preview["jobs"];
    let expected = [
        (
            "up",
            "github.event.action != 'closed'",
            "wactl preview up \"$PR_NUMBER\" --yes",
        ),
        (
            "down",
            "github.event.action == 'closed'",
            "wactl preview down \"$PR_NUMBER\"",
        ),
        ("gc", "github.event_name == 'schedule'", "wactl preview gc"),
    ];
    for (name, condition, command) in expected {
        let job = &jobs[name];
        assert!(
            job["if"].as_str().is_some_and(|c| c.contains(condition)),
            "{name}: {}",
            job["if"]
        );
        let runs: Vec<&str> = job["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["run"].as_str())
            .filter(|r| r.contains(command))
            .collect();
        assert_eq!(runs.len(), 1, "{name} runs `{command}` once");
        assert_eq!(job["permissions"]["deployments"], "write", "{name}");
    }
    assert_eq!(jobs.as_object().expect("jobs").len(), expected.len());
    // Without --from the previews copy the one environment that says `previews: true`.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    let bases: Vec<String> = wactl::config::environment_names(&dir)
        .expect("environments")
        .into_iter()
        .filter(|name| wactl::config::load(&dir, name).is_ok_and(|env| env.previews))
        .collect();
    assert_eq!(bases, ["staging"]);
}

#[test]
fn drift_runs_on_a_schedule_and_only_reads() {
    let drift = workflow("drift.yml");
    assert!(
        drift["on"]["schedule"][0]["cron"].is_string(),
        "{:#}",
        drift["on"]
    );
    let job = &drift["jobs"]["drift"];
    assert_eq!(
        job["permissions"],
        serde_json::json!({ "contents": "read" })
    );
    assert_eq!(
        job["strategy"]["matrix"]["environment"],
        serde_json::json!(["staging", "production"])
    );
    let runs: Vec<String> = scripts(&drift)
        .into_iter()
        .filter(|s| s.contains("wactl drift \"$WACTL_ENVIRONMENT\""))
        .collect();
    assert_eq!(runs.len(), 1, "{:?}", scripts(&drift));
}

#[test]
fn workflows_call_wactl_not_kubectl_or_docker() {
    for name in ["ci.yml", "deploy.yml", "drift.yml", "preview.yml"] {
        for script in scripts(&workflow(name)) {
            for word in script.split_whitespace() {
                let program = word.rsplit('/').next().unwrap_or(word);
                assert!(
                    !matches!(program, "kubectl" | "docker" | "helm"),
                    "{name} runs `{word}` directly: {script}"
                );
            }
        }
    }
    let ci = scripts(&workflow("ci.yml")).join("\n");
    for step in ["cargo fmt --all --check", "cargo clippy", "xtask test"] {
        assert!(ci.contains(step), "ci.yml runs {step}");
    }
}

/// actionlint, as `cargo xtask test` hands it over, or already in the cache.
fn actionlint() -> PathBuf {
    if let Some(path) = std::env::var_os("WACTL_ACTIONLINT").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("WACTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wactl")));
    let cached = cache.map(|dir| dir.join(format!("bin/actionlint-{ACTIONLINT_VERSION}")));
    match cached {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "actionlint is not available: WACTL_ACTIONLINT is not set and \
             ~/.cache/wactl/bin/actionlint-{ACTIONLINT_VERSION} does not exist. \
             `cargo xtask test` builds it from the Go module proxy \
             (go install github.com/rhysd/actionlint/cmd/actionlint@v{ACTIONLINT_VERSION})."
        ),
    }
}

#[test]
#[ignore = "needs infra: cargo xtask test builds actionlint from the Go module proxy"]
fn workflows_pass_actionlint() {
    let actionlint = actionlint();
    let files: Vec<PathBuf> = workflow_files().into_iter().map(|(path, _)| path).collect();
    assert!(files.len() >= 2, "ci.yml and deploy.yml: {files:?}");
    let output = Command::new(&actionlint)
        .arg("-no-color")
        .args(&files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", actionlint.display()));
    assert!(
        output.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every workflow file, sorted, with its text.
fn workflow_files() -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workflows_dir())
        .expect("workflows directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path, text)
        })
        .collect()
}

/// Every `uses:` of a workflow: job-level (reusable workflows) and step-level.
fn uses_count(workflow: &Value) -> usize {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    jobs.values()
        .map(|job| {
            usize::from(job.get("uses").is_some())
                + job["steps"].as_array().map_or(0, |steps| {
                    steps.iter().filter(|s| s.get("uses").is_some()).count()
                })
        })
        .sum()
}

/// The `uses:` lines of a workflow's text that are not pinned: a third-party action must be
/// `owner/repo[/path]@<40-hex commit>` followed by `# vX.Y.Z`, a container `docker://…@sha256:`.
/// Tags and branches move; a commit does not. Returns (lines scanned, problems).
fn unpinned_uses(text: &str) -> (usize, Vec<String>) {
    let commit = regex::Regex::new(r"^[0-9a-f]{40}$").expect("commit regex");
    let version = regex::Regex::new(r"^v\d+(\.\d+)*$").expect("version regex");
    let digest = regex::Regex::new(r"@sha256:[0-9a-f]{64}$").expect("digest regex");
    let mut scanned = 0;
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let key = line.trim_start();
        let key = key.strip_prefix("- ").unwrap_or(key).trim_start();
        let Some(rest) = key.strip_prefix("uses:") else {
            continue;
        };
        scanned += 1;
        let (reference, comment) = match rest.split_once(" #") {
            Some((reference, comment)) => (reference, Some(comment.trim())),
            None => (rest, None),
        };
        let reference = reference.trim().trim_matches(|c| c == '"' || c == '\'');
        let place = format!("line {}: `{}`", index + 1, line.trim());
        if reference.starts_with("./") {
            continue;
        }
        if let Some(image) = reference.strip_prefix("docker://") {
            if !digest.is_match(image) {
                problems.push(format!("{place}: container not pinned by @sha256: digest"));
            }
            continue;
        }
        let Some((_, git_ref)) = reference.split_once('@') else {
            problems.push(format!("{place}: no @ref"));
            continue;
        };
        if !commit.is_match(git_ref) {
            problems.push(format!(
                "{place}: referenced by `{git_ref}`, not by a full 40-hex commit SHA"
            ));
            continue;
        }
        let tag = comment.and_then(|c| c.split_whitespace().next());
        if !tag.is_some_and(|t| version.is_match(t)) {
            problems.push(format!(
                "{place}: no `# vX.Y.Z` comment naming the version the SHA is"
            ));
        }
    }
    (scanned, problems)
}

/// `actions/checkout` steps that leave the job token in `.git/config` for every later step
/// (and any artifact that includes the checkout): `persist-credentials: false` is required.
fn persisted_checkouts(workflow: &Value) -> (usize, Vec<String>) {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, job) in jobs {
        for (index, step) in job["steps"].as_array().into_iter().flatten().enumerate() {
            let Some(uses) = step["uses"].as_str() else {
                continue;
            };
            if !uses.starts_with("actions/checkout@") {
                continue;
            }
            checked += 1;
            if step["with"]["persist-credentials"] != Value::Bool(false) {
                problems.push(format!(
                    "job `{name}` step {}: {uses} without `persist-credentials: false`",
                    index + 1
                ));
            }
        }
    }
    (checked, problems)
}

/// Least privilege: the workflow grants nothing or read-only at the top, and every job says
/// what it needs (`permissions:` on the job), never `write-all`.
fn permission_problems(workflow: &Value) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    match workflow.get("permissions") {
        None => problems.push(
            "no top-level `permissions:`: the default token may write (set `permissions: {}`)"
                .to_owned(),
        ),
        Some(Value::String(all)) if all == "read-all" => {}
        Some(Value::Object(scopes)) => {
            for (scope, access) in scopes {
                let access = access.as_str().unwrap_or("?");
                if access != "read" && access != "none" {
                    problems.push(format!(
                        "top-level `permissions: {scope}: {access}`: widen per job, not for all"
                    ));
                }
            }
        }
        Some(other) => problems.push(format!("top-level `permissions: {other}`: not read-only")),
    }
    let jobs = workflow["jobs"].as_object().expect("jobs");
    for (name, job) in jobs {
        match job.get("permissions") {
            None => problems.push(format!("job `{name}` has no explicit `permissions:`")),
            Some(Value::Object(_)) => {}
            Some(Value::String(all)) if all == "read-all" => {}
            Some(other) => problems.push(format!(
                "job `{name}` has `permissions: {other}`: list the scopes it needs"
            )),
        }
    }
    (jobs.len(), problems)
}

#[test]
fn workflows_pin_actions_keep_no_credentials_and_grant_least_privilege() {
    let files = workflow_files();
    assert!(files.len() >= 2, "ci.yml and deploy.yml: {files:?}");
    let (mut uses, mut checkouts, mut jobs) = (0, 0, 0);
    let mut problems = Vec::new();
    for (path, text) in &files {
        let name = path.file_name().expect("file name").to_string_lossy();
        let parsed: Value = serde_saphyr::from_str(text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        let (scanned, found) = unpinned_uses(text);
        // The line scan must see every `uses:` the YAML has (none hidden in flow style).
        assert_eq!(
            scanned,
            uses_count(&parsed),
            "{name}: `uses:` lines scanned"
        );
        uses += scanned;
        problems.extend(found.into_iter().map(|p| format!("{name} {p}")));
        let (checked, found) = persisted_checkouts(&parsed);
        checkouts += checked;
        problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
        let (checked, found) = permission_problems(&parsed);
        jobs += checked;
        problems.extend(found.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // ci.yml: 2 checkouts, 2 caches, setup-go; deploy.yml: 2 checkouts, 1 cache.
    assert!(uses >= 8, "uses: lines checked: {uses}");
    assert!(checkouts >= 4, "checkout steps checked: {checkouts}");
    assert!(jobs >= 4, "jobs checked: {jobs}");
}

#[test]
fn pinning_check_refuses_tags_short_shas_and_missing_versions() {
    let text = "\
jobs:
  a:
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/checkout@v4
      - uses: actions/cache@5a3ec84
      - uses: actions/setup-go@d35c59abb061a4a6fb18e82ac0862c26744d6ab5
      - uses: 'actions/cache@5a3ec84eff668545956fd18022155c47e93e2684' # main
      - uses: ./.github/actions/local
      - uses: docker://alpine:3.22
  b:
    uses: octo/repo/.github/workflows/x.yml@main
";
    let (scanned, problems) = unpinned_uses(text);
    assert_eq!(scanned, 8);
    let parsed: Value = serde_saphyr::from_str(text).expect("yaml");
    assert_eq!(uses_count(&parsed), 8);
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().expect("line"))
        .collect();
    assert_eq!(
        lines,
        ["line 5", "line 6", "line 7", "line 8", "line 10", "line 12"],
        "{problems:#?}"
    );
    assert!(
        problems[0].contains("referenced by `v4`"),
        "{}",
        problems[0]
    );
    assert!(problems[2].contains("# vX.Y.Z"), "{}", problems[2]);
}

#[test]
fn credential_and_permission_checks_refuse_what_they_should() {
    let workflow: Value = serde_saphyr::from_str(
        "\
permissions:
  contents: write
jobs:
  kept:
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: true
  clean:
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
  everything:
    permissions: write-all
    steps:
      - run: true
",
    )
    .expect("yaml");
    let (checked, problems) = persisted_checkouts(&workflow);
    assert_eq!(checked, 3);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems.iter().all(|p| p.starts_with("job `kept`")));

    let (jobs, problems) = permission_problems(&workflow);
    assert_eq!(jobs, 3);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("contents: write"), "{}", problems[0]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("job `kept` has no explicit"))
    );
    assert!(problems.iter().any(|p| p.contains("job `everything`")));

    let none: Value = serde_saphyr::from_str("jobs:\n  a:\n    permissions: {}\n").expect("yaml");
    let (_, problems) = permission_problems(&none);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("no top-level"), "{}", problems[0]);
}

/// zizmor, as `cargo xtask test` hands it over, or already in the cache.
fn zizmor() -> PathBuf {
    if let Some(path) = std::env::var_os("WACTL_ZIZMOR").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("WACTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/wactl")));
    let cached = cache.map(|dir| dir.join(format!("venv/zizmor-{ZIZMOR_VERSION}/bin/zizmor")));
    match cached {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "zizmor is not available: WACTL_ZIZMOR is not set and \
             ~/.cache/wactl/venv/zizmor-{ZIZMOR_VERSION}/bin/zizmor does not exist. \
             `cargo xtask test` installs it from PyPI (pip install zizmor=={ZIZMOR_VERSION})."
        ),
    }
}

/// zizmor's audits on `.github/`, with the pedantic persona (code smells too, such as a
/// permission without a comment saying why). Offline: the online audits need GitHub's API,
/// and the pins themselves are checked above.
#[test]
#[ignore = "needs infra: cargo xtask test installs zizmor from PyPI"]
fn workflows_pass_zizmor() {
    let zizmor = zizmor();
    let output = Command::new(&zizmor)
        .args(["--offline", "--no-progress", "--color", "never"])
        .args(["--persona", "pedantic", "--format", "json", ".github/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", zizmor.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let findings: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("zizmor's JSON: {e}\n{stdout}\n{stderr}"));
    let summary: Vec<String> = findings
        .iter()
        .map(|f| {
            let place = &f["locations"][0];
            format!(
                "{} ({}) at {}:{}",
                f["ident"].as_str().unwrap_or("?"),
                f["determinations"]["severity"].as_str().unwrap_or("?"),
                place["symbolic"]["key"]["Local"]["verbatim_path"]
                    .as_str()
                    .unwrap_or("?"),
                // zizmor counts rows from 0.
                place["concrete"]["location"]["start_point"]["row"]
                    .as_u64()
                    .map_or(0, |row| row + 1)
            )
        })
        .collect();
    assert!(
        output.status.success() && findings.is_empty(),
        "zizmor found problems ({}); run `{} --offline --persona pedantic .github/` for details:\n{}\n{stderr}",
        output.status,
        zizmor.display(),
        summary.join("\n")
    );
    // It audited the workflows rather than finding nothing to read.
    for (path, _) in workflow_files() {
        let name = path.file_name().expect("file name").to_string_lossy();
        assert!(
            stderr.contains(&format!("completed .github/workflows/{name}")),
            "zizmor did not audit {name}:\n{stderr}"
        );
    }
}
