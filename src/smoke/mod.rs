//! The smoke suite that proves a running environment answers correctly.
//!
//! [`run`] builds the suite from the definition ([`suite::suite`]), waits for readiness with
//! exponential backoff up to a deadline, sends every other check once with a per-request
//! timeout, and reports each check with its latency and, when it failed, the answer that
//! failed it. It never returns an error: an unreachable service is a failed check.

pub mod suite;

use crate::config::Environment;
use serde::Serialize;
use serde_json::Value;
use std::time::{Duration, Instant};
use suite::{Check, CheckKind, Expect, RequestCheck, Route, Target};

/// How a smoke run reaches the environment.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Readiness is retried until this much time has passed since the start.
    pub deadline: Duration,
    /// Each request gives up after this long.
    pub request_timeout: Duration,
    /// The URL goes through the nginx proxy of `nginx/nginx.conf`: check its security
    /// headers and rate limit, and expect `/metrics` hidden.
    pub through_nginx: bool,
    /// Where `/metrics` is served when the URL goes through nginx (which hides it); without
    /// it the metrics check runs only on a direct URL.
    pub metrics_url: Option<String>,
}

impl SmokeOptions {
    /// Options from the definition's `smoke` settings. The URL is taken to go through nginx
    /// when nginx is enabled and the URL is its local port (`local.ports.nginx` on
    /// 127.0.0.1/localhost); then `/metrics` is read from the service's own local port.
    pub fn for_environment(env: &Environment, base_url: &str) -> Self {
        let local_port = |service: &str| env.local.ports.get(service).copied();
        let url_port = reqwest::Url::parse(base_url).ok().and_then(|u| {
            let local = matches!(
                u.host_str(),
                Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
            );
            local.then(|| u.port_or_known_default()).flatten()
        });
        let through_nginx =
            env.components.nginx.is_some() && url_port.is_some() && url_port == local_port("nginx");
        let metrics_url = through_nginx
            .then(|| local_port(&env.app.name))
            .flatten()
            .map(|port| format!("http://127.0.0.1:{port}"));
        SmokeOptions {
            deadline: Duration::from_secs(env.smoke.deadline_seconds),
            request_timeout: Duration::from_millis(env.smoke.request_timeout_ms),
            through_nginx,
            metrics_url,
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub base_url: String,
    pub passed: bool,
    pub elapsed_ms: u64,
    pub checks: Vec<CheckResult>,
}

impl SmokeReport {
    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run because readiness never passed.
    Skipped,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub outcome: Outcome,
    /// `GET http://…/path`
    pub request: String,
    /// HTTP status of the (last) answer, if any came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Requests sent (readiness retries, rate-limit bursts).
    pub attempts: u32,
    /// Time spent waiting out 429 answers before this check's own request (traffic that
    /// ran just before the smoke suite, an earlier smoke run's rate-limit check included,
    /// may have spent the client's budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_for_rate_limit_ms: Option<u64>,
    pub failure: Option<Failure>,
}

/// Why a check failed and the answer that failed it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub reason: String,
    /// The answer's body, cut at [`BODY_EXCERPT`] bytes.
    pub body: Option<String>,
}

/// How much of a failing answer's body a report keeps.
pub const BODY_EXCERPT: usize = 2_000;

/// Failed: the service never became ready.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("invalid URL {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("smoke failed against {url}: {}", failed.join(", "))]
    Failed { url: String, failed: Vec<String> },
}

/// Checks that `url` is an absolute http(s) URL.
pub fn check_url(url: &str) -> Result<reqwest::Url, SmokeError> {
    let invalid = |message: String| SmokeError::InvalidUrl {
        url: url.to_owned(),
        message,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("only http and https URLs can be checked".into()));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("the URL has no host".into()));
    }
    Ok(parsed)
}

