//! Cluster access: which kubeconfig file and context an environment uses.

use super::ClusterError;
use crate::config::Environment;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command-line overrides of the definition's `cluster.kubeconfig` and `cluster.context`.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// Where the kubeconfig comes from, most specific first: `--kubeconfig`, `KUBECONFIG`,
/// the definition, `~/.kube/config`.
pub fn kubeconfig_path(env: &Environment, access: &Access) -> PathBuf {
    let from_env = std::env::var_os("KUBECONFIG")
        .filter(|v| !v.is_empty())
        .and_then(|v| std::env::split_paths(&v).next());
    access
        .kubeconfig
        .clone()
        .or(from_env)
        .or_else(|| env.cluster.kubeconfig.clone())
        .map(|p| expand_home(&p))
        .unwrap_or_else(|| expand_home(Path::new("~/.kube/config")))
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

/// Connects to the cluster of `env` and checks that the API server answers.
pub async fn connect(env: &Environment, access: &Access) -> Result<Client, ClusterError> {
    let path = kubeconfig_path(env, access);
    let bad = |message: String| ClusterError::Kubeconfig {
        path: path.clone(),
        message,
    };
    if !path.exists() {
        return Err(bad(
            "file does not exist (set cluster.kubeconfig in the definition, KUBECONFIG, or --kubeconfig)"
                .to_owned(),
        ));
    }
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|e| bad(e.to_string()))?;
    let context = access
        .context
        .clone()
        .or_else(|| env.cluster.context.clone())
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or_else(|| bad("no context given and no current-context set".to_owned()))?;
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        let available = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ClusterError::UnknownContext {
            path,
            context,
            available,
        });
    }
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        cluster: None,
        user: None,
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| bad(format!("context {context:?}: {e}")))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    let server = config.cluster_url.to_string();
    let unreachable = |message: String| ClusterError::Unreachable {
        server: server.clone(),
        context: context.clone(),
        path: path.clone(),
        message,
    };
    let client = Client::try_from(config).map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(unreachable(super::api_message(&e))),
        Err(_) => Err(unreachable("no answer within 10 s".to_owned())),
    }
}
