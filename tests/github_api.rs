//! The GitHub reporter against a local mock of the REST API on 127.0.0.1 that asserts every
//! request (method, path, JSON body, `Authorization`) and answers like GitHub, errors included.

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use wactl::config::Environment;
use wactl::github::{GithubError, Reporter, Settings, State, Token};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_TestToken0123456789abcdefSECRET";
const REPO: &str = "/repos/world-address/wactl";

fn staging() -> Environment {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
    wactl::config::load(&dir, "staging").expect("staging.yaml loads")
}

fn settings(server: &MockServer) -> Settings {
    Settings {
        api_url: server.uri(),
        token: Some(Token::new(TOKEN)),
        repository: Some("world-address/wactl".into()),
        server_url: "https://github.example".into(),
        run_id: Some("4242".into()),
        git_ref: Some("0123abcd".into()),
        actions: false,
        timeout: Duration::from_secs(5),
    }
}

fn reporter(server: &MockServer, require: bool) -> Reporter {
    Reporter::new(&staging(), settings(server), require).expect("reporter")
}

fn authorized() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Bearer {TOKEN}").as_str())
}

/// Everything a caller could show: the error's Display and Debug, and the warnings.
fn assert_no_token(texts: &[String]) {
    for text in texts {
        assert!(!text.contains(TOKEN), "token leaked into: {text}");
        assert!(!text.contains("TestToken"), "token leaked into: {text}");
    }
}

async fn mount_deployment(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments")))
        .and(authorized())
        .and(body_partial_json(json!({
            "ref": "0123abcd",
            "environment": "staging",
            "auto_merge": false,
            "required_contexts": [],
            "production_environment": false,
            "payload": { "wactl_environment": "staging" },
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 42, "ref": "0123abcd", "environment": "staging",
        })))
        .expect(1)
        .named("create deployment")
        .mount(server)
        .await;
}

fn status_body(state: &str) -> serde_json::Value {
    json!({
        "state": state,
        "environment": "staging",
        "environment_url": "https://address.staging.world-address.example",
        "log_url": "https://github.example/world-address/wactl/actions/runs/4242",
        "auto_inactive": true,
    })
}

#[tokio::test]
async fn deploy_creates_a_deployment_and_posts_statuses() {
    let server = MockServer::start().await;
    mount_deployment(&server).await;
    for state in ["in_progress", "success"] {
        Mock::given(method("POST"))
            .and(path(format!("{REPO}/deployments/42/statuses")))
            .and(authorized())
            .and(body_partial_json(status_body(state)))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "state": state })),
            )
            .expect(1)
            .named(state)
            .mount(&server)
            .await;
    }
    let github = reporter(&server, true);
    assert!(github.is_enabled());
    let handle = github
        .start_deployment(
            github.git_ref().expect("GITHUB_SHA"),
            Some("https://address.staging.world-address.example"),
        )
        .await
        .expect("deployment");
    assert_eq!(handle.id, Some(42));
    github
        .status(&handle, State::Success, "revision 7 is live")
        .await
        .expect("status");
    assert!(github.warnings().is_empty());
    let requests = server.received_requests().await.expect("recording");
    let last: serde_json::Value = requests[2].body_json().expect("json");
    assert_eq!(last["description"], "revision 7 is live");
}

