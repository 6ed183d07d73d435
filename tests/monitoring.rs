//! Monitoring in the cluster: the bundled Prometheus (and Grafana) and the Prometheus
//! Operator's objects, rendered from the same rules and dashboard as the local stack;
//! on the real node, Prometheus scrapes the pods, loads every rule, and an outage of
//! PostgreSQL fires its alert, which `wactl status` shows.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wactl::config::{self, Environment};
use wactl::render::{self, Manifest, RenderOptions, Rendered};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Environment {
    config::load(&root().join("environments"), name).unwrap_or_else(|e| panic!("{e}"))
}

fn rendered_with(env: &Environment, templates: Option<&Path>) -> Rendered {
    let options = RenderOptions {
        templates: templates.map(Path::to_owned),
        ..RenderOptions::default()
    };
    render::render(env, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn rendered(name: &str) -> Rendered {
    rendered_with(&load(name), None)
}

fn object<'a>(rendered: &'a Rendered, kind: &str, name: &str) -> &'a Manifest {
    rendered
        .manifests
        .iter()
        .find(|m| m.kind == kind && m.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn kinds_and_names(rendered: &Rendered, name_part: &str) -> BTreeSet<String> {
    rendered
        .manifests
        .iter()
        .filter(|m| m.name.contains(name_part))
        .map(|m| format!("{} {}", m.kind, m.name))
        .collect()
}

/// The rendered file without the header comment the ConfigMap copy also carries.
fn file<'a>(rendered: &'a Rendered, path: &str) -> &'a str {
    rendered
        .files
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not rendered"))
}

fn alert_names(rules_yml: &str) -> BTreeSet<String> {
    let rules: Value = serde_saphyr::from_str(rules_yml).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["alert"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn bundled_prometheus_with_kubernetes_discovery_is_limited_to_its_namespace() {
    let staging = rendered("staging");
    assert_eq!(
        kinds_and_names(&staging, "prometheus"),
        [
            "ConfigMap address-service-prometheus",
            "NetworkPolicy address-service-prometheus",
            "Role address-service-prometheus",
            "RoleBinding address-service-prometheus",
            "Service address-service-prometheus",
            "ServiceAccount address-service-prometheus",
            "StatefulSet address-service-prometheus",
        ]
        .map(String::from)
        .into()
    );
    assert!(
        !staging
            .manifests
            .iter()
            .any(|m| m.kind.starts_with("Cluster")),
        "nothing cluster-wide"
    );
    let role = &object(&staging, "Role", "address-service-prometheus").object;
    assert_eq!(role["metadata"]["namespace"], "world-address-staging");
    assert_eq!(
        role["rules"],
        serde_json::json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }])
    );
    let scrape: Value =
        serde_saphyr::from_str(file(&staging, "prometheus/prometheus-kubernetes.yml")).unwrap();
    let sd = &scrape["scrape_configs"][0]["kubernetes_sd_configs"][0];
    assert_eq!(sd["role"], "pod");
    assert_eq!(
        sd["namespaces"]["names"],
        serde_json::json!(["world-address-staging"])
    );
    // Only Prometheus' own account gets a token.
    let tokens: Vec<&str> = staging
        .manifests
        .iter()
        .filter(|m| m.kind == "StatefulSet" || m.kind == "Deployment")
        .filter(|m| m.object["spec"]["template"]["spec"]["automountServiceAccountToken"] != false)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(tokens, ["address-service-prometheus"]);
}

#[test]
fn the_configmap_holds_the_rendered_rules_and_the_pod_template_their_checksum() {
    for name in ["staging", "dev-monitor"] {
        let out = rendered(name);
        let config = &object(&out, "ConfigMap", "address-service-prometheus").object;
        assert_eq!(
            config["data"]["rules.yml"].as_str(),
            Some(file(&out, "prometheus/rules.yml")),
            "{name}: the same rules as the local stack and the promtool tests"
        );
        assert_eq!(
            config["data"]["prometheus.yml"].as_str(),
            Some(file(&out, "prometheus/prometheus-kubernetes.yml")),
            "{name}"
        );
        let statefulset = &object(&out, "StatefulSet", "address-service-prometheus").object;
        let hash =
            statefulset["spec"]["template"]["metadata"]["annotations"]["wactl.dev/config-hash"]
                .as_str()
                .unwrap();
        assert_eq!(hash.len(), 33, "{name}: two 16-digit checksums: {hash}");
        let mounts = &statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
        assert!(
            mounts
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/etc/prometheus"),
            "{name}: the ConfigMap is mounted where --config.file points"
        );
    }
}

