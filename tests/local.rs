//! The local stack on the real Docker Engine, with the `wactl.local/*` images of
//! `cargo xtask infra images`. Each test uses its own project name and free ports, so they
//! run in parallel.
//!
//! Test setup (not wactl code): the address-service image is made with the docker CLI from
//! the runtime stage of the rendered Dockerfile and a host-built binary, because the
//! builder image may not exist; `wactl up` itself builds through `wactl::build`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use wactl::config::Environment;
use wactl::local::compose::ComposeFile;
use wactl::local::{self, Action, UpOptions};
use wactl::smoke::{self, SmokeOptions};

const TEST_IMAGE: &str = "wactl-test/address-service:local";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the address-service image once per test binary (test setup, see the module doc).
fn service_image() -> &'static str {
    static IMAGE: OnceLock<()> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let binary = match std::env::var_os("WACTL_TEST_ADDRESS_SERVICE_BIN") {
            Some(path) => PathBuf::from(path),
            None => {
                // A target dir of its own: the outer `cargo test` holds the shared one.
                let target = root().join("target").join("local-stack-tests");
                let status = Command::new(env!("CARGO"))
                    .args([
                        "build",
                        "--release",
                        "-p",
                        "address-service",
                        "--target-dir",
                    ])
                    .arg(&target)
                    .current_dir(root())
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building address-service failed");
                target.join("release").join("address-service")
            }
        };
        let env = environment("local");
        let rendered = wactl::render::render(&env, &Default::default()).expect("renders");
        let dockerfile = &rendered.files["Dockerfile"];
        let runtime = &dockerfile[dockerfile
            .find("FROM wactl.local/runtime")
            .expect("runtime stage")..];
        let runtime = runtime.replace(
            "COPY --from=build /out/address-service",
            "COPY address-service",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(&binary, dir.path().join("address-service")).expect("copy binary");
        std::fs::write(dir.path().join("Dockerfile"), runtime).expect("Dockerfile");
        docker_cli(&[
            "build",
            "-q",
            "-t",
            TEST_IMAGE,
            &dir.path().to_string_lossy(),
        ]);
    });
    TEST_IMAGE
}

fn environment(name: &str) -> Environment {
    wactl::config::load(&root().join("environments"), name).expect("environment loads")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn docker() -> bollard::Docker {
    if std::env::var_os("DOCKER_HOST").is_none() && !Path::new("/var/run/docker.sock").exists() {
        panic!("no Docker Engine: set DOCKER_HOST or run `cargo xtask infra up`");
    }
    wactl::build::connect()
        .await
        .expect("the Docker Engine answers")
}

/// A stack with its own project, ports and state directory; removed (with volumes) on drop.
struct Stack {
    env: Environment,
    state: tempfile::TempDir,
}

impl Stack {
    fn new(tag: &str) -> Self {
        let mut env = environment("local");
        env.local.project = format!("wactl-test-{tag}-{}", std::process::id());
        for port in env.local.ports.values_mut() {
            *port = free_port();
        }
        env.smoke.url = Some(format!("http://127.0.0.1:{}", env.local.ports["nginx"]));
        Stack {
            env,
            state: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn options(&self) -> UpOptions {
        UpOptions {
            state_dir: self.state.path().join("state"),
            image: Some(service_image().to_owned()),
            templates: None,
        }
    }

    async fn up(&self) -> Result<local::UpReport, local::LocalError> {
        self.up_file(&local::prepare(&self.env, &self.options())?)
            .await
    }

    /// `wactl up` of `file`, a compose file prepared for this stack and then changed.
    async fn up_file(&self, file: &ComposeFile) -> Result<local::UpReport, local::LocalError> {
        local::up(
            &docker().await,
            &self.env,
            file,
            &self.options(),
            &local::NoProgress,
        )
        .await
    }

    async fn smoke(&self) -> smoke::SmokeReport {
        let url = self.env.smoke.url.clone().expect("url");
        let mut options = SmokeOptions::for_environment(&self.env, &url);
        options.deadline = Duration::from_secs(20);
        smoke::run(&self.env, &url, &options).await
    }

    fn psql(&self, sql: &str) -> String {
        let secrets =
            local::secrets::read(&self.options().state_dir.join("secrets.env")).expect("secrets");
        let password = &secrets
            .iter()
            .find(|(k, _)| k == "POSTGRES_PASSWORD")
            .expect("password")
            .1;
        let container = format!("{}-postgres-1", self.env.local.project);
        docker_cli(&[
            "exec",
            "-e",
            &format!("PGPASSWORD={password}"),
            &container,
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "address",
            "-d",
            "address",
            "-tA",
            "-c",
            sql,
        ])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let project = self.env.local.project.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async {
                if let Ok(docker) = wactl::build::connect().await {
                    let _ = local::down(&docker, &project, true).await;
                }
            });
        })
        .join();
    }
}

