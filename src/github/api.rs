//! The GitHub REST API calls wactl makes, through octocrab, with failures downgraded to
//! warnings unless GitHub is required.

use super::{GithubError, Step, Token, comment_marker};
use crate::config::Environment;
use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::Duration;

/// GitHub caps a deployment status description at 140 characters.
const DESCRIPTION_LIMIT: usize = 140;
/// Comments are listed 100 a page; a pull request with more than this many pages of
/// comments gets a new wactl comment rather than an endless scan.
const MAX_COMMENT_PAGES: u32 = 30;

/// Where and how to reach GitHub, normally read from the Actions environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `GITHUB_API_URL`, default `https://api.github.com`.
    pub api_url: String,
    /// `GITHUB_TOKEN`.
    pub token: Option<Token>,
    /// `GITHUB_REPOSITORY`, else the definition's `github.repository`.
    pub repository: Option<String>,
    /// `GITHUB_SERVER_URL`, default `https://github.com`; with the run id it makes the log URL.
    pub server_url: String,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_SHA`: the commit being deployed.
    pub git_ref: Option<String>,
    /// `GITHUB_ACTIONS=true`: warnings also become workflow annotations.
    pub actions: bool,
    /// Upper bound on each API call.
    pub timeout: Duration,
}

impl Settings {
    /// Settings from the process environment and the definition.
    pub fn from_env(env: &Environment) -> Self {
        Self::from_lookup(env, |name| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        })
    }

    /// Settings from `lookup` (a variable's value, `None` when unset or empty).
    pub fn from_lookup(env: &Environment, lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            api_url: lookup("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            token: lookup("GITHUB_TOKEN").map(Token::new),
            repository: lookup("GITHUB_REPOSITORY").or_else(|| env.github.repository.clone()),
            server_url: lookup("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            run_id: lookup("GITHUB_RUN_ID"),
            git_ref: lookup("GITHUB_SHA"),
            actions: lookup("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            timeout: Duration::from_secs(20),
        }
    }

    /// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`.
    pub fn log_url(&self) -> Option<String> {
        Some(format!(
            "{}/{}/actions/runs/{}",
            self.server_url.trim_end_matches('/'),
            self.repository.as_deref()?,
            self.run_id.as_deref()?
        ))
    }
}

/// A deployment status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::InProgress => "in_progress",
            State::Success => "success",
            State::Failure => "failure",
            State::Error => "error",
            State::Inactive => "inactive",
        }
    }
}

/// A GitHub Deployment that statuses are posted to. `id` is `None` when no deployment
/// exists (reporting is off, or creating it failed with a warning): statuses are then skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentHandle {
    pub id: Option<u64>,
    pub environment_url: Option<String>,
}

/// The pull-request comment wactl wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrComment {
    pub id: u64,
    pub html_url: Option<String>,
    /// `false` when an earlier comment (found by its marker) was updated.
    pub created: bool,
}

struct Client {
    octocrab: Octocrab,
    owner: String,
    repo: String,
    token: Token,
    log_url: Option<String>,
    timeout: Duration,
}

/// Reports one environment's deploys and plans to GitHub.
///
/// Every method returns `Err` only when GitHub is required (`--require-github`); otherwise a
/// failure is printed as a warning on stderr (and as a workflow annotation in Actions),
/// kept in [`Reporter::warnings`], and the method returns normally.
pub struct Reporter {
    client: Option<Client>,
    require: bool,
    environment: String,
    github_environment: String,
    deployments: bool,
    production: bool,
    git_ref: Option<String>,
    actions: bool,
    warnings: Mutex<Vec<String>>,
    /// Deployments to a preview environment, which goes away (`transient_environment`).
    transient: bool,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("enabled", &self.client.is_some())
            .field("require", &self.require)
            .field("environment", &self.environment)
            .field("github_environment", &self.github_environment)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// The reporter for `env` from the process environment (`GITHUB_TOKEN`, `GITHUB_API_URL`,
    /// `GITHUB_REPOSITORY`, …). Without a token or repository it is disabled (with a
    /// warning inside Actions), or an error when `require` is set.
    pub fn from_env(env: &Environment, require: bool) -> Result<Self, GithubError> {
        Self::new(env, Settings::from_env(env), require)
    }

