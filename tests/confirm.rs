//! A protected environment is asked before anything is written: against the control plane
//! of `cargo xtask infra up`, a declined deploy leaves no image build, no namespace, no
//! revision and no lock behind, and the question carries the plan itself.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use std::sync::Mutex;
use support::TestEnv;
use wactl::cluster::{Access, Change};
use wactl::deploy::{
    self, Confirmation, Decision, DeployError, DeployEvent, DeployObserver, DeployOptions,
    EventKind, Stage, StageStatus,
};

/// Says no, and keeps what it saw.
#[derive(Default)]
struct Declines {
    events: Mutex<Vec<String>>,
    questions: Mutex<Vec<Confirmation>>,
}

impl DeployObserver for Declines {
    fn event(&self, event: &DeployEvent) {
        let seen = match &event.kind {
            EventKind::StageStarted(stage) => format!("start {stage}"),
            EventKind::StageFinished(stage) => format!("{} {:?}", stage.name, stage.status),
            EventKind::Planned(_) => "planned".to_owned(),
            EventKind::Build(_) => "build event".to_owned(),
            _ => "other".to_owned(),
        };
        self.events.lock().expect("events").push(seen);
    }

    fn confirm(&self, question: &Confirmation) -> Decision {
        self.questions
            .lock()
            .expect("questions")
            .push(question.clone());
        Decision::Declined
    }
}

/// The project's environments plus a protected `t` in a namespace of its own (removed on
/// drop).
fn protected_environment(test: &str) -> (TestEnv, wactl::config::Environment) {
    let t = TestEnv::extending(
        &format!("confirm-{test}"),
        "base",
        "protected: true\nimage:\n  registry: 127.0.0.1:5000\n  tag: v1\n\
         github:\n  environment: t\n  deployments: false\n",
    );
    let env = t.load();
    (t, env)
}

/// Deploys protected `t` with `options` to an observer that declines: what it saw, and
/// whether the namespace exists afterwards.
async fn declined(test: &str, options: DeployOptions) -> (Vec<Confirmation>, Vec<String>, bool) {
    let (_t, env) = protected_environment(test);
    let client = wactl::cluster::connect(&env, &Access::default())
        .await
        .expect("cluster reachable");
    let observer = Declines::default();
    let error = deploy::deploy(&client, &env, &options, &observer)
        .await
        .expect_err("declined");
    assert!(matches!(error, DeployError::Declined { .. }), "{error}");
    assert_eq!(wactl::cli::code_of(&error), 2);
    let api: Api<Namespace> = Api::all(client.clone());
    let exists = api
        .get_opt(&env.cluster.namespace)
        .await
        .expect("namespace lookup")
        .is_some();
    let questions = std::mem::take(&mut *observer.questions.lock().expect("questions"));
    let events = std::mem::take(&mut *observer.events.lock().expect("events"));
    (questions, events, exists)
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_declined_protected_deploy_is_asked_before_the_build_and_writes_nothing() {
    let options = DeployOptions {
        // Never reached: the question comes first. A build here would fail loudly (no
        // build context), which the events below would show.
        build: Some(wactl::build::BuildOptions::new(
            std::env::temp_dir().join("wactl-no-such-context"),
        )),
        ..DeployOptions::default()
    };
    let (questions, events, namespace_exists) = declined("build", options).await;
    let [Confirmation::Deploy { plan, build, .. }] = questions.as_slice() else {
        panic!("one deploy question: {questions:?}");
    };
    assert!(*build, "asked before the build");
    let creates = plan
        .objects
        .iter()
        .filter(|o| o.change == Change::Create)
        .count();
    assert!(creates >= 5, "the question carries the plan: {plan:?}");
    assert_eq!(events, ["planned"], "nothing ran before the question");
    assert!(!namespace_exists, "nothing was written");
}

#[tokio::test]
#[ignore = "needs infra: cargo xtask infra up"]
async fn a_declined_protected_deploy_of_a_given_image_is_asked_after_the_plan() {
    let options = DeployOptions {
        image: Some("127.0.0.1:5000/world-address/address-service:v1".to_owned()),
        skip_build: true,
        ..DeployOptions::default()
    };
    let (questions, events, namespace_exists) = declined("image", options).await;
    assert!(
        matches!(
            questions.as_slice(),
            [Confirmation::Deploy { build: false, .. }]
        ),
        "{questions:?}"
    );
    // `--image` is looked up in the registry first; whether its note (tag missing, or the
    // registry could not be asked) comes depends on what the registry holds, not on the order
    // asked about here.
    let events: Vec<String> = events.into_iter().filter(|e| e != "other").collect();
    let expected = [
        format!("{} {:?}", Stage::Build, StageStatus::Skipped),
        format!("start {}", Stage::Render),
        format!("{} {:?}", Stage::Render, StageStatus::Ok),
        format!("start {}", Stage::Plan),
        format!("{} {:?}", Stage::Plan, StageStatus::Ok),
        "planned".to_owned(),
    ];
    assert_eq!(events, expected);
    assert!(!namespace_exists, "nothing was written");
}