/// A rule change alone rolls Prometheus (its pod template changes) and nothing else.
#[test]
fn a_rule_change_rolls_prometheus_and_only_prometheus() {
    let env = load("dev-monitor");
    let before = rendered_with(&env, None);
    let overrides = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overrides.path().join("prometheus")).unwrap();
    let rules = std::fs::read_to_string(root().join("templates/prometheus/rules.yml.tera"))
        .unwrap()
        .replacen("for: 2m", "for: 3m", 1);
    std::fs::write(overrides.path().join("prometheus/rules.yml.tera"), rules).unwrap();
    let after = rendered_with(&env, Some(overrides.path()));

    let template = |r: &Rendered, kind: &str, name: &str| {
        object(r, kind, name).object["spec"]["template"].clone()
    };
    let mut changed = Vec::new();
    let mut compared = 0;
    for m in before
        .manifests
        .iter()
        .filter(|m| m.kind == "StatefulSet" || m.kind == "Deployment")
    {
        compared += 1;
        if template(&before, &m.kind, &m.name) != template(&after, &m.kind, &m.name) {
            changed.push(format!("{} {}", m.kind, m.name));
        }
    }
    assert_eq!(compared, 4, "service, postgres, redis, prometheus");
    assert_eq!(changed, ["StatefulSet address-service-prometheus"]);
}

#[test]
fn dns_discovery_finds_not_ready_pods_without_rbac() {
    let out = rendered("dev-monitor");
    assert!(
        !out.manifests
            .iter()
            .any(|m| m.kind.contains("Role") && m.name.contains("prometheus"))
    );
    let pods = &object(&out, "Service", "address-service-pods").object;
    assert_eq!(pods["spec"]["clusterIP"], "None");
    assert_eq!(pods["spec"]["publishNotReadyAddresses"], true);
    let scrape: Value =
        serde_saphyr::from_str(file(&out, "prometheus/prometheus-kubernetes.yml")).unwrap();
    assert_eq!(
        scrape["scrape_configs"][0]["dns_sd_configs"][0]["names"][0],
        "address-service-pods.world-address-dev-monitor.svc.cluster.local"
    );
}

#[test]
fn prometheus_may_reach_the_service_pods_and_nothing_else() {
    let out = rendered("dev-monitor");
    let policy = &object(&out, "NetworkPolicy", "address-service-prometheus").object;
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 2, "the service's pods, and DNS: {egress:#?}");
    assert_eq!(
        egress[0]["to"][0]["podSelector"]["matchLabels"],
        serde_json::json!({ "app.kubernetes.io/name": "address-service", "app.kubernetes.io/instance": "dev-monitor" })
    );
    assert_eq!(egress[0]["ports"][0]["port"], 8080);
    assert_eq!(egress[1]["ports"][0]["port"], 53);
}

#[test]
fn grafana_is_provisioned_with_the_rendered_dashboard_and_the_bundled_prometheus() {
    let out = rendered("staging");
    let config = &object(&out, "ConfigMap", "address-service-grafana").object;
    let dashboard = config["data"]["address-service.json"].as_str().unwrap();
    assert_eq!(
        dashboard,
        file(&out, "grafana/dashboards/address-service.json")
    );
    let parsed: Value = serde_json::from_str(dashboard).unwrap();
    assert!(!parsed["panels"].as_array().unwrap().is_empty());
    let sources: Value =
        serde_saphyr::from_str(config["data"]["datasources.yml"].as_str().unwrap()).unwrap();
    assert_eq!(
        sources["datasources"][0]["url"],
        "http://address-service-prometheus:9090"
    );
    let providers: Value =
        serde_saphyr::from_str(config["data"]["dashboards.yml"].as_str().unwrap()).unwrap();
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let deployment = &object(&out, "Deployment", "address-service-grafana").object;
    let mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == path && m["name"] == "dashboards"),
        "the dashboard is mounted where the provider looks ({path})"
    );
}