#[tokio::test]
async fn failure_status_carries_a_short_description() {
    let server = MockServer::start().await;
    mount_deployment(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments/42/statuses")))
        .and(body_partial_json(json!({ "state": "in_progress" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments/42/statuses")))
        .and(body_partial_json(status_body("failure")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 2 })))
        .expect(1)
        .mount(&server)
        .await;
    let github = reporter(&server, false);
    let handle = github
        .start_deployment(
            "0123abcd",
            Some("https://address.staging.world-address.example"),
        )
        .await
        .expect("deployment");
    github
        .status(&handle, State::Failure, &"rollout failed: ".repeat(20))
        .await
        .expect("status");
    let requests = server.received_requests().await.expect("recording");
    let body: serde_json::Value = requests[2].body_json().expect("json");
    let description = body["description"].as_str().expect("description");
    assert_eq!(description.chars().count(), 140, "GitHub's limit");
}

#[tokio::test]
async fn pr_comment_is_created_when_none_has_the_marker() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/17/comments")))
        .and(query_param("per_page", "100"))
        .and(query_param("page", "1"))
        .and(authorized())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 1, "body": "LGTM" },
            { "id": 2, "body": "<!-- wactl:diff:production -->\nplan for production" },
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/issues/17/comments")))
        .and(authorized())
        .and(body_partial_json(json!({
            "body": "<!-- wactl:diff:staging -->\n### Plan for staging\n1 to update",
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 99, "html_url": "https://github.example/world-address/wactl/pull/17#issuecomment-99",
        })))
        .expect(1)
        .mount(&server)
        .await;
    let comment = reporter(&server, true)
        .upsert_pr_comment(17, "### Plan for staging\n1 to update")
        .await
        .expect("comment")
        .expect("posted");
    assert_eq!(comment.id, 99);
    assert!(comment.created);
}

#[tokio::test]
async fn pr_comment_with_the_marker_is_updated_not_duplicated() {
    let server = MockServer::start().await;
    let unrelated: Vec<_> = (1..=100)
        .map(|id| json!({ "id": id, "body": format!("comment {id}") }))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/17/comments")))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(unrelated)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{REPO}/issues/17/comments")))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 555, "body": "<!-- wactl:diff:staging -->\nold plan" },
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{REPO}/issues/comments/555")))
        .and(authorized())
        .and(body_partial_json(
            json!({ "body": "<!-- wactl:diff:staging -->\nnew plan" }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 555 })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let comment = reporter(&server, true)
        .upsert_pr_comment(17, "new plan")
        .await
        .expect("comment")
        .expect("posted");
    assert_eq!(comment.id, 555);
    assert!(!comment.created);
}

/// How GitHub answers each failure, and what wactl must make of it.
struct Failure {
    name: &'static str,
    response: ResponseTemplate,
    expect: fn(&GithubError) -> bool,
    warning: &'static str,
}

fn failures() -> Vec<Failure> {
    vec![
        Failure {
            name: "401 bad credentials",
            response: ResponseTemplate::new(401).set_body_json(json!({
                "message": format!("Bad credentials: {TOKEN}"),
                "documentation_url": "https://docs.github.com/rest",
            })),
            expect: |e| matches!(e, GithubError::Rejected { status: 401, .. }),
            warning: "answered 401: Bad credentials: *** (the token was rejected: check GITHUB_TOKEN)",
        },
        Failure {
            name: "403 rate limit",
            response: ResponseTemplate::new(403)
                .insert_header("x-ratelimit-limit", "1000")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "1767225600")
                .set_body_json(json!({
                    "message": "API rate limit exceeded for installation ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
                })),
            expect: |e| matches!(e, GithubError::RateLimited { reset: Some(1_767_225_600), .. }),
            warning: "rate limit is exhausted (it resets at unix time 1767225600)",
        },
        Failure {
            name: "403 missing permission",
            response: ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "999")
                .set_body_json(json!({ "message": "Resource not accessible by integration" })),
            expect: |e| matches!(e, GithubError::Rejected { status: 403, .. }),
            warning: "Resource not accessible by integration (the token lacks permission",
        },
        Failure {
            name: "422 validation",
            response: ResponseTemplate::new(422).set_body_json(json!({
                "message": "Validation Failed",
                "errors": [{ "resource": "Deployment", "field": "ref", "code": "invalid" }],
            })),
            expect: |e| matches!(e, GithubError::Rejected { status: 422, .. }),
            warning: "answered 422: Validation Failed (Deployment ref invalid)",
        },
        Failure {
            name: "502 bad gateway",
            response: ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>"),
            expect: |e| matches!(e, GithubError::Rejected { status: 502, .. }),
            warning: "answered 502: <html>502 Bad Gateway</html> (GitHub is having trouble",
        },
        Failure {
            name: "500 empty",
            response: ResponseTemplate::new(500),
            expect: |e| matches!(e, GithubError::Rejected { status: 500, .. }),
            warning: "answered 500: no message",
        },
    ]
}

