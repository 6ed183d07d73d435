use super::*;
use std::fs;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn problems(dir: &tempfile::TempDir, env: &str) -> Vec<Problem> {
    load(dir.path(), env).unwrap_err().problems
}

#[test]
fn later_values_win_and_maps_merge_by_key() {
    let dir = dir_with(&[
        (
            "base.yaml",
            "app: { name: svc, port: 8080 }\nconfig: { A: '1', B: '2' }\nreplicas: 2\n",
        ),
        (
            "prod.yaml",
            "extends: base\nreplicas: 4\nconfig: { B: three, C: '4' }\n",
        ),
    ]);
    let env = load(dir.path(), "prod").unwrap();
    assert_eq!(env.replicas, 4);
    assert_eq!(env.app.port, 8080);
    assert_eq!(env.config.get("A").map(String::as_str), Some("1"));
    assert_eq!(env.config.get("B").map(String::as_str), Some("three"));
    assert_eq!(env.config.len(), 3);
    assert_eq!(env.files, ["prod.yaml", "base.yaml"]);
}

#[test]
fn smoke_checks_merge_by_name() {
    let dir = dir_with(&[
        (
            "base.yaml",
            "smoke:\n  checks:\n    - { name: a, path: /a }\n    - { name: b, path: /b }\n",
        ),
        (
            "e.yaml",
            "extends: base\nsmoke:\n  checks:\n    - { name: b, path: /b2 }\n    - { name: c, path: /c }\n",
        ),
    ]);
    let env = load(dir.path(), "e").unwrap();
    let paths: Vec<&str> = env.smoke.checks.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/a", "/b2", "/c"]);
}

#[test]
fn unknown_field_suggests_the_closest() {
    let dir = dir_with(&[("e.yaml", "autoscaling:\n  enabled: true\n  maxx: 3\n")]);
    let p = &problems(&dir, "e")[0];
    assert_eq!(p.at, Some(Position { line: 3, column: 3 }));
    assert_eq!(p.hint.as_deref(), Some("did you mean `max`?"));
}

#[test]
fn semantic_problems_are_all_reported_with_their_file_and_line() {
    let dir = dir_with(&[
        (
            "base.yaml",
            "autoscaling:\n  enabled: true\n  min: 5\n  cpu: 70\n",
        ),
        (
            "e.yaml",
            "extends: base\nautoscaling:\n  max: 2\nresources:\n  requests: { cpu: 2, memory: 1Gi }\n  limits: { cpu: 1, memory: 1Zi }\n",
        ),
    ]);
    let found = problems(&dir, "e");
    assert_eq!(found.len(), 3, "{found:#?}");
    let min = found
        .iter()
        .find(|p| p.field.as_deref() == Some("autoscaling.min"))
        .unwrap();
    assert!(
        min.file.ends_with("base.yaml") && min.at.unwrap().line == 3,
        "{min:?}"
    );
    let memory = found
        .iter()
        .find(|p| p.field.as_deref() == Some("resources.limits.memory"))
        .unwrap();
    assert!(
        memory.file.ends_with("e.yaml") && memory.at.unwrap().line == 6,
        "{memory:?}"
    );
    assert!(found.iter().any(|p| {
        p.message
            .contains("cpu request 2 is larger than its limit 1")
    }));
}

#[test]
fn extends_cycles_and_missing_targets() {
    let dir = dir_with(&[
        ("a.yaml", "extends: b\n"),
        ("b.yaml", "extends: a\n"),
        ("c.yaml", "extends: bsae\n"),
        ("bsa.yaml", "replicas: 1\n"),
    ]);
    assert!(problems(&dir, "a")[0].message.contains("cycle: a → b → a"));
    let missing = &problems(&dir, "c")[0];
    assert!(missing.message.contains("does not exist"));
    assert_eq!(missing.hint.as_deref(), Some("did you mean `bsa`?"));
}

#[test]
fn empty_and_non_utf8_files_are_refused() {
    let dir = dir_with(&[("e.yaml", "# only a comment\n")]);
    assert!(problems(&dir, "e")[0].message.contains("empty"));
    fs::write(
        dir.path().join("e.yaml"),
        b"replicas: 1\napp: { name: \xff }\n",
    )
    .unwrap();
    let p = &problems(&dir, "e")[0];
    assert!(p.message.contains("UTF-8"));
    assert_eq!(
        p.at,
        Some(Position {
            line: 2,
            column: 14
        })
    );
}

