//! Registry credentials the way the Docker CLI finds them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), per-registry `credHelpers`, a global `credsStore`,
//! then `auths` entries.

use super::BuildError;
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The registry host of an image name: its first component when that looks like a host
/// (has `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image_name: &str) -> String {
    match image_name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_owned()
        }
        _ => "docker.io".to_owned(),
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// Where the CLI keeps its configuration: `dir` when given, else `DOCKER_CONFIG`, else
/// `~/.docker`.
pub fn config_path(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = dir {
        return Some(dir.join("config.json"));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// Credentials for `registry`, or `None` when the configuration has none (anonymous).
pub async fn for_registry(
    config_dir: Option<&Path>,
    registry: &str,
) -> Result<Option<DockerCredentials>, BuildError> {
    let Some(path) = config_path(config_dir) else {
        return Ok(None);
    };
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BuildError::Credentials {
                registry: registry.to_owned(),
                message: format!("cannot read {}: {e}", path.display()),
            });
        }
    };
    let config: ConfigFile = serde_json::from_str(&text).map_err(|e| BuildError::Credentials {
        registry: registry.to_owned(),
        message: format!("{} is not valid: {e}", path.display()),
    })?;
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        .map(|(_, helper)| helper.clone())
        .or_else(|| config.creds_store.clone().filter(|s| !s.is_empty()));
    if let Some(helper) = helper {
        return from_helper(&helper, registry).await;
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    from_entry(entry, registry, &path)
}

fn from_entry(
    entry: &AuthEntry,
    registry: &str,
    path: &std::path::Path,
) -> Result<Option<DockerCredentials>, BuildError> {
    let invalid = |what: &str| BuildError::Credentials {
        registry: registry.to_owned(),
        message: format!("{}: the `auths` entry has {what}", path.display()),
    };
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid("an `auth` value that is not base64"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| invalid("an `auth` value that is not UTF-8"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("an `auth` value without `user:password`"))?;
            (Some(user.to_owned()), Some(pass.to_owned()))
        }
        (_, Some(user), Some(pass)) => (Some(user.clone()), Some(pass.clone())),
        _ => (None, None),
    };
    let identitytoken = entry.identitytoken.clone().filter(|t| !t.is_empty());
    if username.is_none() && identitytoken.is_none() {
        return Ok(None);
    }
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken,
        serveraddress: Some(registry.to_owned()),
        ..Default::default()
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// Runs `docker-credential-<helper> get` with the server address on stdin.
async fn from_helper(
    helper: &str,
    registry: &str,
) -> Result<Option<DockerCredentials>, BuildError> {
    use tokio::io::AsyncWriteExt;
    let program = format!("docker-credential-{helper}");
    let failed = |message: String| BuildError::Credentials {
        registry: registry.to_owned(),
        message: format!("credential helper `{program}`: {message}"),
    };
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let run = async {
        let mut child = tokio::process::Command::new(&program)
            .arg("get")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(server.as_bytes()).await?;
        }
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| failed("no answer within 30s".to_owned()))?
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("exited with {}: {said}", output.status)));
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("its answer is not the expected JSON".to_owned()))?;
    let credentials = if reply.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(reply.secret),
            serveraddress: Some(registry.to_owned()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(reply.username),
            password: Some(reply.secret),
            serveraddress: Some(registry.to_owned()),
            ..Default::default()
        }
    };
    Ok(Some(credentials))
}

/// Config keys may carry a scheme and path (`https://index.docker.io/v1/`).
fn same_registry(key: &str, registry: &str) -> bool {
    let host = |s: &str| -> String {
        let s = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let s = s.split('/').next().unwrap_or(s);
        match s {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
            other => other.to_owned(),
        }
    };
    host(key) == host(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_found_in_image_names() {
        assert_eq!(
            registry_of("127.0.0.1:5000/world-address/address-service"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of("ghcr.io/o/r"), "ghcr.io");
        assert_eq!(registry_of("localhost/r"), "localhost");
        assert_eq!(registry_of("world-address/address-service"), "docker.io");
    }

    #[test]
    fn config_keys_match_with_or_without_scheme() {
        assert!(same_registry("https://index.docker.io/v1/", "docker.io"));
        assert!(same_registry("http://127.0.0.1:5001", "127.0.0.1:5001"));
        assert!(!same_registry("127.0.0.1:5000", "127.0.0.1:5001"));
    }

    #[test]
    fn auth_entries_decode_user_and_password() {
        let entry = AuthEntry {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("wactl:s3cret:x")),
            ..Default::default()
        };
        let creds = from_entry(&entry, "r", std::path::Path::new("c.json"))
            .expect("valid")
            .expect("some");
        assert_eq!(creds.username.as_deref(), Some("wactl"));
        assert_eq!(creds.password.as_deref(), Some("s3cret:x"));
        let bad = AuthEntry {
            auth: Some("%%%".to_owned()),
            ..Default::default()
        };
        let error = from_entry(&bad, "r", std::path::Path::new("c.json")).expect_err("bad");
        assert!(!error.to_string().contains("%%%"));
    }
}