fn actions(report: &local::UpReport) -> Vec<(&str, Action)> {
    report
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.action))
        .collect()
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn up_converges_keeps_data_and_smoke_passes_through_nginx() {
    let mut stack = Stack::new("life");
    let first = stack.up().await.expect("first up");
    assert!(!first.services.is_empty(), "up started no service");
    assert!(
        first.services.iter().all(|s| s.action == Action::Created),
        "{:?}",
        actions(&first)
    );
    let names: Vec<&str> = first.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        names,
        [
            "postgres",
            "redis",
            "address-service",
            "nginx",
            "prometheus"
        ]
    );
    let report = stack.smoke().await;
    assert!(report.passed, "{report:#?}");
    assert!(report.checks.iter().any(|c| c.name == "rate-limit"));
    // Right after a run whose rate-limit check drained the client's budget, a second one
    // still passes: it waits out the 429s and says so.
    let again = stack.smoke().await;
    assert!(again.passed, "second smoke run in a row: {again:#?}");

    // docker compose sees the containers by their labels.
    let labelled = docker_cli(&[
        "ps",
        "--filter",
        &format!(
            "label=com.docker.compose.project={}",
            stack.env.local.project
        ),
        "--format",
        "{{.Label \"com.docker.compose.service\"}} {{.Ports}}",
    ]);
    assert_eq!(labelled.lines().count(), 5, "{labelled}");
    assert!(
        !labelled.contains("0.0.0.0"),
        "ports on 127.0.0.1 only: {labelled}"
    );

    let second = stack.up().await.expect("second up");
    assert_eq!(second.services.len(), first.services.len());
    assert!(
        second
            .services
            .iter()
            .all(|s| s.action == Action::Unchanged),
        "{:?}",
        actions(&second)
    );

    // One setting changes one service.
    if let Some(prometheus) = stack.env.components.prometheus.as_mut() {
        prometheus.retention = "2d".into();
    }
    let third = stack.up().await.expect("third up");
    let changed: Vec<&str> = third
        .services
        .iter()
        .filter(|s| s.action != Action::Unchanged)
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(changed, ["prometheus"]);
    assert_eq!(
        third
            .services
            .iter()
            .find(|s| s.service == "prometheus")
            .map(|s| s.action),
        Some(Action::Recreated)
    );

    // Postgres data survives down + up, and is gone after down --volumes.
    stack.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    let docker = docker().await;
    local::down(&docker, &stack.env.local.project, false)
        .await
        .expect("down");
    stack.up().await.expect("up after down");
    assert_eq!(stack.psql("SELECT v FROM kept"), "still here");
    let removed = local::down(&docker, &stack.env.local.project, true)
        .await
        .expect("down --volumes");
    assert!(
        removed
            .volumes
            .iter()
            .any(|v| v.ends_with("_postgres-data")),
        "{removed:?}"
    );
    stack.up().await.expect("up after down --volumes");
    assert_eq!(
        stack.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'kept'"),
        "0"
    );

    // Smoke against a stopped service fails and names the check.
    docker_cli(&[
        "stop",
        &format!("{}-address-service-1", stack.env.local.project),
    ]);
    stack.env.smoke.deadline_seconds = 2;
    let report = stack.smoke().await;
    assert!(!report.passed);
    let failed: Vec<&str> = report.failed().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["readyz"], "{report:#?}");
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_broken_command_is_reported_with_its_logs() {
    let mut stack = Stack::new("broken");
    stack.env.components.nginx = None;
    stack.env.components.prometheus = None;
    let mut file = local::prepare(&stack.env, &stack.options()).expect("prepare");
    if let Some(redis) = file.services.get_mut("redis") {
        redis.command = Some(vec![
            "redis-server".into(),
            "--no-such-directive".into(),
            "yes".into(),
        ]);
    }
    let error = stack.up_file(&file).await.expect_err("redis cannot start");
    let message = error.to_string();
    assert!(
        matches!(&error, local::LocalError::Unhealthy { service, .. } if service == "redis"),
        "{message}"
    );
    assert!(
        message.contains("no-such-directive"),
        "the logs are in the report: {message}"
    );
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn cli_up_ps_down_with_an_existing_image() {
    let stack = Stack::new("cli");
    // The CLI reads definitions from a directory: write one for this project.
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["base.yaml", "local.yaml"] {
        std::fs::copy(
            root().join("environments").join(name),
            dir.path().join(name),
        )
        .expect("copy");
    }
    let ports = &stack.env.local.ports;
    let local = std::fs::read_to_string(dir.path().join("local.yaml")).expect("read")
        .replace("project: world-address", &format!("project: {}", stack.env.local.project))
        .replace(
            "ports: { address-service: 18080, nginx: 18081, prometheus: 19090, postgres: 15432, redis: 16379 }",
            &format!(
                "ports: {{ address-service: {}, nginx: {}, prometheus: {}, postgres: {}, redis: {} }}",
                ports["address-service"], ports["nginx"], ports["prometheus"], ports["postgres"], ports["redis"]
            ),
        )
        .replace("url: http://127.0.0.1:18081", &format!("url: http://127.0.0.1:{}", ports["nginx"]));
    std::fs::write(dir.path().join("local.yaml"), local).expect("write");
    docker_cli(&[
        "tag",
        service_image(),
        "127.0.0.1:5000/world-address/address-service:local",
    ]);
    let wactl = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .arg("--env-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("wactl runs")
    };
    let root_arg = stack.state.path().to_string_lossy().into_owned();
    let up = wactl(&["up", "local", "--no-build", "--root", &root_arg]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert_eq!(up.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for health") && stderr.contains("healthy"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{}", ports["nginx"])),
        "{stdout}"
    );
    let secrets =
        std::fs::read_to_string(stack.state.path().join(".wactl/local/local/secrets.env"))
            .expect("secrets");
    for (_, value) in secrets.lines().filter_map(|l| l.split_once('=')) {
        assert!(
            !stdout.contains(value) && !stderr.contains(value),
            "a secret was printed"
        );
    }
    let ps = wactl(&["ps", "local"]);
    assert!(String::from_utf8_lossy(&ps.stdout).contains("address-service"));
    let logs = wactl(&["logs", "--env", "local", "--tail", "5"]);
    assert_eq!(logs.status.code(), Some(0));
    let down = wactl(&["down", "local", "--volumes"]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

/// Records what the watch loop reports.
#[derive(Default)]
struct WatchLog(std::sync::Mutex<Vec<local::watch::WatchEvent>>);

impl local::UpProgress for WatchLog {
    fn service(&self, _service: &str, _phase: &local::Phase) {}
}

impl local::watch::WatchObserver for WatchLog {
    fn watch(&self, event: &local::watch::WatchEvent) {
        self.0.lock().expect("not poisoned").push(event.clone());
    }
}

impl WatchLog {
    /// (cycles seen, cycles finished): a cycle starts with `ChangeSeen`.
    fn cycles(&self) -> (usize, Vec<local::watch::WatchEvent>) {
        use local::watch::WatchEvent::*;
        let events = self.0.lock().expect("not poisoned");
        let seen = events
            .iter()
            .filter(|e| matches!(e, ChangeSeen { .. }))
            .count();
        let finished = events
            .iter()
            .filter(|e| matches!(e, CycleSucceeded { .. } | CycleFailed { .. }))
            .cloned()
            .collect();
        (seen, finished)
    }

    async fn until_finished(&self, count: usize) -> Vec<local::watch::WatchEvent> {
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        loop {
            let (_, finished) = self.cycles();
            if finished.len() >= count {
                return finished;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cycle {count} did not finish within 600s: {:?}",
                self.0.lock().expect("not poisoned")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn address_service_container(project: &str) -> String {
    docker_cli(&[
        "inspect",
        "-f",
        "{{.Id}} {{.State.Health.Status}}",
        &format!("{project}-address-service-1"),
    ])
}

/// `up --watch` on a tiny context (a Dockerfile FROM the test image that copies `app/`): one
/// change is one cycle that replaces only address-service; a burst of writes is one cycle;
/// a `.dockerignore`d file is none; a broken build leaves the old container serving.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn watch_rebuilds_once_per_burst_and_keeps_the_old_container_on_a_failed_build() {
    use local::watch::{CycleStep, WatchEvent, WatchOptions};
    let stack = Stack::new("watch");
    let report = stack.up().await.expect("the stack comes up");
    assert!(report.smoke_url.is_some());
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join(".dockerignore"), "notes.txt\n").unwrap();
    std::fs::create_dir(context.path().join("app")).unwrap();
    std::fs::write(context.path().join("app/version"), "0").unwrap();
    let options = WatchOptions {
        context: context.path().to_owned(),
        state_dir: stack.options().state_dir,
        // Long enough that a busy machine stalling the burst below does not split it.
        debounce: Duration::from_secs(2),
        smoke: true,
        dockerfile: Some(format!(
            "FROM {}\nCOPY app /app\nRUN test ! -e /app/broken\n",
            service_image()
        )),
        templates: None,
        max_cycles: None,
    };
    let observer = WatchLog::default();
    let env = stack.env.clone();
    let reload = move || Ok(env.clone());
    let docker = docker().await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let project = stack.env.local.project.clone();
    let drive = async {
        // Wait for the watcher before the first write.
        while !observer
            .0
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|e| matches!(e, WatchEvent::Watching { .. }))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = address_service_container(&project);

        // One change: one cycle, replacing address-service only.
        std::fs::write(context.path().join("app/version"), "1").unwrap();
        let finished = observer.until_finished(1).await;
        match &finished[0] {
            WatchEvent::CycleSucceeded {
                replaced, timings, ..
            } => {
                assert_eq!(replaced, &vec!["address-service".to_owned()]);
                assert!(timings.built_ms <= timings.healthy_ms);
                assert!(timings.smoke_passed_ms.is_some());
            }
            other => panic!("cycle 1: {other:?}"),
        }
        let after_one = address_service_container(&project);
        assert_ne!(before, after_one);
        // wactl's own run of the healthcheck passed; Docker agrees at its first probe,
        // one interval (5 s) after the start.
        let id = after_one.split(' ').next().expect("an id").to_owned();
        let polled = std::time::Instant::now();
        while !address_service_container(&project).ends_with(" healthy") {
            assert!(
                polled.elapsed() < Duration::from_secs(90),
                "Docker never called the new container healthy: {}",
                address_service_container(&project)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(address_service_container(&project).starts_with(&id));

        // A burst of ten writes: one cycle.
        for i in 0..10 {
            std::fs::write(context.path().join(format!("app/file-{i}")), "x").unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let finished = observer.until_finished(2).await;
        assert!(
            matches!(finished[1], WatchEvent::CycleSucceeded { .. }),
            "{:?}",
            finished[1]
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(observer.cycles().0, 2, "a burst gave more than one cycle");

        // An ignored file: no cycle.
        std::fs::write(context.path().join("notes.txt"), "x").unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            observer.cycles().0,
            2,
            "a .dockerignored file started a cycle"
        );

        // A broken build: the cycle fails at the build, the old container keeps serving.
        let serving = address_service_container(&project);
        std::fs::write(context.path().join("app/broken"), "x").unwrap();
        let finished = observer.until_finished(3).await;
        match &finished[2] {
            WatchEvent::CycleFailed { step, reason, .. } => {
                assert_eq!(*step, CycleStep::Build, "{reason}");
            }
            other => panic!("cycle 3: {other:?}"),
        }
        assert_eq!(address_service_container(&project), serving);
        let smoke = stack.smoke().await;
        assert!(smoke.passed, "{:?}", smoke.failed().collect::<Vec<_>>());
        let _ = stop_tx.send(());
    };
    let (summary, ()) = tokio::join!(
        local::watch::watch(&docker, &options, &reload, &observer, stop),
        drive
    );
    let summary = summary.expect("the loop ends cleanly");
    assert_eq!(
        (summary.cycles, summary.succeeded, summary.failed),
        (3, 2, 1)
    );
}

/// A stack of redis alone, its healthcheck and command replaced.
fn redis_only(stack: &Stack, test: &[&str], interval: &str, command: &[&str]) -> ComposeFile {
    let mut file = local::prepare(&stack.env, &stack.options()).expect("prepare");
    file.services.retain(|name, _| name == "redis");
    let redis = file.services.get_mut("redis").expect("redis in local.yaml");
    let check = redis.healthcheck.as_mut().expect("redis has a healthcheck");
    check.test = test.iter().map(|s| (*s).to_owned()).collect();
    check.interval = interval.to_owned();
    check.timeout = "2s".to_owned();
    check.retries = 2;
    check.start_period = None;
    redis.command = Some(command.iter().map(|s| (*s).to_owned()).collect());
    file
}

/// wactl's own runs of the healthcheck make it healthy only when the command passes: before
/// the mark file exists they fail, and the first pass comes before Docker's first probe.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn health_is_learned_from_the_healthcheck_command_only_once_it_passes() {
    let stack = Stack::new("probe-pass");
    let file = redis_only(
        &stack,
        &["CMD-SHELL", "test -e /tmp/ready && redis-cli ping"],
        // Docker's first probe comes a minute after the start.
        "60s",
        &[
            "sh",
            "-c",
            "sleep 3; touch /tmp/ready; exec redis-server --dir /data",
        ],
    );
    let container = healthy_by_a_later_run(&stack, &file).await;
    docker_cli(&["exec", &container, "test", "-e", "/tmp/ready"]);
}

/// Brings `file` up and checks that wactl's runs of the healthcheck made redis healthy: at
/// least one failed, the last passed, and Docker has not probed yet. Returns the container.
async fn healthy_by_a_later_run(stack: &Stack, file: &ComposeFile) -> String {
    let report = stack.up_file(file).await.expect("redis becomes healthy");
    let health = report.services[0].health.expect("redis has a healthcheck");
    assert_eq!(health.source, local::HealthSource::Probe, "{health:?}");
    assert!(
        health.probes_failed >= 1 && health.probes == health.probes_failed + 1,
        "the early runs failed and the last one passed: {health:?}"
    );
    let container = report.services[0].container.clone();
    assert_eq!(
        docker_cli(&["inspect", "-f", "{{.State.Health.Status}}", &container]),
        "starting",
        "Docker has not probed yet"
    );
    container
}

/// A run of the healthcheck that outlives its timeout has failed, and does not end wactl's
/// runs: the next starts once the slow one has ended, and passes long before Docker's first
/// probe. (A slow engine on a busy machine looks the same.)
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_run_past_its_timeout_fails_and_the_next_run_passes() {
    let stack = Stack::new("probe-slow");
    let file = redis_only(
        &stack,
        &[
            "CMD-SHELL",
            // The first run takes 4 s against a 2 s timeout, every later one is quick.
            "if [ -e /tmp/slow ]; then redis-cli ping; else touch /tmp/slow; sleep 4; fi",
        ],
        "60s",
        &["redis-server", "--dir", "/data"],
    );
    healthy_by_a_later_run(&stack, &file).await;
}

/// A healthcheck command that always fails is never taken for healthy: the wait ends with
/// Docker's own `unhealthy`, after wactl's runs all failed.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_failing_healthcheck_command_is_unhealthy_by_dockers_verdict() {
    let stack = Stack::new("probe-fail");
    let file = redis_only(
        &stack,
        &["CMD-SHELL", "redis-cli ping && exit 1"],
        "1s",
        &["redis-server", "--dir", "/data"],
    );
    let error = stack
        .up_file(&file)
        .await
        .expect_err("the healthcheck never passes");
    let message = error.to_string();
    assert!(
        matches!(&error, local::LocalError::Unhealthy { service, reason, .. }
            if service == "redis" && reason == "failed its healthcheck"),
        "{message}"
    );
}

/// A container that exits while wactl runs its healthcheck is reported with its exit code.
#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn an_exit_during_the_probes_is_reported() {
    let stack = Stack::new("probe-exit");
    let file = redis_only(
        &stack,
        &["CMD", "redis-cli", "ping"],
        "60s",
        &["sh", "-c", "sleep 1; echo giving up; exit 3"],
    );
    let error = stack.up_file(&file).await.expect_err("redis exits");
    let message = error.to_string();
    assert!(
        matches!(&error, local::LocalError::Unhealthy { service, .. } if service == "redis"),
        "{message}"
    );
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("giving up"), "the logs: {message}");
}