/// Runs the suite for `env` against `base_url` (e.g. `http://127.0.0.1:18081`).
pub async fn run(env: &Environment, base_url: &str, options: &SmokeOptions) -> SmokeReport {
    let start = Instant::now();
    let base_url = base_url.trim_end_matches('/').to_owned();
    let route = Route {
        through_nginx: options.through_nginx,
        has_metrics_url: options.metrics_url.is_some(),
    };
    let checks = suite::suite(env, route);
    let mut results = Vec::with_capacity(checks.len());
    match (check_url(&base_url), client(options.request_timeout)) {
        (Ok(_), Ok(client)) => {
            let runner = Runner {
                client,
                base_url: base_url.clone(),
                metrics_url: options
                    .metrics_url
                    .as_deref()
                    .map(|u| u.trim_end_matches('/').to_owned()),
                deadline: start + options.deadline,
                wait_budget_ms: std::sync::atomic::AtomicU64::new(millis(RATE_LIMIT_WAIT_BUDGET)),
            };
            let mut ready = true;
            for check in &checks {
                let result = if ready {
                    runner.run(check).await
                } else {
                    skipped(check, &runner)
                };
                if matches!(check.kind, CheckKind::Readiness(_))
                    && result.outcome != Outcome::Passed
                {
                    ready = false;
                }
                results.push(result);
            }
        }
        (Err(e), _) => results.push(setup_failure("url", &base_url, e.to_string())),
        (_, Err(e)) => results.push(setup_failure("client", &base_url, format!("{e:#}"))),
    }
    SmokeReport {
        passed: results.iter().all(|r| r.outcome != Outcome::Failed),
        base_url,
        elapsed_ms: millis(start.elapsed()),
        checks: results,
    }
}

fn setup_failure(name: &str, url: &str, reason: String) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        outcome: Outcome::Failed,
        request: url.to_owned(),
        status: None,
        latency_ms: 0,
        attempts: 0,
        waited_for_rate_limit_ms: None,
        failure: Some(Failure { reason, body: None }),
    }
}

fn skipped(check: &Check, runner: &Runner) -> CheckResult {
    let request = match &check.kind {
        CheckKind::Request(r) | CheckKind::Readiness(r) => runner.describe(r),
        CheckKind::RateLimit { path, .. } => format!("GET {}{path}", runner.base_url),
    };
    CheckResult {
        name: check.name.clone(),
        outcome: Outcome::Skipped,
        request,
        status: None,
        latency_ms: 0,
        attempts: 0,
        waited_for_rate_limit_ms: None,
        failure: None,
    }
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; wactl uses ring everywhere.
    // Installing fails harmlessly when another part of wactl already did it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("wactl-smoke/", env!("CARGO_PKG_VERSION")))
        // Smoke judges the answer it got: a redirect is an answer.
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Runner {
    client: reqwest::Client,
    base_url: String,
    metrics_url: Option<String>,
    deadline: Instant,
    /// What is left of [`RATE_LIMIT_WAIT_BUDGET`], in milliseconds.
    wait_budget_ms: std::sync::atomic::AtomicU64,
}

/// The longest a whole run waits out 429 answers (across checks), and the longest one
/// wait: enough for a drained nginx burst or a service's per-minute window to refill in
/// part, bounded so a service that always answers 429 still fails in good time.
const RATE_LIMIT_WAIT_BUDGET: Duration = Duration::from_secs(30);
const RATE_LIMIT_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long to wait after a 429 that does not say (nginx's `limit_req` sends no
/// `Retry-After`; its bucket refills at the configured rate).
const RATE_LIMIT_WAIT_DEFAULT: Duration = Duration::from_secs(1);

/// How long a 429 asks the client to wait: `Retry-After` in seconds, else the default,
/// never more than [`RATE_LIMIT_WAIT_MAX`].
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(RATE_LIMIT_WAIT_DEFAULT, |secs| {
            Duration::from_secs(secs.max(1))
        })
        .min(RATE_LIMIT_WAIT_MAX)
}

/// One answer, read whole.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
    latency: Duration,
}

impl Runner {
    fn url(&self, r: &RequestCheck) -> String {
        let base = match r.target {
            Target::Metrics => self.metrics_url.as_deref().unwrap_or(&self.base_url),
            Target::Base => &self.base_url,
        };
        format!("{base}{}", r.path)
    }

    fn describe(&self, r: &RequestCheck) -> String {
        format!("{} {}", r.method, self.url(r))
    }

    async fn run(&self, check: &Check) -> CheckResult {
        match &check.kind {
            CheckKind::Request(r) => {
                let (result, _) = self.once(&check.name, r).await;
                result
            }
            CheckKind::Readiness(r) => self.until_ready(&check.name, r).await,
            CheckKind::RateLimit {
                path,
                requests,
                concurrency,
            } => {
                self.rate_limit(&check.name, path, *requests, *concurrency)
                    .await
            }
        }
    }

