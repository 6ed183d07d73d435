//! The control plane's certificates (one CA, openssl CLI) and the kubeconfigs built on them.

use super::cluster::{self, Cluster};
use super::state::{StateDir, random_hex, write_if_changed};
use anyhow::{Context, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kubeconfig context (and cluster) name wactl's `dev` environment selects.
pub const CONTEXT: &str = cluster::FIRST.context;

/// A client or server certificate signed by the infra CA.
pub struct Leaf {
    /// File stem under `<state>/pki/`.
    pub name: &'static str,
    /// Subject common name: the Kubernetes user name for client certificates.
    pub common_name: &'static str,
    /// Subject organisation: the Kubernetes group.
    pub organization: Option<&'static str>,
    /// Subject alternative names of a server certificate (empty for clients).
    pub sans: &'static str,
    pub server: bool,
}

pub const APISERVER: Leaf = Leaf {
    name: "apiserver",
    common_name: "kube-apiserver",
    organization: None,
    sans: APISERVER_SANS,
    server: true,
};
pub const ADMIN: Leaf = Leaf {
    name: "admin",
    common_name: "wactl-admin",
    organization: Some("system:masters"),
    sans: "",
    server: false,
};
pub const CONTROLLER_MANAGER: Leaf = Leaf {
    name: "kube-controller-manager",
    common_name: "system:kube-controller-manager",
    organization: None,
    sans: "",
    server: false,
};
pub const SCHEDULER: Leaf = Leaf {
    name: "kube-scheduler",
    common_name: "system:kube-scheduler",
    organization: None,
    sans: "",
    server: false,
};
/// kwok writes node and pod status for every simulated node, which no narrower built-in
/// role covers.
pub const KWOK: Leaf = Leaf {
    name: "kwok",
    common_name: "wactl-kwok",
    organization: Some("system:masters"),
    sans: "",
    server: false,
};

/// The real node's kubelet: the Node authorizer and NodeRestriction know it by this name.
pub const KUBELET: Leaf = Leaf {
    name: "kubelet",
    common_name: "system:node:real-node-0",
    organization: Some("system:nodes"),
    sans: "",
    server: false,
};
/// The real node's kube-proxy (bound to the built-in `system:node-proxier` role).
pub const KUBE_PROXY: Leaf = Leaf {
    name: "kube-proxy",
    common_name: "system:kube-proxy",
    organization: None,
    sans: "",
    server: false,
};
/// CoreDNS for the real node's pods: reads Services, EndpointSlices and Namespaces, for
/// which no built-in role exists (a cluster installs its own `system:coredns`).
pub const COREDNS: Leaf = Leaf {
    name: "coredns",
    common_name: "wactl-coredns",
    organization: Some("system:masters"),
    sans: "",
    server: false,
};

/// PostgreSQL's and Redis' TLS certificate: the tests reach them as 127.0.0.1 or localhost.
pub const DATASTORE: Leaf = Leaf {
    name: "datastore",
    common_name: "localhost",
    organization: None,
    sans: "DNS:localhost,IP:127.0.0.1",
    server: true,
};

/// Subject alternative names of the apiserver's serving certificate.
const APISERVER_SANS: &str = "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
    DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,\
    IP:127.0.0.1,IP:10.96.0.1";

/// One cluster's CA and certificates, and the kubeconfigs that reach its API server.
pub struct Pki {
    dir: PathBuf,
    server: String,
    context: &'static str,
    /// Appended to kubeconfig user names, so one file can hold every cluster's users.
    user_suffix: &'static str,
}

impl Pki {
    /// The first cluster's.
    pub fn at(state: &StateDir) -> Self {
        Self::of(&cluster::FIRST, state)
    }

    pub fn of(cluster: &Cluster, state: &StateDir) -> Self {
        Self {
            dir: cluster.path(state, "pki"),
            server: cluster.apiserver_url(),
            context: cluster.context,
            user_suffix: cluster.suffix,
        }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn cert(&self, leaf: &Leaf) -> PathBuf {
        self.dir.join(format!("{}.crt", leaf.name))
    }
    pub fn key(&self, leaf: &Leaf) -> PathBuf {
        self.dir.join(format!("{}.key", leaf.name))
    }
    /// The ServiceAccount token signing key pair.
    pub fn service_account_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn service_account_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }

    /// Creates whatever of the CA, leaves and ServiceAccount key is missing. Existing files
    /// are kept so a restart keeps every issued kubeconfig and token valid.
    pub fn ensure(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        if !self.ca_cert().is_file() || !self.ca_key().is_file() {
            // A new CA invalidates every leaf signed by the old one.
            for entry in std::fs::read_dir(&self.dir)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "crt") {
                    std::fs::remove_file(path)?;
                }
            }
            self.generate_key(&self.ca_key())?;
            let config = self.dir.join("ca.cnf");
            std::fs::write(
                &config,
                format!(
                    "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {}-ca\n\
                     [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
                     keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n\
                     subjectKeyIdentifier = hash\n",
                    self.context
                ),
            )?;
            openssl(&self.dir, |c| {
                c.args([
                    "req",
                    "-x509",
                    "-new",
                    "-sha256",
                    "-days",
                    "3650",
                    "-extensions",
                    "v3_ca",
                ])
                .arg("-config")
                .arg(&config)
                .arg("-key")
                .arg(self.ca_key())
                .arg("-out")
                .arg(self.ca_cert());
            })?;
        }
        for leaf in [&APISERVER, &ADMIN, &CONTROLLER_MANAGER, &SCHEDULER, &KWOK] {
            if !self.cert(leaf).is_file() || !self.key(leaf).is_file() {
                self.issue(leaf)?;
            }
        }
        if !self.service_account_key().is_file() || !self.service_account_pub().is_file() {
            openssl(&self.dir, |c| {
                c.args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .arg("-out")
                .arg(self.service_account_key());
            })?;
            openssl(&self.dir, |c| {
                c.args(["pkey", "-pubout", "-in"])
                    .arg(self.service_account_key())
                    .arg("-out")
                    .arg(self.service_account_pub());
            })?;
        }
        Ok(())
    }

    /// Issues `leaf` unless its certificate and key exist (the CA must exist already).
    pub fn ensure_leaf(&self, leaf: &Leaf) -> anyhow::Result<()> {
        if !self.cert(leaf).is_file() || !self.key(leaf).is_file() {
            self.issue(leaf)?;
        }
        Ok(())
    }

    fn generate_key(&self, path: &Path) -> anyhow::Result<()> {
        openssl(&self.dir, |c| {
            c.args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .arg("-out")
            .arg(path);
        })
    }

    fn issue(&self, leaf: &Leaf) -> anyhow::Result<()> {
        self.generate_key(&self.key(leaf))?;
        let csr = self.dir.join(format!("{}.csr", leaf.name));
        openssl(&self.dir, |c| {
            c.args(["req", "-new", "-key"])
                .arg(self.key(leaf))
                .arg("-subj")
                .arg(subject(leaf))
                .arg("-out")
                .arg(&csr);
        })?;
        let ext = self.dir.join(format!("{}.ext", leaf.name));
        std::fs::write(&ext, extensions(leaf))?;
        let serial = format!("0x{}", random_hex(16)?);
        openssl(&self.dir, |c| {
            c.args([
                "x509",
                "-req",
                "-sha256",
                "-days",
                "825",
                "-set_serial",
                &serial,
                "-in",
            ])
            .arg(&csr)
            .arg("-CA")
            .arg(self.ca_cert())
            .arg("-CAkey")
            .arg(self.ca_key())
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(self.cert(leaf));
        })?;
        std::fs::remove_file(csr)?;
        Ok(())
    }

    /// True when the CA and `leaf` have been issued.
    pub fn has(&self, leaf: &Leaf) -> bool {
        [self.ca_cert(), self.cert(leaf), self.key(leaf)]
            .iter()
            .all(|p| p.is_file())
    }

    /// Writes a kubeconfig for `leaf` at `path` with the certificates embedded, so the file
    /// works wherever it is copied.
    pub fn write_kubeconfig(&self, leaf: &Leaf, path: &Path) -> anyhow::Result<()> {
        write_kubeconfig(&[self.kubeconfig_entry(leaf)?], path)
    }

    /// This cluster as `leaf` sees it, for a kubeconfig.
    pub fn kubeconfig_entry(&self, leaf: &Leaf) -> anyhow::Result<KubeconfigEntry> {
        let read =
            |p: PathBuf| std::fs::read(&p).with_context(|| format!("reading {}", p.display()));
        Ok(KubeconfigEntry {
            context: self.context.to_string(),
            server: self.server.clone(),
            ca: read(self.ca_cert())?,
            user: format!("{}{}", leaf.common_name, self.user_suffix),
            cert: read(self.cert(leaf))?,
            key: read(self.key(leaf))?,
        })
    }
}