#[test]
fn repository_environments_resolve() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    for name in environment_names(&dir).unwrap() {
        load(&dir, &name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// A cheap, deterministic stand-in for the fuzz target (`cargo xtask fuzz`): byte-level
/// mutations of every corpus file must give an error or a model, never a panic.
/// Every input of the fuzz corpus (`cargo xtask fuzz` names them by content hash) and the
/// repository's own definitions, each mutated a few times: loading never panics, and the
/// mutants reach both outcomes.
#[test]
fn mutated_definitions_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["fuzz/corpus/environment", "environments"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            inputs.push(entry.unwrap().path());
        }
    }
    inputs.sort();
    let mut seed: u64 = 0x5eed;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % bound.max(1) as u64).unwrap_or(0)
    };
    let alphabet = b" :-{}[]&*!|>#\t\n\"'0123456789abcxyz%@";
    const MUTANTS: usize = 2;
    let (mut tried, mut loaded, mut refused) = (0, 0, 0);
    for path in &inputs {
        let original = fs::read(path).unwrap();
        for _ in 0..MUTANTS {
            let mut bytes = original.clone();
            for _ in 0..=next(3) {
                let at = next(bytes.len() + 1);
                match next(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, alphabet[next(alphabet.len())]),
                    _ if at < bytes.len() => bytes[at] = alphabet[next(alphabet.len())],
                    _ => {}
                }
            }
            tried += 1;
            let text = String::from_utf8_lossy(&bytes);
            match load_from_str("mutant", &text) {
                Ok(_) => loaded += 1,
                Err(e) => {
                    assert!(!e.to_string().is_empty(), "an empty error for {path:?}");
                    refused += 1;
                }
            }
        }
    }
    assert!(
        inputs.len() > 100,
        "corpus and environments: {}",
        inputs.len()
    );
    assert_eq!(tried, inputs.len() * MUTANTS);
    assert_eq!(loaded + refused, tried);
    assert!(
        loaded > 0 && refused > 0,
        "{loaded} loaded, {refused} refused"
    );
}

#[test]
fn scheduling_and_node_port_are_checked_with_their_place() {
    let dir = dir_with(&[(
        "e.yaml",
        "scheduling:\n  nodeSelector: { 'bad key!': x }\n  tolerate: [wactl.dev/real-node, '-x']\n\
         service:\n  nodePort: 8080\n",
    )]);
    let found = problems(&dir, "e");
    let fields: Vec<&str> = found.iter().filter_map(|p| p.field.as_deref()).collect();
    assert!(
        fields.contains(&"scheduling.nodeSelector.bad key!"),
        "{fields:?}"
    );
    assert!(fields.contains(&"scheduling.tolerate[1]"), "{fields:?}");
    assert!(fields.contains(&"service.nodePort"), "{fields:?}");
    assert_eq!(found.len(), 3, "{fields:?}");

    let dir = dir_with(&[(
        "e.yaml",
        "scheduling:\n  nodeSelector: { wactl.dev/node: real }\n  tolerate: [wactl.dev/real-node]\n\
         service:\n  nodePort: 30080\n",
    )]);
    let env = load(dir.path(), "e").unwrap();
    assert_eq!(env.service.node_port, Some(30080));
    assert_eq!(env.scheduling.tolerate, ["wactl.dev/real-node"]);
    assert_eq!(
        env.scheduling
            .node_selector
            .get("wactl.dev/node")
            .map(String::as_str),
        Some("real")
    );
}

#[test]
fn a_rate_limit_burst_above_the_bound_is_refused_with_its_place() {
    let dir = dir_with(&[(
        "e.yaml",
        "ingress:\n  enabled: true\n  host: a.example\n  rateLimit: { requestsPerSecond: 20, burst: 4294967295 }\n",
    )]);
    let found = problems(&dir, "e");
    let burst: Vec<&Problem> = found
        .iter()
        .filter(|p| p.field.as_deref() == Some("ingress.rateLimit.burst"))
        .collect();
    assert_eq!(burst.len(), 1, "{found:?}");
    assert_eq!(
        burst[0].message,
        format!("burst must be at most {MAX_RATE_LIMIT_BURST} (got 4294967295)")
    );
    assert_eq!(burst[0].at.map(|p| p.line), Some(4), "{:?}", burst[0]);

    let dir = dir_with(&[(
        "e.yaml",
        "ingress:\n  enabled: true\n  host: a.example\n  rateLimit: { burst: 500 }\n",
    )]);
    let env = load(dir.path(), "e").unwrap();
    assert_eq!(env.ingress.rate_limit.burst, MAX_RATE_LIMIT_BURST);
}