    pub fn new(env: &Environment, settings: Settings, require: bool) -> Result<Self, GithubError> {
        let mut reporter = Self {
            client: None,
            require,
            environment: env.name.clone(),
            github_environment: env.github.environment.clone(),
            deployments: env.github.deployments,
            production: env.protected,
            git_ref: settings.git_ref.clone(),
            actions: settings.actions,
            warnings: Mutex::new(Vec::new()),
            transient: false,
        };
        match Client::new(env, &settings) {
            Ok(client) => reporter.client = Some(client),
            Err(error) if require => return Err(error),
            // Outside Actions, running without a token is the normal local case.
            Err(GithubError::MissingToken) if !settings.actions => {}
            Err(error) => reporter.warn(&format!("not reporting to GitHub: {error}")),
        }
        Ok(reporter)
    }

    /// A reporter that does nothing (`wactl` run without GitHub).
    pub fn disabled(env: &Environment) -> Self {
        Self {
            client: None,
            require: false,
            environment: env.name.clone(),
            github_environment: env.github.environment.clone(),
            deployments: false,
            production: env.protected,
            git_ref: None,
            actions: false,
            warnings: Mutex::new(Vec::new()),
            transient: false,
        }
    }

    /// True when API calls will be made.
    pub fn is_enabled(&self) -> bool {
        self.client.is_some()
    }

    /// The commit under deployment (`GITHUB_SHA`), when known.
    pub fn git_ref(&self) -> Option<&str> {
        self.git_ref.as_deref()
    }

    /// The warnings printed so far (also for `--output json`).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Creates a GitHub Deployment of `git_ref` to the environment's GitHub environment and
    /// marks it `in_progress`. Skipped when `github.deployments` is off.
    pub async fn start_deployment(
        &self,
        git_ref: &str,
        environment_url: Option<&str>,
    ) -> Result<DeploymentHandle, GithubError> {
        let mut handle = DeploymentHandle {
            id: None,
            environment_url: environment_url.map(str::to_owned),
        };
        let Some(client) = self.client.as_ref().filter(|_| self.deployments) else {
            return Ok(handle);
        };
        let body = json!({
            "ref": git_ref,
            "environment": self.github_environment,
            "description": truncate(&format!("wactl deploy {}", self.environment), DESCRIPTION_LIMIT),
            "auto_merge": false,
            "required_contexts": [],
            "production_environment": self.production && !self.transient,
            "transient_environment": self.transient,
            "task": "deploy",
            "payload": { "wactl_environment": self.environment },
        });
        let created = client
            .call(
                Step::CreateDeployment,
                Method::Post,
                format!("/repos/{}/{}/deployments", client.owner, client.repo),
                Some(&body),
            )
            .await
            .and_then(|(status, value)| {
                if status != StatusCode::CREATED {
                    // 202: GitHub merged the default branch into the ref instead.
                    return Err(GithubError::Unexpected {
                        step: Step::CreateDeployment,
                        message: format!("{status} {}", client.token.scrub(&message_of(&value))),
                    });
                }
                value["id"].as_u64().ok_or_else(|| GithubError::Unexpected {
                    step: Step::CreateDeployment,
                    message: "the answer has no deployment id".into(),
                })
            });
        handle.id = self.settle(created)?;
        if handle.id.is_some() {
            self.status(&handle, State::InProgress, "wactl deploy started")
                .await?;
        }
        Ok(handle)
    }

