//! The one place a failure becomes an exit code, per the CLI contract: 0 success, 1 the
//! operation failed (and was rolled back), 2 invalid input or usage (a declined or
//! impossible confirmation included: the user decided), 3 the rollback failed too,
//! 130/143 stopped by SIGINT/SIGTERM.

use crate::build::BuildError;
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::deploy::fleet::{FleetError, FleetReport};
use crate::deploy::{DeployError, Outcome, Signal};
use crate::github::GithubError;
use crate::local::LocalError;
use crate::render::RenderError;
use crate::smoke::SmokeError;
use std::error::Error;

/// The operation failed.
pub const FAILED: u8 = 1;
/// Invalid input or usage, or a confirmation declined or impossible.
pub const INVALID_INPUT: u8 = 2;
/// The operation failed and so did its rollback.
pub const ROLLBACK_FAILED: u8 = 3;

/// The exit code of a failed command: decided by the first cause in the chain that wactl
/// knows, else 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.chain().find_map(classify).unwrap_or(FAILED)
}

/// [`exit_code`] of a library error and its sources.
pub fn code_of(error: &(dyn Error + 'static)) -> u8 {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(code) = classify(e) {
            return code;
        }
        cause = e.source();
    }
    FAILED
}

fn classify(cause: &(dyn Error + 'static)) -> Option<u8> {
    if let Some(e) = cause.downcast_ref::<DeployError>() {
        return Some(deploy(e));
    }
    if let Some(e) = cause.downcast_ref::<FleetError>() {
        return fleet(e);
    }
    if let Some(e) = cause.downcast_ref::<ClusterError>() {
        return Some(cluster(e));
    }
    if let Some(e) = cause.downcast_ref::<crate::deploy::plan_file::PlanFileError>() {
        return Some(if e.is_invalid_input() {
            INVALID_INPUT
        } else {
            FAILED
        });
    }
    if let Some(e) = cause.downcast_ref::<crate::deploy::preview::PreviewError>() {
        return Some(if e.is_invalid_input() {
            INVALID_INPUT
        } else {
            FAILED
        });
    }
    if let Some(e) = cause.downcast_ref::<BuildError>() {
        return Some(build(e));
    }
    if let Some(e) = cause.downcast_ref::<RenderError>() {
        return Some(render(e));
    }
    if let Some(e) = cause.downcast_ref::<LocalError>() {
        return local(e);
    }
    if cause.is::<ConfigError>()
        || cause.is::<super::UsageError>()
        || cause.is::<super::render::RenderInputError>()
    {
        return Some(INVALID_INPUT);
    }
    if let Some(e) = cause.downcast_ref::<GithubError>() {
        return Some(if e.is_invalid_input() {
            INVALID_INPUT
        } else {
            FAILED
        });
    }
    if let Some(e) = cause.downcast_ref::<SmokeError>() {
        return Some(match e {
            SmokeError::InvalidUrl { .. } => INVALID_INPUT,
            _ => FAILED,
        });
    }
    None
}

fn deploy(error: &DeployError) -> u8 {
    match error {
        DeployError::ConfirmationRequired { .. }
        | DeployError::Declined { .. }
        | DeployError::BuildUnavailable
        | DeployError::InvalidImage { .. }
        | DeployError::NoSuchRevision { .. } => INVALID_INPUT,
        DeployError::Cluster(e) => cluster(e),
        DeployError::Build(e) => build(e),
        DeployError::Render(e) => render(e),
        DeployError::Plan(e) => {
            if e.is_invalid_input() {
                INVALID_INPUT
            } else {
                FAILED
            }
        }
        DeployError::NothingToRollBack { .. } | DeployError::Failed { .. } => FAILED,
        DeployError::RollbackFailed { .. } => ROLLBACK_FAILED,
        // 128 + the signal's number, as a shell reports a process the signal killed.
        DeployError::Interrupted { signal, .. } => match signal {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        },
    }
}

fn fleet(error: &FleetError) -> Option<u8> {
    match error {
        FleetError::UnknownCluster { .. }
        | FleetError::NotSeveralClusters { .. }
        | FleetError::ContextForSeveral { .. }
        | FleetError::PlanForSeveral { .. }
        | FleetError::SavePlanForSeveral { .. } => Some(INVALID_INPUT),
        FleetError::Build(e) => Some(deploy(e)),
        FleetError::Failed { report } => Some(fleet_report(report)),
        FleetError::Clusters { failed, .. } => failed.iter().map(|(_, code)| *code).max(),
    }
}

/// A signal first, then a failed rollback anywhere (3), else 1.
fn fleet_report(report: &FleetReport) -> u8 {
    match (report.signal(), report.outcome) {
        (Some(Signal::Interrupt), _) => 130,
        (Some(Signal::Terminate), _) => 143,
        (None, Outcome::RollbackFailed) => ROLLBACK_FAILED,
        _ => FAILED,
    }
}

fn cluster(error: &ClusterError) -> u8 {
    match error {
        ClusterError::Kubeconfig { .. }
        | ClusterError::UnknownContext { .. }
        | ClusterError::UnknownWorkload { .. } => INVALID_INPUT,
        _ => FAILED,
    }
}

fn build(error: &BuildError) -> u8 {
    if error.is_invalid_input() {
        INVALID_INPUT
    } else {
        FAILED
    }
}

fn render(error: &RenderError) -> u8 {
    match error {
        RenderError::Write { .. } | RenderError::Context { .. } => FAILED,
        _ => INVALID_INPUT,
    }
}

fn local(error: &LocalError) -> Option<u8> {
    match error {
        // Look further down: the render or compose error decides.
        LocalError::Render(_) | LocalError::Compose(_) => None,
        LocalError::UnknownService { .. } => Some(INVALID_INPUT),
        _ => Some(FAILED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{Action, DeployReport};

    fn dev() -> crate::config::Environment {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        crate::config::load(&dir, "dev").expect("dev.yaml")
    }

    #[test]
    fn a_signal_exits_with_128_plus_its_number_and_keeps_the_report() {
        let env = dev();
        let interrupted = |signal| DeployError::Interrupted {
            signal,
            message: "dev: interrupted after the apply stage".into(),
            report: Box::new(DeployReport::new(&env)),
        };
        assert_eq!(code_of(&interrupted(Signal::Interrupt)), 130);
        assert_eq!(code_of(&interrupted(Signal::Terminate)), 143);
        assert!(
            interrupted(Signal::Interrupt).report().is_some(),
            "--output json still prints a report"
        );
    }

    #[test]
    fn a_decision_is_not_a_failure() {
        let declined = DeployError::Declined {
            action: Action::Deploy,
            environment: "production".into(),
        };
        assert_eq!(code_of(&declined), INVALID_INPUT);
        assert_eq!(
            declined.to_string(),
            "deploy of production cancelled: not confirmed"
        );
        let required = DeployError::ConfirmationRequired {
            action: Action::Destroy,
            environment: "dev".into(),
            protected: false,
        };
        assert_eq!(code_of(&required), INVALID_INPUT);
        assert_eq!(
            required.to_string(),
            "destroying dev needs confirmation, but there is no terminal to ask on; rerun with --yes"
        );
    }

    #[test]
    fn the_cause_decides_through_context() {
        let render = RenderError::Template {
            template: "k8s/x.yaml".into(),
            message: "bad".into(),
        };
        let wrapped = anyhow::Error::from(render).context("rendering dev");
        assert_eq!(exit_code(&wrapped), INVALID_INPUT);
        let cluster = DeployError::from(ClusterError::Timeout {
            what: "apply".into(),
            seconds: 3,
        });
        assert_eq!(exit_code(&anyhow::Error::from(cluster)), FAILED);
        assert_eq!(exit_code(&anyhow::anyhow!("anything else")), FAILED);
    }
}