#[test]
fn trusted_ca_from_a_config_map_or_a_secret_is_mounted_read_only() {
    for (yaml, kind) in [
        (
            "trustedCa: { configMap: rds-ca-bundle, key: ca.pem }\n",
            "configMap",
        ),
        ("trustedCa: { secret: db-ca, key: ca.crt }\n", "secret"),
    ] {
        let dir = dir_with(&[("e.yaml", yaml)]);
        let env = load(dir.path(), "e").unwrap();
        let ca = env.trusted_ca.clone().expect("trusted CA");
        assert!(ca.file.starts_with("/etc/address-service/ca/"), "{ca:?}");
        let rendered =
            crate::render::render(&env, &crate::render::RenderOptions::default()).unwrap();
        let (_, deployment) = rendered
            .files
            .iter()
            .find(|(path, _)| path.contains("-deployment-"))
            .expect("a Deployment");
        assert!(
            deployment.contains(&format!(
                "- name: SSL_CERT_FILE\n          value: {}\n",
                ca.file
            )),
            "{deployment}"
        );
        assert!(deployment.contains("readOnly: true"), "{deployment}");
        assert!(
            deployment.contains(&format!("      - name: trusted-ca\n        {kind}:\n")),
            "{kind} volume in\n{deployment}"
        );
        assert!(
            deployment.contains(&format!(
                "- key: {}\n            path: {}\n",
                ca.key, ca.key
            )),
            "{deployment}"
        );
    }
}

#[test]
fn trusted_ca_problems_name_the_field() {
    for (yaml, field) in [
        (
            "trustedCa: { secret: a, configMap: b, key: ca.pem }\n",
            "trustedCa",
        ),
        ("trustedCa: { secret: db-ca }\n", "trustedCa.key"),
        (
            "trustedCa: { secret: Db_CA, key: ca.pem }\n",
            "trustedCa.secret",
        ),
        ("trustedCa: { configMap: ca, key: ../x }\n", "trustedCa.key"),
        (
            "trustedCa: { configMap: ca, key: ca.pem }\nconfig: { SSL_CERT_FILE: /x }\n",
            "trustedCa",
        ),
    ] {
        let dir = dir_with(&[("e.yaml", yaml)]);
        let found = problems(&dir, "e");
        assert!(
            found.iter().any(|p| p.field.as_deref() == Some(field)),
            "{yaml}: {found:?}"
        );
    }
}

#[test]
fn clusters_start_from_cluster_and_merge_by_name_along_extends() {
    let dir = dir_with(&[
        (
            "base.yaml",
            "cluster: { namespace: wa, context: one }\nreplicas: 2\nconfig: { A: '1' }\n\
             clusters:\n  - { name: eu-1 }\n  - { name: us-1, context: two, wave: 2 }\n",
        ),
        (
            "prod.yaml",
            "extends: base\nclusters:\n  - { name: us-1, namespace: wa-us, replicas: 5, config: { A: '2' } }\n  - { name: ap-1, context: three, wave: 2 }\n",
        ),
    ]);
    let env = load(dir.path(), "prod").unwrap();
    assert!(env.is_fleet());
    assert_eq!(env.cluster_names(), ["eu-1", "us-1", "ap-1"]);
    // The same name replaced its inherited entry: us-1 lost its context and wave.
    let us = &env.clusters[1];
    assert_eq!(
        (us.cluster.context.as_deref(), us.wave, us.replicas),
        (Some("one"), 1, 5)
    );
    assert_eq!(us.cluster.namespace, "wa-us");
    assert_eq!(us.config.get("A").map(String::as_str), Some("2"));
    let eu = &env.clusters[0];
    assert_eq!(
        (eu.cluster.namespace.as_str(), eu.replicas, eu.wave),
        ("wa", 2, 1)
    );
    assert_eq!(eu.config.get("A").map(String::as_str), Some("1"));
}

#[test]
fn targets_come_in_wave_order_each_with_its_own_cluster() {
    let dir = dir_with(&[(
        "p.yaml",
        "cluster: { namespace: wa }\ngithub: { environment: production }\nsmoke: { url: 'http://x' }\n\
         clusters:\n  - { name: late, context: c, wave: 3 }\n  - { name: a, context: a }\n\
         \x20 - { name: b, context: b, wave: 2, smokeUrl: 'http://b' }\n  - { name: a2, context: a2 }\n",
    )]);
    let env = load(dir.path(), "p").unwrap();
    let targets = env.targets();
    let order: Vec<(Option<&str>, u32)> = targets
        .iter()
        .map(|t| (t.name.as_deref(), t.wave))
        .collect();
    assert_eq!(
        order,
        [
            (Some("a"), 1),
            (Some("a2"), 1),
            (Some("b"), 2),
            (Some("late"), 3)
        ]
    );
    let b = &targets[2].environment;
    assert!(b.clusters.is_empty());
    assert_eq!(b.cluster.context.as_deref(), Some("b"));
    assert_eq!(b.smoke.url.as_deref(), Some("http://b"));
    assert_eq!(b.github.environment, "production/b");
    assert_eq!(
        targets[0].environment.smoke.url.as_deref(),
        Some("http://x")
    );
}