    /// Posts a status (`in_progress`, `success`, `failure`, …) with the environment and
    /// log URLs. Nothing happens for a handle without a deployment.
    pub async fn status(
        &self,
        handle: &DeploymentHandle,
        state: State,
        description: &str,
    ) -> Result<(), GithubError> {
        let (Some(client), Some(id)) = (&self.client, handle.id) else {
            return Ok(());
        };
        let mut body = json!({
            "state": state.as_str(),
            "description": truncate(description, DESCRIPTION_LIMIT),
            "environment": self.github_environment,
            "auto_inactive": true,
        });
        if let Some(url) = &handle.environment_url {
            body["environment_url"] = json!(url);
        }
        if let Some(url) = &client.log_url {
            body["log_url"] = json!(url);
        }
        let posted = client
            .call(
                Step::PostStatus,
                Method::Post,
                format!(
                    "/repos/{}/{}/deployments/{id}/statuses",
                    client.owner, client.repo
                ),
                Some(&body),
            )
            .await
            .map(|_| ());
        self.settle(posted)?;
        Ok(())
    }

    /// Marks this reporter's Deployments as made to an environment that goes away (a
    /// pull request's preview).
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    /// Marks every Deployment to this environment inactive (the preview is gone); how many.
    pub async fn deactivate_deployments(&self) -> Result<usize, GithubError> {
        let Some(client) = &self.client else {
            return Ok(0);
        };
        let listed = client
            .call(
                Step::ListDeployments,
                Method::Get,
                format!(
                    "/repos/{}/{}/deployments?environment={}&per_page=100",
                    client.owner,
                    client.repo,
                    query_value(&self.github_environment)
                ),
                None,
            )
            .await
            .map(|(_, value)| {
                value
                    .as_array()
                    .map(|items| items.iter().filter_map(|d| d["id"].as_u64()).collect())
                    .unwrap_or_default()
            });
        let ids: Vec<u64> = self.settle(listed)?.unwrap_or_default();
        for &id in &ids {
            let handle = DeploymentHandle {
                id: Some(id),
                environment_url: None,
            };
            self.status(&handle, State::Inactive, "preview removed")
                .await?;
        }
        Ok(ids.len())
    }

    /// Whether pull request `pr` is closed (merged or not); `None` when GitHub is not
    /// reachable or not configured.
    pub async fn pull_request_closed(&self, pr: u64) -> Result<Option<bool>, GithubError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let read = client
            .call(
                Step::GetPullRequest,
                Method::Get,
                format!("/repos/{}/{}/pulls/{pr}", client.owner, client.repo),
                None,
            )
            .await
            .and_then(|(_, value)| match value["state"].as_str() {
                Some(state) => Ok(state == "closed"),
                None => Err(GithubError::Unexpected {
                    step: Step::GetPullRequest,
                    message: "the answer has no state".into(),
                }),
            });
        self.settle(read)
    }

    /// Posts `markdown` on pull request `pr` under this environment's marker, updating
    /// the comment an earlier run left instead of adding another.
    pub async fn upsert_pr_comment(
        &self,
        pr: u64,
        markdown: &str,
    ) -> Result<Option<PrComment>, GithubError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let marker = comment_marker(&self.environment);
        let result = client.upsert_comment(pr, &marker, markdown).await;
        self.settle(result)
    }

    /// Posts `markdown` on pull request `pr` under the preview comment's marker.
    pub async fn upsert_preview_comment(
        &self,
        pr: u64,
        markdown: &str,
    ) -> Result<Option<PrComment>, GithubError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let marker = super::preview::preview_marker(&self.environment);
        let result = client.upsert_comment(pr, &marker, markdown).await;
        self.settle(result)
    }

    /// `Err` when required; otherwise a warning and `None`.
    fn settle<T>(&self, result: Result<T, GithubError>) -> Result<Option<T>, GithubError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) if self.require => Err(error),
            Err(error) => {
                self.warn(&format!(
                    "{error} (continuing: GitHub reporting is best effort without --require-github)"
                ));
                Ok(None)
            }
        }
    }

    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
        if self.actions {
            eprintln!(
                "{}",
                super::actions::annotation(
                    super::actions::Level::Warning,
                    super::actions::Place::default(),
                    message
                )
            );
        }
        if let Ok(mut warnings) = self.warnings.lock() {
            warnings.push(message.to_owned());
        }
    }
}

