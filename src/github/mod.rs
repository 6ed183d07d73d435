//! Reporting to GitHub: deployments and statuses, PR comments, and Actions files.
//!
//! Two halves. [`actions`] writes what a workflow run shows (annotations, the step summary,
//! step outputs) and needs no network. [`Reporter`] talks to the GitHub REST API through
//! octocrab: a Deployment with statuses per `wactl deploy`, and one pull-request comment per
//! environment that `wactl diff --comment-pr` keeps up to date.
//!
//! GitHub is a side channel: unless the caller asks for `--require-github`, an API failure
//! becomes a warning and the deploy goes on. The token is held in a [`Token`] that never
//! prints, and every message that came back from the API is scrubbed of it.
//!
//! ```no_run
//! # async fn deploy(env: &wactl::config::Environment) -> Result<(), wactl::github::GithubError> {
//! use wactl::github::{Reporter, State};
//! let github = Reporter::from_env(env, false)?;
//! let sha = github.git_ref().unwrap_or("main").to_owned();
//! let deployment = github.start_deployment(&sha, Some("https://staging.example.org")).await?;
//! // … build, apply, track, smoke …
//! github.status(&deployment, State::Success, "revision 7 is live").await?;
//! # Ok(()) }
//! ```

pub mod actions;
mod api;
pub mod preview;
mod step;
pub mod summary;

pub use actions::Actions;
pub use api::{DeploymentHandle, PrComment, Reporter, Settings, State};
pub use step::DeployStep;
pub use summary::{
    DeploySummary, ObjectAction, Outcome, PlannedObject, RolloutRow, SmokeRow, StageTiming,
    from_report, plan_comment, plan_markdown, planned_objects, saved_plan_markdown,
};

use std::fmt;

/// A GitHub token. It has no `Display`, its `Debug` is redacted, and [`Token::scrub`]
/// removes it from any text that came back from the API.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it: the client's credentials.
    fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the token replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The marker that identifies wactl's plan comment for `environment` on a pull request.
pub fn comment_marker(environment: &str) -> String {
    format!("<!-- wactl:diff:{environment} -->")
}

/// One call to the GitHub API, named for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateDeployment,
    PostStatus,
    ListComments,
    UpdateComment,
    CreateComment,
    ListDeployments,
    GetPullRequest,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CreateDeployment => "creating the GitHub deployment",
            Step::PostStatus => "posting the GitHub deployment status",
            Step::ListComments => "listing the pull request's comments",
            Step::UpdateComment => "updating the pull-request comment",
            Step::CreateComment => "creating the pull-request comment",
            Step::ListDeployments => "listing the environment's GitHub deployments",
            Step::GetPullRequest => "reading the pull request",
        })
    }
}

/// What went wrong talking to GitHub. No variant ever holds the token.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error(
        "GITHUB_TOKEN is not set, and --require-github needs it (in a workflow: `env: GITHUB_TOKEN: ${{{{ github.token }}}}`)"
    )]
    MissingToken,
    #[error(
        "no GitHub repository for environment `{environment}`: set GITHUB_REPOSITORY or `github.repository` in its definition"
    )]
    MissingRepository { environment: String },
    #[error("GitHub repository `{0}` is not `owner/name`")]
    InvalidRepository(String),
    #[error("GITHUB_API_URL `{url}` is not usable: {message}")]
    Client { url: String, message: String },
    #[error("{step} failed: {method} {path} answered {status}: {message}")]
    Rejected {
        step: Step,
        method: &'static str,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{step} failed: GitHub's API rate limit is exhausted{}", reset.map(|r| format!(" (it resets at unix time {r})")).unwrap_or_default())]
    RateLimited { step: Step, reset: Option<u64> },
    #[error("{step} failed: {method} {path}: {message}")]
    Transport {
        step: Step,
        method: &'static str,
        path: String,
        message: String,
    },
    #[error("{step} did not finish within {seconds} s")]
    Timeout { step: Step, seconds: u64 },
    #[error("{step} failed: unexpected answer from GitHub: {message}")]
    Unexpected { step: Step, message: String },
}

impl GithubError {
    /// Missing or malformed settings (exit code 2), as opposed to a failed API call.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            GithubError::MissingToken
                | GithubError::MissingRepository { .. }
                | GithubError::InvalidRepository(_)
                | GithubError::Client { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let token = Token::new("ghp_secret123");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert_eq!(
            token.scrub("Bearer ghp_secret123 was bad"),
            "Bearer *** was bad"
        );
        assert_eq!(Token::new("").scrub("text"), "text");
    }

    #[test]
    fn marker_names_the_environment() {
        assert_eq!(comment_marker("staging"), "<!-- wactl:diff:staging -->");
    }

    #[test]
    fn missing_token_message_shows_the_workflow_expression() {
        assert!(
            GithubError::MissingToken
                .to_string()
                .contains("${{ github.token }}")
        );
    }
}