/// One cluster, user and context of a kubeconfig; cluster and context carry one name.
pub struct KubeconfigEntry {
    pub context: String,
    pub server: String,
    pub ca: Vec<u8>,
    pub user: String,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Writes a kubeconfig with `entries` (the first is the current context), readable by its
/// owner only: it holds private keys.
pub fn write_kubeconfig(entries: &[KubeconfigEntry], path: &Path) -> anyhow::Result<()> {
    write_if_changed(path, kubeconfig(entries).as_bytes())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn subject(leaf: &Leaf) -> String {
    match leaf.organization {
        Some(org) => format!("/O={org}/CN={}", leaf.common_name),
        None => format!("/CN={}", leaf.common_name),
    }
}

fn extensions(leaf: &Leaf) -> String {
    let mut ext = String::from(
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n",
    );
    if leaf.server {
        ext.push_str(&format!(
            "extendedKeyUsage = serverAuth\nsubjectAltName = {}\n",
            leaf.sans
        ));
    } else {
        ext.push_str("extendedKeyUsage = clientAuth\n");
    }
    ext
}

fn openssl(dir: &Path, configure: impl FnOnce(&mut Command)) -> anyhow::Result<()> {
    let mut command = Command::new("openssl");
    command.current_dir(dir);
    configure(&mut command);
    let out = command.output().context("running openssl")?;
    if !out.status.success() {
        bail!(
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A kubeconfig with a cluster, user and context per entry; the first entry's context is
/// the current one.
pub fn kubeconfig(entries: &[KubeconfigEntry]) -> String {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut contexts = String::new();
    for KubeconfigEntry {
        context,
        server,
        ca,
        user,
        cert,
        key,
    } in entries
    {
        clusters.push_str(&format!(
            "- name: {context}\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\n",
            base64(ca)
        ));
        users.push_str(&format!(
            "- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            base64(cert),
            base64(key)
        ));
        contexts.push_str(&format!(
            "- name: {context}\n  context:\n    cluster: {context}\n    user: {user}\n"
        ));
    }
    let current = entries.first().map_or("", |e| e.context.as_str());
    format!(
        "# written by `cargo xtask infra up`\n\
         apiVersion: v1\nkind: Config\n\
         clusters:\n{clusters}users:\n{users}contexts:\n{contexts}\
         current-context: {current}\npreferences: {{}}\n"
    )
}

/// Standard base64 with padding (RFC 4648), as kubeconfig `*-data` fields expect.
fn base64(bytes: &[u8]) -> String {
    use ::base64::Engine as _;
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kubeconfig fields are the padded standard alphabet, not URL-safe or unpadded.
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    fn entry(cluster: &Cluster, user: &str) -> KubeconfigEntry {
        KubeconfigEntry {
            context: cluster.context.into(),
            server: cluster.apiserver_url(),
            ca: b"ca".to_vec(),
            user: user.into(),
            cert: b"c".to_vec(),
            key: b"k".to_vec(),
        }
    }

    #[test]
    fn kubeconfig_names_the_context_wactl_dev() {
        let text = kubeconfig(&[entry(&cluster::FIRST, "wactl-admin")]);
        assert!(text.contains("current-context: wactl-dev\n"));
        assert!(text.contains("    server: https://127.0.0.1:6443\n"));
        assert!(text.contains("certificate-authority-data: Y2E=\n"));
        assert!(text.contains("- name: wactl-admin\n"));
    }

    #[test]
    fn kubeconfig_with_two_clusters_keeps_the_first_current() {
        let text = kubeconfig(&[
            entry(&cluster::FIRST, "wactl-admin"),
            entry(&cluster::SECOND, "wactl-admin-2"),
        ]);
        assert!(text.contains("current-context: wactl-dev\n"));
        assert!(text.contains("    server: https://127.0.0.1:6444\n"));
        assert!(text.contains(
            "- name: wactl-dev-2\n  context:\n    cluster: wactl-dev-2\n    user: wactl-admin-2\n"
        ));
        assert_eq!(text.matches("  cluster:\n    server:").count(), 2);
    }

    #[test]
    fn client_subjects_carry_the_group() {
        assert_eq!(subject(&ADMIN), "/O=system:masters/CN=wactl-admin");
        assert_eq!(subject(&SCHEDULER), "/CN=system:kube-scheduler");
        assert!(extensions(&APISERVER).contains("IP:127.0.0.1"));
        assert!(extensions(&DATASTORE).contains("subjectAltName = DNS:localhost,IP:127.0.0.1\n"));
        assert!(!extensions(&DATASTORE).contains("kubernetes"));
        assert!(extensions(&ADMIN).contains("clientAuth"));
    }
}