/// A query parameter's value, percent-encoded (environment names are mostly safe already).
fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

impl Client {
    fn new(env: &Environment, settings: &Settings) -> Result<Self, GithubError> {
        let token = settings.token.clone().ok_or(GithubError::MissingToken)?;
        let repository =
            settings
                .repository
                .clone()
                .ok_or_else(|| GithubError::MissingRepository {
                    environment: env.name.clone(),
                })?;
        let (owner, repo) = match repository.split_once('/') {
            Some((owner, repo)) if !owner.is_empty() && !repo.is_empty() && !repo.contains('/') => {
                (owner.to_owned(), repo.to_owned())
            }
            _ => return Err(GithubError::InvalidRepository(repository)),
        };
        let client_error = |message: String| GithubError::Client {
            url: settings.api_url.clone(),
            message: token.scrub(&message),
        };
        let octocrab = Octocrab::builder()
            .base_uri(settings.api_url.as_str())
            .map_err(|e| client_error(e.to_string()))?
            .personal_token(token.expose().to_owned())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(settings.timeout))
            .build()
            .map_err(|e| client_error(e.to_string()))?;
        Ok(Self {
            octocrab,
            owner,
            repo,
            token,
            log_url: settings.log_url(),
            timeout: settings.timeout,
        })
    }

    /// One API call: the status and JSON body of a 2xx answer, a typed error otherwise.
    async fn call(
        &self,
        step: Step,
        method: Method,
        path: String,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), GithubError> {
        let transport = |message: String| GithubError::Transport {
            step,
            method: method.as_str(),
            path: path.clone(),
            message: self.token.scrub(&message),
        };
        let request = async {
            let response = match method {
                Method::Get => self.octocrab._get(path.as_str()).await,
                Method::Post => self.octocrab._post(path.as_str(), body).await,
                Method::Patch => self.octocrab._patch(path.as_str(), body).await,
            }
            .map_err(|e| transport(error_chain(&e)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let text = self
                .octocrab
                .body_to_string(response)
                .await
                .map_err(|e| transport(error_chain(&e)))?;
            Ok::<_, GithubError>((status, headers, text))
        };
        let (status, headers, text) =
            tokio::time::timeout(self.timeout, request)
                .await
                .map_err(|_| GithubError::Timeout {
                    step,
                    seconds: self.timeout.as_secs(),
                })??;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&text) {
                Ok(value) => value,
                Err(_) if !status.is_success() => Value::String(text),
                Err(e) => {
                    return Err(GithubError::Unexpected {
                        step,
                        message: format!("{status} with a body that is not JSON ({e})"),
                    });
                }
            }
        };
        if status.is_success() {
            return Ok((status, value));
        }
        Err(self.rejection(step, method, path, status, &headers, &value))
    }

    fn rejection(
        &self,
        step: Step,
        method: Method,
        path: String,
        status: StatusCode,
        headers: &HeaderMap,
        value: &Value,
    ) -> GithubError {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let exhausted = header("x-ratelimit-remaining") == Some("0");
        let secondary = header("retry-after").is_some();
        if (status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS)
            && (exhausted || secondary)
        {
            return GithubError::RateLimited {
                step,
                reset: header("x-ratelimit-reset").and_then(|v| v.parse().ok()),
            };
        }
        let detail = self.token.scrub(&message_of(value));
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (the token was rejected: check GITHUB_TOKEN)",
            StatusCode::FORBIDDEN => {
                " (the token lacks permission: the workflow needs `permissions: deployments: write` and `pull-requests: write`)"
            }
            StatusCode::NOT_FOUND => " (check the repository name and that the token can see it)",
            s if s.is_server_error() => " (GitHub is having trouble; try again later)",
            _ => "",
        };
        GithubError::Rejected {
            step,
            method: method.as_str(),
            path,
            status: status.as_u16(),
            message: format!("{detail}{hint}"),
        }
    }

    async fn upsert_comment(
        &self,
        pr: u64,
        marker: &str,
        markdown: &str,
    ) -> Result<PrComment, GithubError> {
        let body = json!({ "body": format!("{marker}\n{markdown}") });
        if let Some(id) = self.find_comment(pr, marker).await? {
            let (_, value) = self
                .call(
                    Step::UpdateComment,
                    Method::Patch,
                    format!("/repos/{}/{}/issues/comments/{id}", self.owner, self.repo),
                    Some(&body),
                )
                .await?;
            return Ok(PrComment {
                id,
                html_url: value["html_url"].as_str().map(str::to_owned),
                created: false,
            });
        }
        let (_, value) = self
            .call(
                Step::CreateComment,
                Method::Post,
                format!("/repos/{}/{}/issues/{pr}/comments", self.owner, self.repo),
                Some(&body),
            )
            .await?;
        let id = value["id"]
            .as_u64()
            .ok_or_else(|| GithubError::Unexpected {
                step: Step::CreateComment,
                message: "the answer has no comment id".into(),
            })?;
        Ok(PrComment {
            id,
            html_url: value["html_url"].as_str().map(str::to_owned),
            created: true,
        })
    }

    /// The id of the first comment on `pr` that carries `marker`.
    async fn find_comment(&self, pr: u64, marker: &str) -> Result<Option<u64>, GithubError> {
        for page in 1..=MAX_COMMENT_PAGES {
            let (_, value) = self
                .call(
                    Step::ListComments,
                    Method::Get,
                    format!(
                        "/repos/{}/{}/issues/{pr}/comments?per_page=100&page={page}",
                        self.owner, self.repo
                    ),
                    None,
                )
                .await?;
            let comments = value.as_array().ok_or_else(|| GithubError::Unexpected {
                step: Step::ListComments,
                message: "the answer is not a list of comments".into(),
            })?;
            let found = comments
                .iter()
                .find(|c| c["body"].as_str().is_some_and(|body| body.contains(marker)));
            if let Some(comment) = found {
                return Ok(comment["id"].as_u64());
            }
            if comments.len() < 100 {
                break;
            }
        }
        Ok(None)
    }
}