#[test]
fn the_operator_mode_renders_the_same_rules_and_dashboard_and_no_prometheus() {
    let out = rendered("production");
    assert!(
        !out.files
            .contains_key("prometheus/prometheus-kubernetes.yml")
    );
    assert!(
        !out.manifests
            .iter()
            .any(|m| m.kind == "StatefulSet" && m.name.contains("prometheus"))
    );
    let rule = &object(&out, "PrometheusRule", "address-service").object;
    let rules: Value = serde_saphyr::from_str(file(&out, "prometheus/rules.yml")).unwrap();
    assert_eq!(rule["spec"], rules);
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let monitor = &object(&out, "ServiceMonitor", "address-service").object;
    assert_eq!(
        monitor["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    let service = &object(&out, "Service", "address-service").object;
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        service["metadata"]["labels"]["app.kubernetes.io/name"]
    );
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "http"),
        "the ServiceMonitor's port name exists on the Service"
    );
    let dashboard = &object(&out, "ConfigMap", "address-service-dashboard").object;
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["data"]["address-service.json"].as_str(),
        Some(file(&out, "grafana/dashboards/address-service.json"))
    );
}

#[test]
fn a_typo_in_an_operator_template_is_a_render_error_naming_the_field() {
    let overrides = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overrides.path().join("k8s")).unwrap();
    let template = std::fs::read_to_string(root().join("templates/k8s/servicemonitor.yaml.tera"))
        .unwrap()
        .replace("      path: /metrics", "      pathh: /metrics");
    std::fs::write(
        overrides.path().join("k8s/servicemonitor.yaml.tera"),
        template,
    )
    .unwrap();
    let options = RenderOptions {
        templates: Some(overrides.path().to_owned()),
        ..RenderOptions::default()
    };
    let error = render::render(&load("production"), &options)
        .expect_err("an unknown field is refused")
        .to_string();
    assert!(
        error.contains("k8s/servicemonitor.yaml.tera") && error.contains("pathh"),
        "{error}"
    );
}

#[test]
fn bundled_needs_the_prometheus_component() {
    let error = config::load_from_str(
        "x",
        "components:\n  prometheus: { enabled: false }\nmonitoring:\n  mode: bundled\n",
    )
    .expect_err("refused")
    .to_string();
    assert!(error.contains("monitoring.mode"), "{error}");
    assert!(error.contains("components.prometheus"), "{error}");
    let error = config::load_from_str("x", "monitoring:\n  mode: operator\n  discovery: dns\n")
        .expect_err("refused")
        .to_string();
    assert!(error.contains("monitoring.discovery"), "{error}");
}

/// promtool checks the scrape configuration with DNS discovery. Debian's Prometheus (the
/// only one here) is built without Kubernetes service discovery, so for `kubernetes`
/// discovery the test pins that this is the only thing it objects to.
#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn promtool_accepts_the_kubernetes_scrape_config() {
    let check = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(name);
        rendered(name).write(&out).unwrap();
        let result = std::process::Command::new("promtool")
            .args(["check", "config", "prometheus-kubernetes.yml"])
            .current_dir(out.join("prometheus"))
            .output()
            .expect("promtool (cargo xtask infra up installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        (result.status.success(), text)
    };
    let (ok, text) = check("dev-monitor");
    assert!(ok, "dev-monitor: {text}");
    assert!(text.contains("SUCCESS: 7 rules found"), "{text}");
    let (ok, text) = check("staging");
    let objections: Vec<&str> = text.lines().filter(|l| l.contains("line ")).collect();
    assert!(
        ok || objections
            == ["  line 15: field kubernetes_sd_configs not found in type config.ScrapeConfig"],
        "staging: {text}"
    );
}