#[test]
fn a_single_cluster_environment_is_one_target_as_it_is() {
    let dir = dir_with(&[("s.yaml", "cluster: { namespace: wa, context: one }\n")]);
    let env = load(dir.path(), "s").unwrap();
    assert!(!env.is_fleet());
    let targets = env.targets();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].name, None);
    assert_eq!(targets[0].environment.github.environment, "s");
}

#[test]
fn cluster_list_problems_are_located() {
    let dir = dir_with(&[(
        "bad.yaml",
        "cluster: { namespace: wa }\nclusters:\n  - { name: eu-1, context: a }\n  - { name: eu-1, context: b }\n  - { name: Bad_Name, context: c, wave: 0 }\n  - { context: d }\n  - { name: twin, context: a }\n",
    )]);
    let found = problems(&dir, "bad");
    let located: Vec<(Option<&str>, Option<usize>)> = found
        .iter()
        .map(|p| (p.field.as_deref(), p.at.map(|a| a.line)))
        .collect();
    for (field, line) in [
        ("clusters[1].name", 4),
        ("clusters[2].name", 5),
        ("clusters[2].wave", 5),
        ("clusters[3]", 6),
        ("clusters[4]", 7),
    ] {
        assert!(
            located.contains(&(Some(field), Some(line))),
            "{field} at line {line} in {located:?}"
        );
    }
    assert_eq!(found.len(), 5, "{found:?}");
    let empty = dir_with(&[("e.yaml", "clusters: []\n")]);
    let found = problems(&empty, "e");
    assert_eq!(found[0].field.as_deref(), Some("clusters"));
}

const BUNDLED: &str =
    "components:\n  prometheus: { enabled: true }\nmonitoring: { mode: bundled }\n";

#[test]
fn a_canary_gets_default_steps_and_metrics_from_the_alert_thresholds() {
    let dir = dir_with(&[(
        "e.yaml",
        &format!("{BUNDLED}rollout:\n  strategy: canary\n"),
    )]);
    let env = load(dir.path(), "e").unwrap();
    let canary = env.rollout.canary.expect("canary");
    let steps: Vec<(u32, u64)> = canary
        .steps
        .iter()
        .map(|s| (s.weight, s.analyze_seconds))
        .collect();
    assert_eq!(steps, [(25, 60), (50, 60)]);
    let a = &canary.analysis;
    assert_eq!(
        (a.interval_seconds, a.failure_limit, a.inconclusive_limit),
        (10, 1, 2)
    );
    assert!(a.baseline);
    let names: Vec<&str> = a.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["success-rate", "p95-latency-seconds"]);
    assert_eq!(
        a.metrics[0].bound,
        model::Bound::Min(1.0 - model::slo::ERROR_RATIO)
    );
    assert_eq!(
        a.metrics[1].bound,
        model::Bound::Max(model::slo::P95_SECONDS)
    );
    // The window covers at least four scrapes (the default scrape interval is 15 s).
    assert_eq!(a.window_seconds, 60);
    let rolling = dir_with(&[("e.yaml", "rollout: { strategy: rolling }\n")]);
    assert!(load(rolling.path(), "e").unwrap().rollout.canary.is_none());
}

#[test]
fn every_bad_canary_value_is_reported_at_its_field() {
    let dir = dir_with(&[(
        "e.yaml",
        "rollout:\n  strategy: canary\n  steps:\n    - { weight: 50, analyze: 5s }\n    - { weight: 40, analyze: 60s }\n    - { weight: 100, analyze: soon }\n  analysis:\n    interval: 10s\n    failureLimit: 0\n    metrics:\n      - { name: a, query: 'up', min: 1 }\n      - { name: a, query: 'x{track=\"$track\"}', min: 1, max: 2 }\n      - { query: 'x{track=\"$track\"}' }\n",
    )]);
    let found = problems(&dir, "e");
    let fields: Vec<&str> = found.iter().filter_map(|p| p.field.as_deref()).collect();
    for expected in [
        "rollout.strategy",
        "rollout.steps[0].analyze",
        "rollout.steps[1].weight",
        "rollout.steps[2].weight",
        "rollout.steps[2].analyze",
        "rollout.analysis.failureLimit",
        "rollout.analysis.metrics[0].query",
        "rollout.analysis.metrics[1].name",
        "rollout.analysis.metrics[1]",
        "rollout.analysis.metrics[2].name",
        "rollout.analysis.metrics[2]",
    ] {
        assert!(fields.contains(&expected), "{expected} not in {fields:?}");
    }
    // Each with its line in e.yaml.
    let weight = found
        .iter()
        .find(|p| p.field.as_deref() == Some("rollout.steps[1].weight"))
        .unwrap();
    assert_eq!(weight.at.map(|a| a.line), Some(5), "{weight:?}");
    assert!(weight.message.contains("does not grow"), "{weight:?}");
}

