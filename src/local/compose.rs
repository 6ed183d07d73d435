//! The rendered `compose.yaml`, parsed into the small typed model the local stack runs.
//!
//! Only what the template writes is accepted (`deny_unknown_fields`): a template change
//! that this runner does not understand is an error, not a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: String,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub env_file: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub stop_grace_period: Option<String>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, Dependency>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: String,
    pub timeout: String,
    pub retries: u32,
    #[serde(default)]
    pub start_period: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub condition: String,
}

/// A published port: always on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBinding {
    pub host_port: u16,
    pub container_port: u16,
}

/// A volume entry: a named volume or a file from the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeMount {
    Named {
        volume: String,
        target: String,
        read_only: bool,
    },
    /// `./path` relative to the directory holding `compose.yaml`.
    File {
        source: String,
        target: String,
        read_only: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("compose.yaml: {0}")]
    Parse(String),
    #[error("compose.yaml: service {service}: {message}")]
    Service { service: String, message: String },
}

impl ComposeFile {
    pub fn parse(text: &str) -> Result<Self, ComposeError> {
        let file: ComposeFile =
            serde_saphyr::from_str(text).map_err(|e| ComposeError::Parse(e.to_string()))?;
        file.start_order()?;
        for (name, service) in &file.services {
            service.port_bindings(name)?;
            service.mounts(name, &file)?;
            service.health(name)?;
        }
        Ok(file)
    }

    /// Groups of services that can start together: each group's dependencies are all in
    /// earlier groups.
    pub fn start_waves(&self) -> Result<Vec<Vec<&str>>, ComposeError> {
        let order = self.start_order()?;
        let mut waves: Vec<Vec<&str>> = Vec::new();
        let mut level: BTreeMap<&str, usize> = BTreeMap::new();
        for name in order {
            let l = self.services[name]
                .depends_on
                .keys()
                .filter_map(|d| level.get(d.as_str()))
                .map(|l| l + 1)
                .max()
                .unwrap_or(0);
            level.insert(name, l);
            if waves.len() <= l {
                waves.resize_with(l + 1, Vec::new);
            }
            waves[l].push(name);
        }
        Ok(waves)
    }

    /// Services so that each comes after everything it depends on (ties by name).
    pub fn start_order(&self) -> Result<Vec<&str>, ComposeError> {
        let mut order: Vec<&str> = Vec::new();
        let mut remaining: Vec<&str> = self.services.keys().map(String::as_str).collect();
        while !remaining.is_empty() {
            let ready = remaining.iter().position(|name| {
                self.services[*name]
                    .depends_on
                    .keys()
                    .all(|d| order.contains(&d.as_str()))
            });
            match ready {
                Some(i) => order.push(remaining.remove(i)),
                None => {
                    let name = remaining[0];
                    let missing = self.services[name]
                        .depends_on
                        .keys()
                        .find(|d| !self.services.contains_key(*d));
                    return Err(ComposeError::Service {
                        service: name.to_owned(),
                        message: match missing {
                            Some(d) => format!("depends on {d}, which is not a service"),
                            None => "dependency cycle".to_owned(),
                        },
                    });
                }
            }
        }
        Ok(order)
    }
}

fn parse_duration(service: &str, what: &str, text: &str) -> Result<Duration, ComposeError> {
    humantime::parse_duration(text).map_err(|e| ComposeError::Service {
        service: service.to_owned(),
        message: format!("{what} {text:?}: {e}"),
    })
}

/// Healthcheck timings, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthTimings {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl HealthTimings {
    /// The longest a healthy start can take: the start period, then every retry failing
    /// by its timeout, plus slack for the engine.
    pub fn give_up_after(&self) -> Duration {
        self.start_period
            + (self.interval + self.timeout) * (self.retries + 1)
            + Duration::from_secs(10)
    }
}

impl Service {
    pub fn port_bindings(&self, name: &str) -> Result<Vec<PortBinding>, ComposeError> {
        self.ports
            .iter()
            .map(|p| {
                let bad = |message: String| ComposeError::Service {
                    service: name.to_owned(),
                    message: format!("port {p:?}: {message}"),
                };
                let parts: Vec<&str> = p.split(':').collect();
                let [ip, host, container] = parts[..] else {
                    return Err(bad("expected 127.0.0.1:HOST:CONTAINER".into()));
                };
                if ip != "127.0.0.1" {
                    return Err(bad("ports are published on 127.0.0.1 only".into()));
                }
                Ok(PortBinding {
                    host_port: host.parse().map_err(|_| bad("bad host port".into()))?,
                    container_port: container
                        .parse()
                        .map_err(|_| bad("bad container port".into()))?,
                })
            })
            .collect()
    }

