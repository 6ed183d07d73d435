//! Fault injection against the real systems of `cargo xtask infra up`: the `wactl` binary
//! killed (SIGKILL) or stopped (SIGINT, SIGTERM) mid-deploy, kube-apiserver restarted while
//! a rollout is tracked, the Docker daemon stopped during a build, the registry gone during
//! a push or answering 401, and two deploys of one environment at once.
//!
//! Tests that stop a shared component hold [`INFRA`] for writing; the others hold it for
//! reading, so within this binary nothing runs while a component is down. Each test
//! deploys to a namespace of its own. Results: `docs/reliability.md`, section Faults.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::ListParams;
use kube::{Api, Client};
use rustix::process::{Pid, Signal, kill_process};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use wactl::cluster::{self, ObjectRef, Revision, RevisionStatus, revision};
use wactl::config::Environment;
use wactl::deploy;
use wactl::ui::deploy::DeployUi;

mod support;

use support::{IMAGE_V1, IMAGE_V2, TestEnv, client, live_image, options, pinned, root};
/// Short enough that a killed deploy's lease is gone within seconds.
const LOCK: &str = "3s";

/// Write: a shared component is being stopped. Read: a test that needs them all up.
static INFRA: RwLock<()> = RwLock::const_new(());

fn infra_dir() -> PathBuf {
    std::env::var_os("WACTL_INFRA_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".local/state/wactl/infra"),
        PathBuf::from,
    )
}

/// `wactl deploy t --skip-build --image IMAGE` with the short lock, plus `extra`.
fn deploy_args<'a>(image: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    deploy_args_locked(image, LOCK, extra)
}

/// For a deploy that must finish: a lease that a slow renewal on a busy machine (or an API
/// server restarted on purpose) does not lose. Only stopped deploys need [`LOCK`].
fn finishing_deploy_args<'a>(image: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    deploy_args_locked(image, "60s", extra)
}

fn deploy_args_locked<'a>(image: &'a str, lock: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "deploy",
        "t",
        "--skip-build",
        "--image",
        image,
        "--lock-duration",
        lock,
        "--timeout",
        "90s",
    ];
    args.extend_from_slice(extra);
    args
}

/// Template overrides whose pods crash-loop on the kwok nodes; the Deployment allows no
/// failure per replica, so the crash loop is called at the first back-off, as these tests
/// are about what happens next.
fn crash_templates(t: &TestEnv) -> PathBuf {
    t.templates(
        "crash",
        &[(wactl::cluster::track::FAILURES_ALLOWED_ANNOTATION, "0")],
        &[("wactl.dev/kwok-fault", "crashloop")],
    )
}

/// A running `wactl` whose stderr lines the test reads as they come.
struct Running {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Running {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wactl");
        let (send, lines) = tokio::sync::mpsc::unbounded_channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let seen = stderr.clone();
        let spawned = Instant::now();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let at = spawned.elapsed().as_secs_f64();
                seen.lock()
                    .expect("lock")
                    .push_str(&format!("[{at:6.2}s] {line}\n"));
                let _ = send.send(line);
            }
        });
        let mut out = child.stdout.take().expect("stdout");
        let seen = stdout.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            seen.lock().expect("lock").push_str(&text);
        });
        Self {
            child,
            lines,
            stderr,
            stdout,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; panics with what was printed otherwise.
    async fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "wactl never printed {needle:?} within {within:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    fn signal(&self, signal: Signal) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the exit (bounded) and returns the status, stdout and stderr.
    async fn finish(mut self, within: Duration) -> (ExitStatus, String, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader threads drain the pipes.
                while self.lines.recv().await.is_some() {}
                tokio::time::sleep(Duration::from_millis(50)).await;
                let stdout = self.stdout.lock().expect("lock").clone();
                return (status, stdout, self.stderr());
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "wactl did not exit within {within:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn send_signal(pid: u32, signal: Signal) {
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .expect("a process id");
    kill_process(target, signal).unwrap_or_else(|e| panic!("{signal:?} to {pid}: {e}"));
}

async fn first_deploy(client: &Client, env: &Environment) {
    let report = deploy::deploy(client, env, &options(IMAGE_V1), &DeployUi::silent(true))
        .await
        .expect("first deploy");
    assert_eq!(report.revision, Some(1));
}

async fn revisions(client: &Client, namespace: &str) -> Vec<Revision> {
    revision::list(client, namespace, "t")
        .await
        .expect("revisions")
}

async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    api.get_opt(&cluster::lease_name("t"))
        .await
        .expect("read lease")
        .and_then(|l| l.spec?.holder_identity)
}