#[test]
fn canary_settings_without_the_canary_strategy_are_refused() {
    let dir = dir_with(&[(
        "e.yaml",
        "rollout:\n  steps:\n    - { weight: 50, analyze: 60s }\n",
    )]);
    let found = problems(&dir, "e");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].field.as_deref(), Some("rollout.steps"));
    assert!(
        found[0].message.contains("strategy: canary"),
        "{:?}",
        found[0]
    );
}

#[test]
fn an_analysis_prometheus_url_is_checked_and_never_echoes_credentials() {
    let canary = |prometheus: &str| {
        format!(
            "{BUNDLED}rollout:\n  strategy: canary\n  analysis:\n    prometheus: {prometheus}\n"
        )
    };
    let good = dir_with(&[("e.yaml", &canary("http://127.0.0.1:30097/"))]);
    let analysis = load(good.path(), "e")
        .unwrap()
        .rollout
        .canary
        .unwrap()
        .analysis;
    assert_eq!(
        analysis.prometheus,
        model::AnalysisPrometheus::Url("http://127.0.0.1:30097".into())
    );
    let bundled = dir_with(&[(
        "e.yaml",
        &format!("{BUNDLED}rollout: {{ strategy: canary }}\n"),
    )]);
    assert_eq!(
        load(bundled.path(), "e")
            .unwrap()
            .rollout
            .canary
            .unwrap()
            .analysis
            .prometheus,
        model::AnalysisPrometheus::Bundled
    );
    let bad = [
        "prometheus:9090",
        "ftp://127.0.0.1:9090",
        "'http://'",
        "'http://127.0.0.1:9090/?x=1'",
        "not a url",
        "https://ana:s3cret@prometheus.example.com",
    ];
    for url in bad {
        let dir = dir_with(&[("e.yaml", &canary(url))]);
        let found = problems(&dir, "e");
        assert_eq!(found.len(), 1, "{url}: {found:#?}");
        let problem = &found[0];
        assert_eq!(
            problem.field.as_deref(),
            Some("rollout.analysis.prometheus"),
            "{url}"
        );
        // Line 7 of e.yaml: after BUNDLED's three lines and `rollout`, `strategy`, `analysis`.
        assert_eq!(problem.at.map(|a| a.line), Some(7), "{url}: {problem:?}");
        assert!(!problem.message.contains("s3cret"), "{problem:?}");
    }
    assert_eq!(bad.len(), 6);
}

#[test]
fn a_canary_behind_an_ingress_of_another_class_is_refused_naming_the_class() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    let base = fs::read_to_string(repo.join("base.yaml")).unwrap();
    let staging = fs::read_to_string(repo.join("staging.yaml")).unwrap();
    let canary = "extends: staging\nrollout: { strategy: canary }\n";
    let dir = dir_with(&[
        ("base.yaml", &base),
        ("staging.yaml", &staging),
        ("nginx.yaml", canary),
        (
            "traefik.yaml",
            &format!("{canary}ingress:\n  className: traefik\n"),
        ),
        (
            "off.yaml",
            &format!("{canary}ingress:\n  enabled: false\n  className: traefik\n"),
        ),
    ]);
    let nginx = load(dir.path(), "nginx").unwrap_or_else(|e| panic!("{e}"));
    assert!(nginx.rollout.canary.is_some() && nginx.ingress.enabled);
    load(dir.path(), "off").unwrap_or_else(|e| panic!("no Ingress, no weight: {e}"));
    let found = problems(&dir, "traefik");
    assert_eq!(found.len(), 1, "{found:#?}");
    let class = &found[0];
    assert_eq!(
        class.field.as_deref(),
        Some("ingress.className"),
        "{class:?}"
    );
    assert!(
        class.file.ends_with("traefik.yaml") && class.at.unwrap().line == 4,
        "{class:?}"
    );
    assert!(
        class.message.contains("`traefik` is not `nginx`"),
        "{class:?}"
    );
}