    pub fn mounts(&self, name: &str, file: &ComposeFile) -> Result<Vec<VolumeMount>, ComposeError> {
        self.volumes
            .iter()
            .map(|v| {
                let bad = |message: &str| ComposeError::Service {
                    service: name.to_owned(),
                    message: format!("volume {v:?}: {message}"),
                };
                let parts: Vec<&str> = v.split(':').collect();
                let (source, target, read_only) = match parts[..] {
                    [s, t] => (s, t, false),
                    [s, t, "ro"] => (s, t, true),
                    [s, t, "rw"] => (s, t, false),
                    _ => return Err(bad("expected SOURCE:TARGET[:ro]")),
                };
                if let Some(relative) = source.strip_prefix("./") {
                    if relative.split('/').any(|c| c == ".." || c.is_empty()) {
                        return Err(bad("file mounts stay inside the state directory"));
                    }
                    Ok(VolumeMount::File {
                        source: relative.to_owned(),
                        target: target.to_owned(),
                        read_only,
                    })
                } else if file.volumes.contains_key(source) {
                    Ok(VolumeMount::Named {
                        volume: source.to_owned(),
                        target: target.to_owned(),
                        read_only,
                    })
                } else {
                    Err(bad("neither ./FILE nor a volume declared under `volumes`"))
                }
            })
            .collect()
    }

    pub fn health(&self, name: &str) -> Result<Option<HealthTimings>, ComposeError> {
        let Some(h) = &self.healthcheck else {
            return Ok(None);
        };
        Ok(Some(HealthTimings {
            interval: parse_duration(name, "healthcheck interval", &h.interval)?,
            timeout: parse_duration(name, "healthcheck timeout", &h.timeout)?,
            retries: h.retries,
            start_period: match &h.start_period {
                Some(s) => parse_duration(name, "healthcheck start_period", s)?,
                None => Duration::ZERO,
            },
        }))
    }

    pub fn stop_grace(&self, name: &str) -> Result<Duration, ComposeError> {
        match &self.stop_grace_period {
            Some(s) => parse_duration(name, "stop_grace_period", s),
            None => Ok(Duration::from_secs(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let env = crate::config::load(&dir, name).expect("loads");
        let rendered = crate::render::render(&env, &Default::default()).expect("renders");
        rendered.files["compose.yaml"].clone()
    }

    #[test]
    fn the_rendered_local_stack_parses_and_starts_dependencies_first() {
        let file = ComposeFile::parse(&rendered("local")).expect("parses");
        let order = file.start_order().expect("order");
        let pos = |s: &str| order.iter().position(|o| *o == s).expect(s);
        assert!(pos("postgres") < pos("address-service"));
        assert!(pos("redis") < pos("address-service"));
        assert!(pos("address-service") < pos("nginx"));
        assert!(pos("address-service") < pos("prometheus"));
        assert_eq!(
            file.start_waves().expect("waves"),
            [
                vec!["postgres", "redis"],
                vec!["address-service"],
                vec!["nginx", "prometheus"]
            ]
        );
        let nginx = &file.services["nginx"];
        assert_eq!(
            nginx.mounts("nginx", &file).expect("mounts"),
            [VolumeMount::File {
                source: "nginx/nginx.conf".into(),
                target: "/etc/nginx/nginx.conf".into(),
                read_only: true
            }]
        );
        let ports = file.services["address-service"]
            .port_bindings("address-service")
            .expect("ports");
        assert_eq!(ports[0].container_port, 8080);
        let health = file.services["postgres"]
            .health("postgres")
            .expect("health")
            .expect("has one");
        assert_eq!(health.retries, 20);
    }

    #[test]
    fn unsafe_or_unknown_entries_are_rejected() {
        let base = rendered("local");
        let wide = base.replace("\"127.0.0.1:18080:8080\"", "\"0.0.0.0:18080:8080\"");
        let e = ComposeFile::parse(&wide).expect_err("0.0.0.0 refused");
        assert!(e.to_string().contains("127.0.0.1 only"), "{e}");
        let unknown = base.replace("    read_only: true\n", "    privileged: true\n");
        assert!(ComposeFile::parse(&unknown).is_err());
        let escape = base.replace("./nginx/nginx.conf", "./../etc/passwd");
        assert!(ComposeFile::parse(&escape).is_err());
    }
}