#[tokio::test]
async fn api_failures_warn_unless_github_is_required() {
    for failure in failures() {
        // Without --require-github: a warning, the deploy goes on, no status is attempted.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("{REPO}/deployments")))
            .and(authorized())
            .respond_with(failure.response.clone())
            .expect(1)
            .mount(&server)
            .await;
        let github = reporter(&server, false);
        let handle = github
            .start_deployment("0123abcd", None)
            .await
            .unwrap_or_else(|e| panic!("{}: must only warn, got {e}", failure.name));
        assert_eq!(handle.id, None, "{}", failure.name);
        github
            .status(&handle, State::Success, "done")
            .await
            .expect("no deployment: nothing to post");
        let warnings = github.warnings();
        assert_eq!(warnings.len(), 1, "{}: {warnings:?}", failure.name);
        assert!(
            warnings[0].contains(failure.warning),
            "{}: {}",
            failure.name,
            warnings[0]
        );
        assert!(warnings[0].contains("creating the GitHub deployment failed"));
        assert_no_token(&warnings);
        server.verify().await;

        // With --require-github: the typed error, and still no token.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(failure.response.clone())
            .expect(1)
            .mount(&server)
            .await;
        let github = reporter(&server, true);
        let error = github
            .start_deployment("0123abcd", None)
            .await
            .expect_err(failure.name);
        assert!((failure.expect)(&error), "{}: {error:?}", failure.name);
        assert!(!error.is_invalid_input());
        assert!(github.warnings().is_empty());
        assert_no_token(&[error.to_string(), format!("{error:?}")]);
    }
}

#[tokio::test]
async fn comment_failures_warn_unless_github_is_required() {
    for failure in failures() {
        for require in [false, true] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path(format!("{REPO}/issues/3/comments")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path(format!("{REPO}/issues/3/comments")))
                .respond_with(failure.response.clone())
                .expect(1)
                .mount(&server)
                .await;
            let github = reporter(&server, require);
            let result = github.upsert_pr_comment(3, "plan").await;
            match (require, result) {
                (false, Ok(None)) => {
                    let warnings = github.warnings();
                    assert!(warnings[0].contains("creating the pull-request comment failed"));
                    assert!(warnings[0].contains(failure.warning), "{}", warnings[0]);
                    assert_no_token(&warnings);
                }
                (true, Err(error)) => {
                    assert!((failure.expect)(&error), "{}: {error:?}", failure.name);
                    assert_no_token(&[error.to_string(), format!("{error:?}")]);
                }
                (_, other) => panic!("{} require={require}: {other:?}", failure.name),
            }
        }
    }
}

#[tokio::test]
async fn status_failure_after_a_created_deployment_is_a_warning() {
    let server = MockServer::start().await;
    mount_deployment(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("{REPO}/deployments/42/statuses")))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({ "message": "Service Unavailable" })),
        )
        .expect(2)
        .mount(&server)
        .await;
    let github = reporter(&server, false);
    let handle = github
        .start_deployment("0123abcd", None)
        .await
        .expect("warn only");
    assert_eq!(handle.id, Some(42));
    github
        .status(&handle, State::Success, "done")
        .await
        .expect("warn only");
    let warnings = github.warnings();
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("posting the GitHub deployment status failed"))
    );
}