/// Objects labelled as wactl's in `namespace` that the live revision does not list
/// (revision ConfigMaps and the lease are wactl's bookkeeping, not rendered objects).
async fn orphans(client: &Client, namespace: &str, live: &Revision) -> Vec<String> {
    async fn unlisted<K>(client: &Client, namespace: &str, live: &Revision) -> Vec<String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let owned = ListParams::default().labels("app.kubernetes.io/managed-by=wactl");
        let list = api.list_metadata(&owned).await.expect("list");
        let kind = K::kind(&()).to_string();
        list.items
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .filter_map(|o| o.metadata.name.clone())
            .filter(|name| !name.starts_with("wactl-t-rev-"))
            .filter(|name| {
                !live
                    .inventory
                    .iter()
                    .any(|o: &ObjectRef| o.kind == kind && &o.name == name)
            })
            .map(|name| format!("{kind} {namespace}/{name}"))
            .collect()
    }
    let mut found = Vec::new();
    found.extend(unlisted::<Deployment>(client, namespace, live).await);
    found.extend(unlisted::<StatefulSet>(client, namespace, live).await);
    found.extend(unlisted::<Service>(client, namespace, live).await);
    found.extend(unlisted::<ConfigMap>(client, namespace, live).await);
    found.extend(unlisted::<Secret>(client, namespace, live).await);
    found.extend(unlisted::<ServiceAccount>(client, namespace, live).await);
    found.extend(unlisted::<Role>(client, namespace, live).await);
    found.extend(unlisted::<RoleBinding>(client, namespace, live).await);
    found.extend(unlisted::<NetworkPolicy>(client, namespace, live).await);
    found.extend(unlisted::<PodDisruptionBudget>(client, namespace, live).await);
    found
}

