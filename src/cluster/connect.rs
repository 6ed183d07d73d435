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

/// The kubeconfig files to read, most specific source first: `--kubeconfig` (one file),
/// `KUBECONFIG` (a list, merged), the definition's `cluster.kubeconfig`, `~/.kube/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigFiles {
    pub paths: Vec<PathBuf>,
    /// From a `KUBECONFIG` list: files that do not exist are skipped, as kubectl does.
    pub from_list: bool,
}

impl KubeconfigFiles {
    /// Picks the files for `env`; `kubeconfig_var` is the value of `KUBECONFIG`.
    pub fn choose(
        env: &Environment,
        access: &Access,
        kubeconfig_var: Option<&std::ffi::OsStr>,
    ) -> Self {
        let single = |path: &Path| Self {
            paths: vec![expand_home(path)],
            from_list: false,
        };
        if let Some(path) = &access.kubeconfig {
            return single(path);
        }
        let listed: Vec<PathBuf> = kubeconfig_var
            .map(|v| {
                std::env::split_paths(v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| expand_home(&p))
                    .collect()
            })
            .unwrap_or_default();
        if !listed.is_empty() {
            return Self {
                paths: listed,
                from_list: true,
            };
        }
        single(
            env.cluster
                .kubeconfig
                .as_deref()
                .unwrap_or(Path::new("~/.kube/config")),
        )
    }

    /// The files as the user wrote them, for messages: `a.yaml:b.yaml`.
    pub fn display_path(&self) -> PathBuf {
        std::env::join_paths(&self.paths)
            .map(PathBuf::from)
            .unwrap_or_else(|_| self.paths.first().cloned().unwrap_or_default())
    }

    /// Reads every file and merges them as kubectl does: the first file to set a value or
    /// a named cluster, user or context wins. Files of a `KUBECONFIG` list that do not exist
    /// are skipped; when none exists, or a single named file does not, that is the error.
    pub fn read(&self) -> Result<Kubeconfig, String> {
        let mut merged: Option<Kubeconfig> = None;
        for path in &self.paths {
            if self.from_list && !path.exists() {
                continue;
            }
            if !path.exists() {
                return Err(
                    "file does not exist (set cluster.kubeconfig in the definition, KUBECONFIG, or --kubeconfig)"
                        .to_owned(),
                );
            }
            let config = Kubeconfig::read_from(path).map_err(|e| {
                if self.paths.len() > 1 {
                    format!("{}: {e}", path.display())
                } else {
                    e.to_string()
                }
            })?;
            merged = Some(match merged {
                None => config,
                Some(first) => first
                    .merge(config)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            });
        }
        merged.ok_or_else(|| {
            "none of the files in KUBECONFIG exists (set KUBECONFIG, cluster.kubeconfig in the definition, or --kubeconfig)"
                .to_owned()
        })
    }
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_owned(),
    }
}

/// Connects to the cluster of `env` and checks that the API server answers.
pub async fn connect(env: &Environment, access: &Access) -> Result<Client, ClusterError> {
    let files = KubeconfigFiles::choose(env, access, std::env::var_os("KUBECONFIG").as_deref());
    let path = files.display_path();
    let bad = |message: String| ClusterError::Kubeconfig {
        path: path.clone(),
        message,
    };
    let kubeconfig = files.read().map_err(bad)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cluster: &str, server: &str, context: &str, current: Option<&str>) -> String {
        let current = current
            .map(|c| format!("current-context: {c}\n"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\n{current}clusters:\n- name: {cluster}\n  cluster:\n    server: {server}\nusers:\n- name: {cluster}-user\n  user:\n    token: t\ncontexts:\n- name: {context}\n  context:\n    cluster: {cluster}\n    user: {cluster}-user\n"
        )
    }

    fn list(paths: &[&Path]) -> KubeconfigFiles {
        KubeconfigFiles {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            from_list: true,
        }
    }

    #[test]
    fn a_kubeconfig_list_merges_every_file_and_the_first_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        let other = dir.path().join("other.yaml");
        let infra = dir.path().join("infra.yaml");
        std::fs::write(
            &other,
            kubeconfig("other", "https://10.0.0.1", "other", Some("other")),
        )
        .expect("write");
        // infra.yaml also names a context `other`: the first file's wins.
        let infra_text = kubeconfig(
            "wactl-dev",
            "https://127.0.0.1:6443",
            "wactl-dev",
            Some("wactl-dev"),
        ) + "- name: other\n  context:\n    cluster: wactl-dev\n    user: wactl-dev-user\n";
        std::fs::write(&infra, infra_text).expect("write");
        let missing = dir.path().join("missing.yaml");
        let merged = list(&[&other, &missing, &infra]).read().expect("merged");
        let contexts: Vec<&str> = merged.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(contexts, ["other", "wactl-dev"]);
        assert_eq!(merged.current_context.as_deref(), Some("other"));
        let cluster_of = |name: &str| {
            merged
                .contexts
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.context.as_ref())
                .map(|c| c.cluster.clone())
        };
        assert_eq!(cluster_of("other").as_deref(), Some("other"));
        assert_eq!(cluster_of("wactl-dev").as_deref(), Some("wactl-dev"));
        let clusters: Vec<&str> = merged.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(clusters, ["other", "wactl-dev"]);
    }

    #[test]
    fn missing_files_are_skipped_only_in_a_list_and_not_all_of_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.yaml");
        let error = list(&[&missing, &dir.path().join("gone.yaml")])
            .read()
            .expect_err("nothing to read");
        assert!(
            error.starts_with("none of the files in KUBECONFIG exists"),
            "{error}"
        );
        let single = KubeconfigFiles {
            paths: vec![missing],
            from_list: false,
        };
        assert!(
            single
                .read()
                .expect_err("missing")
                .starts_with("file does not exist")
        );
    }

    #[test]
    fn a_broken_file_in_a_list_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = dir.path().join("good.yaml");
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&good, kubeconfig("a", "https://127.0.0.1:1", "a", None)).expect("write");
        std::fs::write(&broken, "clusters: [").expect("write");
        let error = list(&[&good, &broken]).read().expect_err("broken");
        assert!(
            error.starts_with(&format!("{}: ", broken.display())),
            "{error}"
        );
    }

    #[test]
    fn the_flag_beats_the_list_which_beats_the_definition() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let env = crate::config::load(&dir, "dev").expect("dev.yaml");
        let var = std::env::join_paths(["/a.yaml", "", "/b.yaml"]).expect("join");
        let flag = Access {
            kubeconfig: Some("/flag.yaml".into()),
            context: None,
        };
        assert_eq!(
            KubeconfigFiles::choose(&env, &flag, Some(&var)).paths,
            [PathBuf::from("/flag.yaml")]
        );
        let files = KubeconfigFiles::choose(&env, &Access::default(), Some(&var));
        assert_eq!(
            files.paths,
            [PathBuf::from("/a.yaml"), PathBuf::from("/b.yaml")]
        );
        assert!(files.from_list);
        assert_eq!(files.display_path(), PathBuf::from("/a.yaml:/b.yaml"));
        let files = KubeconfigFiles::choose(&env, &Access::default(), Some("".as_ref()));
        assert!(!files.from_list, "an empty KUBECONFIG is not a list");
        assert_eq!(files.paths.len(), 1);
    }
}