    async fn send(&self, r: &RequestCheck) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| format!("invalid HTTP method {:?}", r.method))?;
        let mut request = self.client.request(method, self.url(r));
        if let Some(body) = &r.body {
            request = request.json(body);
        }
        let start = Instant::now();
        let response = request.send().await.map_err(describe_error)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(describe_error)?;
        Ok(Answer {
            status,
            headers,
            body,
            latency: start.elapsed(),
        })
    }

    /// Sends `r`; a 429 it did not expect is waited out (as `Retry-After` asks, within
    /// the run's budget) and the request sent again. Returns the answer and the time waited.
    async fn send_patiently(&self, r: &RequestCheck) -> (Result<Answer, String>, Duration) {
        let mut waited = Duration::ZERO;
        loop {
            let answer = self.send(r).await;
            let pause = match &answer {
                Ok(a) if a.status == 429 && r.expect.status != 429 => retry_after(&a.headers),
                _ => return (answer, waited),
            };
            if !self.take_from_budget(pause) {
                return (answer, waited);
            }
            tokio::time::sleep(pause).await;
            waited += pause;
        }
    }

    /// Takes `pause` from the run's wait budget; false when it does not fit.
    fn take_from_budget(&self, pause: Duration) -> bool {
        use std::sync::atomic::Ordering;
        let pause = millis(pause);
        self.wait_budget_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(pause)
            })
            .is_ok()
    }

    async fn once(&self, name: &str, r: &RequestCheck) -> (CheckResult, Option<Answer>) {
        let start = Instant::now();
        let mut result = CheckResult {
            name: name.to_owned(),
            outcome: Outcome::Passed,
            request: self.describe(r),
            status: None,
            latency_ms: 0,
            attempts: 1,
            waited_for_rate_limit_ms: None,
            failure: None,
        };
        let (answer, waited) = self.send_patiently(r).await;
        if !waited.is_zero() {
            result.waited_for_rate_limit_ms = Some(millis(waited));
        }
        match answer {
            Ok(answer) => {
                result.status = Some(answer.status);
                result.latency_ms = millis(answer.latency);
                if let Err(reason) = judge(&r.expect, &answer) {
                    result.outcome = Outcome::Failed;
                    result.failure = Some(Failure {
                        reason,
                        body: Some(excerpt(&answer.body)),
                    });
                }
                (result, Some(answer))
            }
            Err(reason) => {
                result.latency_ms = millis(start.elapsed());
                result.outcome = Outcome::Failed;
                result.failure = Some(Failure { reason, body: None });
                (result, None)
            }
        }
    }

    /// Retries with exponential backoff (100 ms doubling up to 2 s) until the deadline.
    async fn until_ready(&self, name: &str, r: &RequestCheck) -> CheckResult {
        let mut delay = Duration::from_millis(100);
        let mut attempts = 0;
        let mut waited = 0;
        loop {
            attempts += 1;
            let (mut result, _) = self.once(name, r).await;
            result.attempts = attempts;
            waited += result.waited_for_rate_limit_ms.unwrap_or(0);
            result.waited_for_rate_limit_ms = (waited > 0).then_some(waited);
            let now = Instant::now();
            if result.outcome == Outcome::Passed || now + delay >= self.deadline {
                if let Some(failure) = result.failure.as_mut().filter(|_| attempts > 1) {
                    failure.reason = format!(
                        "not ready after {attempts} attempts (deadline reached); last: {}",
                        failure.reason
                    );
                }
                return result;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn rate_limit(
        &self,
        name: &str,
        path: &str,
        requests: usize,
        concurrency: usize,
    ) -> CheckResult {
        let probe = RequestCheck {
            method: "GET".into(),
            target: Target::Base,
            path: path.to_owned(),
            body: None,
            expect: Expect::default(),
        };
        // Start from a full bucket: whatever ran before (an earlier smoke run's own
        // burst, the user's traffic) may have spent it; the first request says.
        let (first, waited) = self.send_patiently(&probe).await;
        let start = Instant::now();
        let mut statuses = Vec::with_capacity(requests);
        let mut errors = Vec::new();
        let mut sent = 1;
        match first {
            Ok(a) => statuses.push(a.status),
            Err(e) => errors.push(e),
        }
        while sent < requests && !statuses.contains(&429) {
            let wave = concurrency.min(requests - sent);
            let answers =
                futures_util::future::join_all((0..wave).map(|_| self.send(&probe))).await;
            sent += wave;
            for answer in answers {
                match answer {
                    Ok(a) => statuses.push(a.status),
                    Err(e) => errors.push(e),
                }
            }
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        let other: Vec<u16> = statuses
            .iter()
            .copied()
            .filter(|s| *s != 429 && *s != 200)
            .collect();
        let reason = if let Some(e) = errors.first() {
            Some(format!("{} of {sent} requests failed: {e}", errors.len()))
        } else if statuses.first() != Some(&200) {
            Some(format!(
                "the first request was answered {:?}, not 200",
                statuses.first()
            ))
        } else if limited == 0 {
            Some(format!(
                "{sent} requests in {} ms were never answered 429",
                millis(start.elapsed())
            ))
        } else if !other.is_empty() {
            Some(format!("unexpected statuses {other:?}"))
        } else {
            None
        };
        CheckResult {
            name: name.to_owned(),
            outcome: if reason.is_some() {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            request: format!("GET {}{path} ×{sent}", self.base_url),
            status: statuses.last().copied(),
            latency_ms: millis(start.elapsed()),
            attempts: u32::try_from(sent).unwrap_or(u32::MAX),
            waited_for_rate_limit_ms: (!waited.is_zero()).then(|| millis(waited)),
            failure: reason.map(|reason| Failure { reason, body: None }),
        }
    }
}

/// A transport error as a person reads it: what failed, with its cause.
fn describe_error(error: reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "cannot read the answer"
    } else {
        "request failed"
    };
    let mut message = what.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

fn excerpt(body: &str) -> String {
    if body.len() <= BODY_EXCERPT {
        return body.to_owned();
    }
    let mut end = BODY_EXCERPT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &body[..end], body.len())
}

/// Whether `answer` meets `expect`; the first mismatch otherwise.
fn judge(expect: &Expect, answer: &Answer) -> Result<(), String> {
    if answer.status != expect.status {
        return Err(format!(
            "expected status {}, got {}",
            expect.status, answer.status
        ));
    }
    if let Some(max) = expect.max_latency
        && answer.latency > max
    {
        return Err(format!(
            "took {} ms, more than the {} ms allowed",
            millis(answer.latency),
            millis(max)
        ));
    }
    for (name, value) in &expect.headers {
        match answer.headers.get(name).map(|v| v.to_str()) {
            Some(Ok(got)) if got == value => {}
            Some(got) => {
                return Err(format!(
                    "header {name}: expected {value:?}, got {:?}",
                    got.unwrap_or("<not text>")
                ));
            }
            None => return Err(format!("header {name} is missing")),
        }
    }
    if !expect.json.is_empty() {
        let body: Value = serde_json::from_str(&answer.body)
            .map_err(|e| format!("the answer is not JSON: {e}"))?;
        for (pointer, want) in &expect.json {
            match body.pointer(pointer) {
                Some(got) if got == want => {}
                Some(got) => return Err(format!("{pointer}: expected {want}, got {got}")),
                None if want.is_null() => {}
                None => return Err(format!("{pointer}: missing, expected {want}")),
            }
        }
    }
    let missing: Vec<&str> = expect
        .series
        .iter()
        .filter(|s| !exposes(&answer.body, s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!("/metrics lacks {}", missing.join(", ")));
    }
    Ok(())
}

/// Whether a Prometheus text exposition has a sample of `series` (histograms by their
/// `_bucket`, `_sum` or `_count` samples).
fn exposes(text: &str, series: &str) -> bool {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .any(|name| {
            name == series
                || name
                    .strip_prefix(series)
                    .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: body.to_owned(),
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn judge_names_the_first_mismatch() {
        let mut expect = Expect {
            status: 200,
            ..Expect::default()
        };
        expect.json.push(("/valid".into(), json!(true)));
        assert_eq!(judge(&expect, &answer(200, r#"{"valid":true}"#)), Ok(()));
        assert_eq!(
            judge(&expect, &answer(503, "{}")),
            Err("expected status 200, got 503".into())
        );
        assert_eq!(
            judge(&expect, &answer(200, r#"{"valid":false}"#)),
            Err("/valid: expected true, got false".into())
        );
        assert!(
            judge(&expect, &answer(200, "<html>"))
                .is_err_and(|e| e.starts_with("the answer is not JSON"))
        );
        expect.max_latency = Some(Duration::from_millis(1));
        assert!(
            judge(&expect, &answer(200, r#"{"valid":true}"#))
                .is_err_and(|e| e.contains("more than the 1 ms"))
        );
    }

    #[test]
    fn series_are_found_by_sample_name() {
        let text = "# HELP http_requests_total x\nhttp_request_duration_seconds_bucket{le=\"1\"} 2\nprocess_resident_memory_bytes 123\n";
        assert!(exposes(text, "http_request_duration_seconds"));
        assert!(exposes(text, "process_resident_memory_bytes"));
        assert!(!exposes(text, "http_requests_total"));
        assert!(!exposes(text, "process_resident"));
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(BODY_EXCERPT);
        let cut = excerpt(&body);
        assert!(cut.ends_with(&format!("… ({} bytes)", body.len())));
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("127.0.0.1:8080").is_err());
        assert!(check_url("ftp://example.org").is_err());
    }
}