/// Runs `wactl deploy` until the lease of the stopped deploy no longer refuses it;
/// returns the last output and how many attempts were refused.
async fn deploy_once_unlocked(t: &TestEnv, image: &str) -> (std::process::Output, u32) {
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let out = t.wactl(&finishing_deploy_args(image, &[]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(1) && stderr.contains("is being deployed by") {
            refused += 1;
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the lease never expired: {stderr}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return (out, refused);
    }
}

/// After a deploy was stopped: the next deploy of `image` converges, revision 2 is marked
/// interrupted (with `marked`), the lease is gone, nothing is orphaned, a plan is a no-op.
async fn next_deploy_converges(t: &TestEnv, client: &Client, image: &str, marked: &str) -> u32 {
    let (out, refused) = deploy_once_unlocked(t, image).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "next deploy: {stderr}");
    assert_eq!(live_image(client, &t.namespace).await, pinned(image));
    let revisions = revisions(client, &t.namespace).await;
    let statuses: Vec<(u32, RevisionStatus)> =
        revisions.iter().map(|r| (r.number, r.status)).collect();
    assert_eq!(
        statuses,
        [
            (1, RevisionStatus::Succeeded),
            (2, RevisionStatus::Interrupted),
            (3, RevisionStatus::Succeeded)
        ],
        "{revisions:#?}"
    );
    let message = revisions[1].message.clone().unwrap_or_default();
    assert!(message.contains(marked), "{message}");
    assert_eq!(lease_holder(client, &t.namespace).await, None);
    let orphaned = orphans(client, &t.namespace, &revisions[2]).await;
    assert!(orphaned.is_empty(), "orphaned: {orphaned:?}");
    let history = t.wactl(&["history", "t"]);
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(history.contains("interrupted"), "{history}");
    let env = t.load();
    let plan = deploy::plan(
        client,
        &env,
        &wactl::render::RenderOptions {
            // What the deploy applied: the tag resolved to its digest.
            image: Some(pinned(image)),
            templates: None,
        },
        Default::default(),
    )
    .await
    .expect("plan");
    assert!(plan.is_noop(), "not converged: {}", plan.summary());
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn sigkill_during_apply_then_the_next_deploy_converges() {
    let _up = INFRA.read().await;
    let t = TestEnv::new("f-kill-apply", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    // The revision ConfigMap is written right before the apply: kill as it appears.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &t.namespace);
    let rev2 = Revision::config_map_name("t", 2);
    let mut running = Running::spawn(t.command(&deploy_args(IMAGE_V2, &[])));
    let started = Instant::now();
    loop {
        if configmaps.get_opt(&rev2).await.expect("get").is_some() {
            running.child.kill().expect("SIGKILL");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "revision 2 never appeared: {}",
            running.stderr()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, _, _) = running.finish(Duration::from_secs(5)).await;
    assert_eq!(status.code(), None, "killed by a signal");
    let holder = lease_holder(&client, &t.namespace).await;
    let applied = live_image(&client, &t.namespace).await == pinned(IMAGE_V2);
    let pending = revisions(&client, &t.namespace).await[1].status;
    assert_eq!(pending, RevisionStatus::Pending);
    let refused = next_deploy_converges(&t, &client, IMAGE_V2, "lock expired").await;
    eprintln!(
        "FAULT kill-apply: lease after kill {holder:?}; v2 applied at kill: {applied}; refused {refused} times before the lease expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn sigkill_during_tracking_then_the_lease_expires_and_the_next_deploy_converges() {
    let _up = INFRA.read().await;
    let t = TestEnv::new("f-kill-track", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    let slow = t.templates(
        "slow",
        &[],
        &[
            ("wactl.dev/kwok-fault", "slow-start"),
            ("wactl.dev/kwok-slow-start-delay", "30s"),
        ],
    );
    let slow = slow.to_str().expect("utf-8");
    let mut running = Running::spawn(t.command(&deploy_args(IMAGE_V2, &["--templates", slow])));
    running.wait_for("apply (", Duration::from_secs(30)).await;
    let pid = running.pid();
    running.child.kill().expect("SIGKILL");
    running.finish(Duration::from_secs(5)).await;
    let holder = lease_holder(&client, &t.namespace)
        .await
        .expect("the lease is left");
    assert!(holder.contains(&format!("(pid {pid})")), "{holder}");
    let refused = next_deploy_converges(&t, &client, IMAGE_V2, "lock expired").await;
    eprintln!("FAULT kill-track: refused {refused} times before the lease expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn sigkill_during_rollback_then_the_next_deploy_converges() {
    let _up = INFRA.read().await;
    let t = TestEnv::new("f-kill-rollback", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    let crash = crash_templates(&t);
    let crash = crash.to_str().expect("utf-8");
    let mut running = Running::spawn(t.command(&deploy_args(IMAGE_V2, &["--templates", crash])));
    running
        .wait_for("rolling back to revision 1", Duration::from_secs(60))
        .await;
    running.child.kill().expect("SIGKILL");
    running.finish(Duration::from_secs(5)).await;
    assert_eq!(
        revisions(&client, &t.namespace).await[1].status,
        RevisionStatus::Pending,
        "killed before the rollback recorded anything"
    );
    // The desired state is the good image again.
    let refused = next_deploy_converges(&t, &client, IMAGE_V1, "lock expired").await;
    eprintln!("FAULT kill-rollback: refused {refused} times before the lease expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn sigint_and_sigterm_stop_cleanly_release_the_lock_and_mark_the_revision() {
    let _up = INFRA.read().await;
    let t = TestEnv::new("f-sigint", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    let slow = t.templates(
        "slow",
        &[],
        &[
            ("wactl.dev/kwok-fault", "slow-start"),
            ("wactl.dev/kwok-slow-start-delay", "30s"),
        ],
    );
    let slow = slow.to_str().expect("utf-8");
    // A long lock: only the release can free it in time for the next deploy.
    let mut running = Running::spawn(t.command(&[
        "deploy",
        "t",
        "--skip-build",
        "--image",
        IMAGE_V2,
        "--templates",
        slow,
        "--lock-duration",
        "10m",
    ]));
    running.wait_for("apply (", Duration::from_secs(30)).await;
    running.signal(Signal::INT);
    let stopped = Instant::now();
    let (status, _, stderr) = running.finish(Duration::from_secs(20)).await;
    let took = stopped.elapsed();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT after the apply stage"),
        "{stderr}"
    );
    assert!(
        stderr.contains("revision 2 is marked interrupted"),
        "{stderr}"
    );
    assert_eq!(lease_holder(&client, &t.namespace).await, None);
    let revs = revisions(&client, &t.namespace).await;
    assert_eq!(revs[1].status, RevisionStatus::Interrupted);
    assert!(
        revs[1]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("SIGINT")),
        "{revs:#?}"
    );
    // No wait for a lease: the next deploy proceeds at once.
    let out = t.wactl(&finishing_deploy_args(IMAGE_V2, &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        revisions(&client, &t.namespace).await[2].status,
        RevisionStatus::Succeeded
    );

    // SIGTERM (a cancelled CI job) during the rollback of a crash-looping deploy.
    let crash = crash_templates(&t);
    let crash = crash.to_str().expect("utf-8");
    let mut running = Running::spawn(t.command(&[
        "deploy",
        "t",
        "--skip-build",
        "--image",
        IMAGE_V1,
        "--templates",
        crash,
        "--lock-duration",
        "10m",
        "--output",
        "json",
    ]));
    running
        .wait_for("rolling back to revision 3", Duration::from_secs(60))
        .await;
    running.signal(Signal::TERM);
    let (status, stdout, stderr) = running.finish(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(143), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON report");
    assert_eq!(report["error"]["code"], "interrupted", "{stdout}");
    assert_eq!(lease_holder(&client, &t.namespace).await, None);
    let revs = revisions(&client, &t.namespace).await;
    assert_eq!(revs[3].status, RevisionStatus::Interrupted, "{revs:#?}");
    let out = t.wactl(&finishing_deploy_args(IMAGE_V1, &[]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V1));
    let revs = revisions(&client, &t.namespace).await;
    let orphaned = orphans(&client, &t.namespace, &revs[4]).await;
    assert!(orphaned.is_empty(), "orphaned: {orphaned:?}");
    eprintln!("FAULT sigint: exit 130 {took:?} after the signal; sigterm: exit 143");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn two_deploys_at_once_exactly_one_proceeds() {
    let _up = INFRA.read().await;
    let t = TestEnv::new("f-race", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    // Pods that take 5 s to get ready keep the winner holding the lock while the other
    // reaches it.
    let slow = t.templates(
        "slow",
        &[],
        &[
            ("wactl.dev/kwok-fault", "slow-start"),
            ("wactl.dev/kwok-slow-start-delay", "5s"),
        ],
    );
    let slow = slow.to_str().expect("utf-8");
    // Each child deploys an image of its own that is not live yet, so neither can find
    // "nothing to change" when its plan comes after the other's apply: both reach the lock.
    for round in 0..3 {
        let image =
            |who: &str| format!("127.0.0.1:5000/world-address/address-service:r{round}{who}");
        let (image_a, image_b) = (image("a"), image("b"));
        support::push(&image_a);
        support::push(&image_b);
        let args = |image: &str| {
            t.command(&[
                "deploy",
                "t",
                "--skip-build",
                "--image",
                image,
                "--templates",
                slow,
            ])
        };
        let a = Running::spawn(args(&image_a));
        let b = Running::spawn(args(&image_b));
        let (pa, pb) = (a.pid(), b.pid());
        let (sa, _, ea) = a.finish(Duration::from_secs(90)).await;
        let (sb, _, eb) = b.finish(Duration::from_secs(90)).await;
        let (winner, loser, loser_err, image) = match (sa.code(), sb.code()) {
            (Some(0), Some(1)) => (pa, pb, eb, image_a),
            (Some(1), Some(0)) => (pb, pa, ea, image_b),
            other => panic!("round {round}: exit codes {other:?}\nA:\n{ea}\nB:\n{eb}"),
        };
        assert!(loser_err.contains("is being deployed by "), "{loser_err}");
        assert!(
            loser_err.contains(&format!("(pid {winner}) since ")),
            "the loser (pid {loser}) names the winner: {loser_err}"
        );
        assert_eq!(live_image(&client, &t.namespace).await, pinned(&image));
    }
    let revs = revisions(&client, &t.namespace).await;
    assert_eq!(revs.len(), 4, "one revision per round: {revs:#?}");
    assert!(revs.iter().all(|r| r.status == RevisionStatus::Succeeded));
    eprintln!("FAULT race: 3 rounds, exactly one deploy proceeded in each");
}

fn running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
}

/// Waits at most `wait` for `pid` to exit; true if it did.
fn exited(pid: u32, wait: Duration) -> bool {
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() >= wait {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Signals an infra component by its pidfile and waits (at most `wait`) for it to exit.
fn stop_component(component: &str, signal: Signal, wait: Duration) -> u32 {
    let pidfile = infra_dir().join("run").join(format!("{component}.pid"));
    let text = std::fs::read_to_string(&pidfile)
        .unwrap_or_else(|e| panic!("{}: {e} (did infra start {component}?)", pidfile.display()));
    let pid: u32 = text
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid");
    send_signal(pid, signal);
    exited(pid, wait);
    pid
}

/// dockerd can linger for minutes after "Daemon shutdown complete" (its containerd stops),
/// and `infra up` refuses a dockerd that runs without answering: give it `grace`, then
/// SIGKILL what is left of it.
fn finish_off(pid: u32, grace: Duration) {
    if !exited(pid, grace) {
        if let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = kill_process(target, Signal::KILL);
        }
        assert!(
            exited(pid, Duration::from_secs(10)),
            "pid {pid} survived SIGKILL"
        );
    }
}

/// `cargo xtask infra up`: starts what is down (warm: about a second). The built xtask
/// binary is run directly when there is one: through cargo, a concurrent build holding
/// the target directory's lock (or a changed xtask source) would keep the component down
/// for minutes.
fn infra_up() {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let xtask = target.join("debug").join("xtask");
    // A component that was just killed may still hold its port for a moment, and the
    // xtask binary may be being rebuilt: a few attempts.
    let mut failures = Vec::new();
    for _ in 0..4 {
        let mut command = if xtask.is_file() {
            Command::new(&xtask)
        } else {
            let mut cargo =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
            cargo.arg("xtask");
            cargo
        };
        match command.args(["infra", "up"]).current_dir(root()).output() {
            Ok(out) if out.status.success() => return,
            Ok(out) => failures.push(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => failures.push(e.to_string()),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("infra up failed 4 times:\n{}", failures.join("\n---\n"));
}

/// Restores the infrastructure even when the test fails halfway.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        infra_up();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn kube_apiserver_restarted_while_tracking_the_deploy_still_finishes() {
    let _down = INFRA.write().await;
    let t = TestEnv::new("f-apiserver", "");
    let env = t.load();
    let client = client(&env).await;
    first_deploy(&client, &env).await;
    let slow = t.templates(
        "slow",
        &[],
        &[
            ("wactl.dev/kwok-fault", "slow-start"),
            ("wactl.dev/kwok-slow-start-delay", "8s"),
        ],
    );
    let slow = slow.to_str().expect("utf-8");
    let mut running =
        Running::spawn(t.command(&finishing_deploy_args(IMAGE_V2, &["--templates", slow])));
    running.wait_for("apply (", Duration::from_secs(30)).await;
    let restarted = Instant::now();
    {
        let _restore = Restore;
        stop_component("kube-apiserver", Signal::KILL, Duration::from_secs(10));
    }
    let downtime = restarted.elapsed();
    let (status, _, stderr) = running.finish(Duration::from_secs(120)).await;
    let finished = restarted.elapsed();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("✓ track"), "{stderr}");
    assert!(
        stderr.contains("lost the watch, retrying"),
        "the outage is shown while it lasts: {stderr}"
    );
    let revs = revisions(&client, &t.namespace).await;
    assert_eq!(revs[1].status, RevisionStatus::Succeeded, "{revs:#?}");
    assert_eq!(live_image(&client, &t.namespace).await, pinned(IMAGE_V2));
    assert_eq!(lease_holder(&client, &t.namespace).await, None);
    eprintln!(
        "FAULT apiserver: down and back in {downtime:?}; deploy finished {finished:?} after the stop\n{stderr}"
    );
}

/// A build context holding `payload` (`bytes` of random data, or a sparse file of that
/// size) and a Dockerfile override that copies it. No RUN step: a RUN needs the engine's
/// bridge network, which this machine's Docker does not have.
fn build_inputs(t: &TestEnv, bytes: u64, random: bool) -> (PathBuf, PathBuf) {
    let context = t.dir.path().join("context");
    std::fs::create_dir_all(&context).expect("mkdir");
    let payload = std::fs::File::create(context.join("payload")).expect("create");
    if random {
        let mut urandom = std::fs::File::open("/dev/urandom").expect("urandom");
        let copied = std::io::copy(&mut (&mut urandom).take(bytes), &mut &payload).expect("copy");
        assert_eq!(copied, bytes);
    } else {
        payload.set_len(bytes).expect("sparse file");
    }
    let templates = t.dir.path().join("build-templates");
    std::fs::create_dir_all(&templates).expect("mkdir");
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_nanos()
    );
    std::fs::write(
        templates.join("Dockerfile.tera"),
        format!(
            "FROM wactl.local/debian:bookworm\nLABEL test.nonce={nonce}\nCOPY payload /payload\n"
        ),
    )
    .expect("write");
    (context, templates)
}

/// Nothing of a deploy that failed before applying: no namespace, so no revision or lease.
async fn nothing_recorded(client: &Client, t: &TestEnv) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(
        namespaces
            .get_opt(&t.namespace)
            .await
            .expect("get")
            .is_none(),
        "namespace {} exists",
        t.namespace
    );
}

fn build_deploy(t: &TestEnv, context: &Path, templates: &Path, docker_config: &Path) -> Command {
    let mut command = t.command(&[
        "deploy",
        "t",
        "--source",
        context.to_str().expect("utf-8"),
        "--templates",
        templates.to_str().expect("utf-8"),
    ]);
    command.env("DOCKER_CONFIG", docker_config);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn the_docker_daemon_stopped_during_a_build_fails_clearly_and_records_nothing() {
    let _down = INFRA.write().await;
    let t = TestEnv::new("f-dockerd", "");
    let client = client(&t.load()).await;
    // 32 MB (sparse here, hashed and streamed in full): the engine is stopped as the
    // context scan ends, so the build request meets a stopping engine.
    let (context, templates) = build_inputs(&t, 32 << 20, false);
    let config = tempfile::tempdir().expect("temp dir");
    let mut running = Running::spawn(build_deploy(&t, &context, &templates, config.path()));
    running.wait_for("context: ", Duration::from_secs(60)).await;
    let stopped = Instant::now();
    let (status, _, stderr, took) = {
        let _restore = Restore;
        let dockerd = stop_component("dockerd", Signal::TERM, Duration::from_secs(2));
        let (status, out, err) = running.finish(Duration::from_secs(60)).await;
        let took = stopped.elapsed();
        finish_off(dockerd, Duration::from_secs(10));
        (status, out, err, took)
    };
    let restored = stopped.elapsed();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Docker Engine"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    nothing_recorded(&client, &t).await;
    let last = stderr.lines().rfind(|l| !l.trim().is_empty());
    eprintln!(
        "FAULT dockerd: wactl exited 1 {took:?} after the SIGTERM; engine back after {restored:?}; error: {last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn the_registry_down_during_a_push_fails_clearly_and_records_nothing() {
    let _down = INFRA.write().await;
    let t = TestEnv::new("f-registry", "");
    let client = client(&t.load()).await;
    // A 64 MB layer of random bytes, so the push is still going when the registry stops.
    let (context, templates) = build_inputs(&t, 64 << 20, true);
    let config = tempfile::tempdir().expect("temp dir");
    let mut running = Running::spawn(build_deploy(&t, &context, &templates, config.path()));
    running.wait_for("pushing ", Duration::from_secs(120)).await;
    let stopped = Instant::now();
    let (status, _, stderr) = {
        let _restore = Restore;
        stop_component("registry", Signal::TERM, Duration::from_secs(10));
        running.finish(Duration::from_secs(180)).await
    };
    let took = stopped.elapsed();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("push of 127.0.0.1:5000/"), "{stderr}");
    nothing_recorded(&client, &t).await;
    let error: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("push of"))
        .collect();
    eprintln!("FAULT registry-down: exit 1 {took:?} after the stop; error: {error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_registry_answering_401_fails_clearly_and_records_nothing() {
    let _up = INFRA.read().await;
    let t = TestEnv::with_registry("f-unauthorized", "127.0.0.1:5001", "");
    let client = client(&t.load()).await;
    let (context, templates) = build_inputs(&t, 16, true);
    // No credentials at all: an empty Docker configuration.
    let config = tempfile::tempdir().expect("temp dir");
    let out = build_deploy(&t, &context, &templates, config.path())
        .output()
        .expect("wactl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("push of 127.0.0.1:5001/"), "{stderr}");
    assert!(stderr.contains("docker login"), "{stderr}");
    nothing_recorded(&client, &t).await;
    let error: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("push of"))
        .collect();
    eprintln!("FAULT registry-401: exit 1; error: {error:?}");
}