/// GitHub's `message`, with the field errors of a 422 appended.
fn message_of(value: &Value) -> String {
    let mut message = match value {
        Value::String(text) => text.clone(),
        Value::Object(_) => value["message"].as_str().unwrap_or("no message").to_owned(),
        _ => "no message".to_owned(),
    };
    if let Some(errors) = value["errors"].as_array() {
        let details: Vec<String> = errors
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                _ => [
                    e["resource"].as_str(),
                    e["field"].as_str(),
                    e["code"].as_str(),
                    e["message"].as_str(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            })
            .collect();
        if !details.is_empty() {
            message.push_str(&format!(" ({})", details.join("; ")));
        }
    }
    truncate(&message.replace(['\r', '\n'], " "), 400)
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_of_422_lists_field_errors() {
        let value = json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Deployment", "field": "ref", "code": "invalid"}],
        });
        assert_eq!(
            message_of(&value),
            "Validation Failed (Deployment ref invalid)"
        );
        assert_eq!(message_of(&json!("plain\ntext")), "plain text");
    }

    #[test]
    fn descriptions_are_cut_to_githubs_limit() {
        let long = "x".repeat(300);
        let cut = truncate(&long, DESCRIPTION_LIMIT);
        assert_eq!(cut.chars().count(), DESCRIPTION_LIMIT);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }
}