mod cluster {
    //! Against the test cluster of `cargo xtask infra up`.

    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, Pod, Secret};
    use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
    use kube::{Api, Client};
    use std::process::{Command, Output};
    use std::time::{Duration, Instant};
    use wactl::cluster::prometheus::{self, PrometheusService};
    use wactl::cluster::{Access, ApplyOptions, ClusterError, Resolver};

    const ENVIRONMENT: &str = "dev-monitor";
    const NODE: &str = "real-node-0";

    async fn client(env: &Environment) -> Client {
        wactl::cluster::connect(env, &Access::default())
            .await
            .expect("cluster reachable: run `cargo xtask infra up`")
    }

    fn wactl(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .current_dir(root())
            .args(["--no-color"])
            .args(args)
            .env_remove("CI")
            .output()
            .expect("run wactl")
    }

    /// The production objects for the Prometheus Operator, in a namespace of their own.
    fn operator_objects(namespace: &str) -> Vec<Value> {
        let mut env = load("production");
        env.cluster.namespace = namespace.to_owned();
        rendered_with(&env, None)
            .manifests
            .into_iter()
            .filter(|m| {
                m.api_version.starts_with("monitoring.coreos.com/")
                    || m.name == "address-service-dashboard"
            })
            .map(|m| m.object)
            .collect()
    }

    #[tokio::test]
    #[ignore = "needs infra: cargo xtask infra up"]
    async fn the_api_server_accepts_the_operator_objects_with_the_crds_installed() {
        let env = load("dev");
        let client = client(&env).await;
        let namespace = format!("wactl-operator-{}", std::process::id());
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": namespace } }))
                .unwrap();
        namespaces.create(&Default::default(), &ns).await.unwrap();

        let resolver = Resolver::new(client.clone());
        let objects = operator_objects(&namespace);
        let mut results = Vec::new();
        for object in &objects {
            let applied = wactl::cluster::apply_all(
                &resolver,
                &[("k8s/64-x.yaml".to_owned(), object.clone())],
                ApplyOptions::default(),
            )
            .await;
            results.push((object["kind"].clone(), applied.map(|_| ())));
        }
        // The CRD's schema is really enforced: a `for:` that is no duration is refused.
        let mut bad = objects
            .iter()
            .find(|o| o["kind"] == "PrometheusRule")
            .unwrap()
            .clone();
        bad["metadata"]["name"] = "address-service-bad".into();
        bad["spec"]["groups"][0]["rules"][0]["for"] = "two minutes".into();
        let refused = wactl::cluster::apply_all(
            &resolver,
            &[("k8s/64-x.yaml".to_owned(), bad)],
            ApplyOptions::default(),
        )
        .await;
        // A kind the cluster does not serve stops the plan before anything is applied.
        let mut unknown = objects[0].clone();
        unknown["apiVersion"] = "monitoring.coreos.com/v9".into();
        let missing = wactl::cluster::plan(
            &resolver,
            &[("k8s/64-x.yaml".to_owned(), unknown)],
            &[],
            ApplyOptions::default(),
        )
        .await;
        let _ = namespaces
            .delete(&namespace, &DeleteParams::default())
            .await;

        assert_eq!(
            objects.len(),
            3,
            "ServiceMonitor, PrometheusRule, dashboard"
        );
        for (kind, result) in &results {
            assert!(result.is_ok(), "{kind}: {result:?}");
        }
        let refused = refused
            .expect_err("an invalid duration is refused")
            .to_string();
        assert!(refused.contains("spec.groups[0].rules[0].for"), "{refused}");
        match missing {
            Err(error @ ClusterError::UnknownKind { .. }) => {
                let text = error.to_string();
                assert!(
                    text.contains("monitoring.coreos.com/v9") && text.contains("CRDs"),
                    "{text}"
                );
            }
            other => panic!("the plan did not stop: {other:?}"),
        }
    }

    /// What `infra up --real-node` gives dev-real, for dev-monitor's namespace: the Secret
    /// and a hostPath volume per StatefulSet claim (no provisioner on the real node).
    async fn prerequisites(client: &Client, env: &Environment) {
        let namespace = &env.cluster.namespace;
        let rendered = rendered_with(env, None);
        let ns = &object(&rendered, "Namespace", namespace).object;
        let apply = PatchParams::apply("wactl-test").force();
        Api::<Namespace>::all(client.clone())
            .patch(namespace, &apply, &Patch::Apply(ns))
            .await
            .unwrap();
        let volumes = std::env::temp_dir().join("wactl-dev-monitor-volumes");
        std::fs::create_dir_all(&volumes).unwrap();
        let password_file = volumes.join("postgres-password");
        let password = match std::fs::read_to_string(&password_file) {
            Ok(p) if !p.trim().is_empty() => p.trim().to_owned(),
            _ => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos();
                let password = format!("{:x}{:x}", nanos, std::process::id());
                std::fs::write(&password_file, &password).unwrap();
                password
            }
        };
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "address-service-postgres", "namespace": namespace },
            "stringData": {
                "password": password,
                "url": format!("postgres://address:{password}@address-service-postgres:5432/address"),
            },
        });
        Api::<Secret>::namespaced(client.clone(), namespace)
            .patch("address-service-postgres", &apply, &Patch::Apply(&secret))
            .await
            .unwrap();
        let claims: Vec<String> = rendered
            .manifests
            .iter()
            .filter(|m| m.kind == "StatefulSet")
            .map(|m| format!("data-{}-0", m.name))
            .collect();
        assert_eq!(claims.len(), 3, "postgres, redis, prometheus: {claims:?}");
        for claim in &claims {
            let path = volumes.join(claim);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
                .unwrap();
            let name = format!("{namespace}-{claim}");
            let pv = serde_json::json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": { "name": name },
                "spec": {
                    "capacity": { "storage": "10Gi" },
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": { "path": path },
                    "claimRef": { "namespace": namespace, "name": claim },
                },
            });
            Api::<PersistentVolume>::all(client.clone())
                .patch(&name, &apply, &Patch::Apply(&pv))
                .await
                .unwrap();
        }
    }

    async fn node_ready(client: &Client) -> bool {
        Api::<Node>::all(client.clone())
            .get_opt(NODE)
            .await
            .unwrap()
            .and_then(|n| n.status)
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }

    /// Polls `probe` every 2 s until it returns `Some`, or fails after `limit`.
    async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> (T, Duration)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, String>>,
    {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        let mut tries = 0;
        while started.elapsed() < limit {
            tries += 1;
            match probe().await {
                Ok(Some(value)) => return (value, started.elapsed()),
                Ok(None) => {}
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        panic!("{what}: not within {limit:?} ({tries} tries); last: {last}");
    }

    async fn scale_postgres(
        client: &Client,
        namespace: &str,
        replicas: i32,
    ) -> Result<StatefulSet, kube::Error> {
        Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(
                "address-service-postgres",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } })),
            )
            .await
    }

    async fn postgres_alert(
        client: &Client,
        service: &PrometheusService,
    ) -> Result<Option<String>, String> {
        let alerts = prometheus::alerts(client, service)
            .await
            .map_err(|e| e.to_string())?;
        Ok(alerts
            .iter()
            .find(|a| a.name() == "AddressServicePostgresDown")
            .map(|a| a.state.clone()))
    }

    #[tokio::test]
    #[ignore = "needs infra: cargo xtask infra up"]
    async fn the_bundled_prometheus_scrapes_the_pods_and_fires_when_postgres_stops() {
        let env = load(ENVIRONMENT);
        let namespace = env.cluster.namespace.clone();
        let client = client(&env).await;
        assert!(
            node_ready(&client).await,
            "node {NODE} is not Ready: run `cargo xtask infra up --real-node`"
        );
        prerequisites(&client, &env).await;
        // Leftover from an interrupted run: PostgreSQL must be up before the deploy.
        let _ = scale_postgres(&client, &namespace, 1).await;

        let deploy = wactl(&["--output", "json", "deploy", ENVIRONMENT, "--yes"]);
        let stdout = String::from_utf8_lossy(&deploy.stdout);
        assert!(
            deploy.status.success(),
            "deploy failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&deploy.stderr)
        );

        let service = PrometheusService::bundled(&env).expect("dev-monitor bundles Prometheus");
        // Discovery and scraping: the three service pods, each `up`, by pod IP.
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let pod_ips: BTreeSet<String> = pods
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/name=address-service,app.kubernetes.io/instance={ENVIRONMENT}"
            )))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
            .collect();
        assert_eq!(pod_ips.len(), 3, "three service pods: {pod_ips:?}");
        let (targets, _) = wait_for(
            "three address-service targets up",
            Duration::from_secs(120),
            || {
                let client = client.clone();
                let service = service.clone();
                async move {
                    let targets = prometheus::targets(&client, &service)
                        .await
                        .map_err(|e| e.to_string())?;
                    let up: Vec<_> = targets
                        .into_iter()
                        .filter(|t| t.scrape_pool == "address-service" && t.health == "up")
                        .collect();
                    Ok((up.len() == 3).then_some(up))
                }
            },
        )
        .await;
        let scraped: BTreeSet<String> = targets
            .iter()
            .map(|t| t.labels["instance"].split(':').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            scraped, pod_ips,
            "Prometheus scrapes exactly the service's pods"
        );

        // Every rendered rule is loaded, and healthy.
        let expected = alert_names(file(&rendered_with(&env, None), "prometheus/rules.yml"));
        // A rule's health is `unknown` until its group's first evaluation.
        let (loaded, _) = wait_for("every rule evaluated", Duration::from_secs(60), || {
            let client = client.clone();
            let service = service.clone();
            async move {
                let loaded = prometheus::rules(&client, &service)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(
                    (!loaded.is_empty() && loaded.iter().all(|r| r.health != "unknown"))
                        .then_some(loaded),
                )
            }
        })
        .await;
        let names: BTreeSet<String> = loaded.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names, expected);
        assert!(expected.contains("AddressServicePostgresDown"));
        for rule in &loaded {
            assert_eq!(rule.health, "ok", "{rule:?}");
        }

        // Quiet first (an earlier run's alert must have resolved).
        wait_for(
            "PostgreSQL alert quiet before the outage",
            Duration::from_secs(180),
            || {
                let client = client.clone();
                let service = service.clone();
                async move {
                    Ok(postgres_alert(&client, &service)
                        .await?
                        .is_none()
                        .then_some(()))
                }
            },
        )
        .await;

        scale_postgres(&client, &namespace, 0).await.unwrap();
        let (_, pending_after) = wait_for(
            "the PostgreSQL alert pending",
            Duration::from_secs(120),
            || {
                let client = client.clone();
                let service = service.clone();
                async move {
                    Ok(postgres_alert(&client, &service)
                        .await?
                        .filter(|s| s == "pending"))
                }
            },
        )
        .await;
        // `for: 2m`, plus a scrape and an evaluation interval (5 s each), plus the pod's stop.
        let (_, firing_after) = wait_for(
            "the PostgreSQL alert firing",
            Duration::from_secs(240),
            || {
                let client = client.clone();
                let service = service.clone();
                async move {
                    Ok(postgres_alert(&client, &service)
                        .await?
                        .filter(|s| s == "firing"))
                }
            },
        )
        .await;
        let status = wactl(&["status", ENVIRONMENT]);
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        let json = wactl(&["--output", "json", "status", ENVIRONMENT]);
        let json: Value = serde_json::from_slice(&json.stdout).expect("status JSON");

        scale_postgres(&client, &namespace, 1).await.unwrap();
        let (_, resolved_after) = wait_for(
            "the PostgreSQL alert resolved",
            Duration::from_secs(240),
            || {
                let client = client.clone();
                let service = service.clone();
                async move {
                    Ok(postgres_alert(&client, &service)
                        .await?
                        .is_none()
                        .then_some(()))
                }
            },
        )
        .await;
        let quiet = wactl(&["status", ENVIRONMENT]);
        let quiet = String::from_utf8_lossy(&quiet.stdout).into_owned();
        eprintln!(
            "monitoring: alert pending after {pending_after:?}, firing {firing_after:?} after pending, resolved {resolved_after:?} after PostgreSQL came back"
        );

        assert!(
            firing_after <= Duration::from_secs(150),
            "firing {firing_after:?} after pending: the `for: 2m` window plus two 5 s intervals"
        );
        assert!(status.status.success(), "{text}");
        // One row of the ALERT table: name, state, severity.
        assert!(
            text.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.starts_with(&["AddressServicePostgresDown", "firing", "critical"])
            }),
            "{text}"
        );
        assert_eq!(json["alerts"]["state"], "read", "{json:#}");
        assert!(
            json["alerts"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["labels"]["alertname"] == "AddressServicePostgresDown"
                    && a["state"] == "firing"),
            "{json:#}"
        );
        assert!(!quiet.contains("AddressServicePostgresDown"), "{quiet}");
    }
}