#[tokio::test]
async fn slow_github_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut settings = settings(&server);
    settings.timeout = Duration::from_secs(1);
    let github = Reporter::new(&staging(), settings, true).expect("reporter");
    let error = github
        .start_deployment("0123abcd", None)
        .await
        .expect_err("timeout");
    assert!(
        matches!(
            error,
            GithubError::Timeout { .. } | GithubError::Transport { .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn unreachable_github_is_a_warning() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut settings = settings(&MockServer::start().await);
    settings.api_url = format!("http://127.0.0.1:{port}");
    let github = Reporter::new(&staging(), settings.clone(), false).expect("reporter");
    let handle = github
        .start_deployment("0123abcd", None)
        .await
        .expect("warn only");
    assert_eq!(handle.id, None);
    let warnings = github.warnings();
    assert!(
        warnings[0].contains("POST /repos/world-address/wactl/deployments"),
        "{warnings:?}"
    );
    assert_no_token(&warnings);

    let required = Reporter::new(&staging(), settings, true).expect("reporter");
    let error = required
        .start_deployment("0123abcd", None)
        .await
        .expect_err("required");
    assert!(matches!(error, GithubError::Transport { .. }), "{error:?}");
    assert_no_token(&[error.to_string(), format!("{error:?}")]);
}

#[tokio::test]
async fn missing_token_disables_reporting_or_fails_when_required() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let mut without = settings(&server);
    without.token = None;

    let local = Reporter::new(&staging(), without.clone(), false).expect("disabled");
    assert!(!local.is_enabled());
    assert!(
        local.warnings().is_empty(),
        "no token outside Actions is normal"
    );
    let handle = local
        .start_deployment("0123abcd", None)
        .await
        .expect("no-op");
    assert_eq!(handle.id, None);
    assert_eq!(local.upsert_pr_comment(1, "x").await.expect("no-op"), None);

    without.actions = true;
    let in_actions = Reporter::new(&staging(), without.clone(), false).expect("disabled");
    assert!(in_actions.warnings()[0].contains("GITHUB_TOKEN is not set"));

    let error = Reporter::new(&staging(), without, true).expect_err("required");
    assert!(matches!(error, GithubError::MissingToken));
    assert!(error.is_invalid_input());
}

#[tokio::test]
async fn repository_comes_from_the_definition_and_must_be_owner_name() {
    let env = staging();
    let from_definition = Settings::from_lookup(&env, |name| match name {
        "GITHUB_TOKEN" => Some(TOKEN.into()),
        _ => None,
    });
    assert_eq!(
        from_definition.repository.as_deref(),
        Some("world-address/wactl")
    );
    assert_eq!(from_definition.api_url, "https://api.github.com");
    assert_eq!(from_definition.log_url(), None);

    let from_actions = Settings::from_lookup(&env, |name| match name {
        "GITHUB_REPOSITORY" => Some("fork/wactl".into()),
        "GITHUB_RUN_ID" => Some("9".into()),
        "GITHUB_SERVER_URL" => Some("https://ghe.example/".into()),
        _ => None,
    });
    assert_eq!(from_actions.repository.as_deref(), Some("fork/wactl"));
    assert_eq!(
        from_actions.log_url().as_deref(),
        Some("https://ghe.example/fork/wactl/actions/runs/9")
    );

    let server = MockServer::start().await;
    let mut bad = settings(&server);
    bad.repository = Some("not-a-repo".into());
    let error = Reporter::new(&env, bad, true).expect_err("invalid");
    assert!(
        matches!(error, GithubError::InvalidRepository(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn deployments_off_in_the_definition_means_no_deployment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let mut env = staging();
    env.github.deployments = false;
    let github = Reporter::new(&env, settings(&server), true).expect("reporter");
    let handle = github
        .start_deployment("0123abcd", None)
        .await
        .expect("skipped");
    assert_eq!(handle.id, None);
    github
        .status(&handle, State::Success, "done")
        .await
        .expect("skipped");
}

#[tokio::test]
async fn debug_output_never_shows_the_token() {
    let server = MockServer::start().await;
    let settings = settings(&server);
    let github = Reporter::new(&staging(), settings.clone(), false).expect("reporter");
    assert_no_token(&[format!("{settings:?}"), format!("{github:?}")]);
}

#[test]
fn missing_settings_exit_with_code_2_and_api_failures_with_1() {
    let missing = anyhow::Error::from(GithubError::MissingToken).context("wactl deploy staging");
    assert_eq!(wactl::cli::exit_code(&missing), 2);
    let rejected = anyhow::Error::from(GithubError::RateLimited {
        step: wactl::github::Step::PostStatus,
        reset: None,
    });
    assert_eq!(wactl::cli::exit_code(&rejected), 1);
}

#[tokio::test]
async fn enterprise_api_url_keeps_its_path_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v3/repos/world-address/wactl/deployments"))
        .and(authorized())
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 5 })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v3/repos/world-address/wactl/deployments/5/statuses",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .expect(1)
        .mount(&server)
        .await;
    let mut settings = settings(&server);
    settings.api_url = format!("{}/api/v3/", server.uri());
    let github = Reporter::new(&staging(), settings, true).expect("reporter");
    let handle = github
        .start_deployment("0123abcd", None)
        .await
        .expect("deployment");
    assert_eq!(handle.id, Some(5));
}
