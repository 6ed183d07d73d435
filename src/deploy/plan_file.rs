//! Saved plans: what `wactl diff --save-plan` writes and `wactl deploy --plan` applies
//! exactly, after checking that nothing it was made from has changed.
//!
//! A plan holds the rendered objects to apply, each with the live object's uid,
//! resourceVersion and writers as the plan saw them; the image and its digests; a hash of
//! what the definition and templates render to; the wactl version and the time it was
//! made. Secret values are never in it: a Secret the templates render is kept by name and
//! taken from the definition at apply (which the definition hash pins), and Secrets the
//! objects refer to are kept by uid and resourceVersion.
//!
//! The file's `hash` covers the whole plan, so an edited file is refused. It is a
//! checksum, not a signature: whoever can write the file can recompute it; the deploy
//! workflow's guarantee is that it applies the artifact the pull request's run made.

use super::{DeployError, plan_objects, previously_owned, recorded};
use crate::cluster::saved_plan::{self, LiveChange, LiveState};
use crate::cluster::{ApplyOptions, Change, ObjectRef, Plan, RecordedObject, Resolver, revision};
use crate::config::Environment;
use crate::render::{self, RenderOptions};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The plan file format this wactl reads and writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("plan {path}: cannot read it: {message}")]
    Read { path: PathBuf, message: String },
    #[error("plan {path}: cannot write it: {message}")]
    Write { path: PathBuf, message: String },
    #[error("plan {path}, line {line}, column {column}: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "plan {path}: format {found} is not one this wactl reads (format {FORMAT}); make the plan again with this wactl"
    )]
    Format { path: PathBuf, found: u64 },
    #[error(
        "plan {path}: its content does not match its hash (recorded {recorded}, computed {computed}): the file was edited after `wactl diff --save-plan` wrote it"
    )]
    Tampered {
        path: PathBuf,
        recorded: String,
        computed: String,
    },
    #[error(
        "plan {path} was made for environment {planned} (namespace {planned_namespace}), not {environment} (namespace {namespace})"
    )]
    OtherEnvironment {
        path: PathBuf,
        planned: String,
        planned_namespace: String,
        environment: String,
        namespace: String,
    },
    #[error(
        "plan {path} was made against another cluster (kube-system uid {planned}; this cluster's is {found})"
    )]
    OtherCluster {
        path: PathBuf,
        planned: String,
        found: String,
    },
    #[error(
        "plan {path} was made at {created_at}, {age} ago, more than --plan-max-age {limit}; make and review a new plan"
    )]
    TooOld {
        path: PathBuf,
        created_at: String,
        age: String,
        limit: String,
    },
    #[error("plan {path}: created_at {created_at:?} is not an RFC 3339 time")]
    BadTime { path: PathBuf, created_at: String },
    #[error(
        "plan {path}: the definition or templates of {environment} render differently than when the plan was made (definition hash {planned}, now {found}; plan made by wactl {version}); make and review a new plan"
    )]
    DefinitionChanged {
        path: PathBuf,
        environment: String,
        planned: String,
        found: String,
        version: String,
    },
    #[error(
        "plan {path}: {environment} changed since the plan was made at {created_at}, nothing was applied: {}; make and review a new plan",
        changes.join("; ")
    )]
    LiveChanged {
        path: PathBuf,
        environment: String,
        created_at: String,
        /// "Deployment address-service in namespace ns: modified by kubectl-edit (Update) at …"
        changes: Vec<String>,
    },
    #[error(
        "plan {path}: the image the sources make now is {found}, not the plan's {planned}; make and review a new plan"
    )]
    ImageChanged {
        path: PathBuf,
        planned: String,
        found: String,
    },
    #[error(
        "plan {path}: {environment} was deployed since the plan was made (last revision {planned} then, {found} now); make and review a new plan"
    )]
    Redeployed {
        path: PathBuf,
        environment: String,
        planned: String,
        found: String,
    },
}

impl PlanFileError {
    /// The file or the command line is wrong (exit 2), not the world it describes.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Read { .. }
                | Self::Malformed { .. }
                | Self::Format { .. }
                | Self::Tampered { .. }
                | Self::OtherEnvironment { .. }
                | Self::OtherCluster { .. }
                | Self::BadTime { .. }
        )
    }
}

/// One object the plan applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedApply {
    /// The rendered file it came from (which gives its apply order).
    pub file: String,
    pub reference: ObjectRef,
    pub change: Change,
    /// The object to apply; none for a Secret (taken from the definition at apply).
    pub object: Option<Value>,
    /// The live object as the plan saw it (none: it did not exist).
    pub live: Option<LiveState>,
    /// What the review showed (Secret values redacted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// An object the plan found by reference only: one to prune, or a Secret the objects use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observed {
    pub reference: ObjectRef,
    pub live: Option<LiveState>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// A reviewed plan, as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub wactl_version: String,
    /// RFC 3339.
    pub created_at: String,
    pub environment: String,
    pub namespace: String,
    /// The uid of the cluster's `kube-system` namespace.
    pub cluster_id: String,
    /// The context it was made with (for people; the uid is what is checked).
    pub context: Option<String>,
    pub image: String,
    /// Every container image of the plan and its digest (empty when not pinned).
    pub digests: BTreeMap<String, String>,
    /// `--templates DIR` of the diff, used again at apply unless given.
    pub templates: Option<PathBuf>,
    /// sha256 of what the definition and templates rendered (Secrets included).
    pub definition_hash: String,
    /// The environment's last revision when the plan was made.
    pub last_revision: Option<u32>,
    /// The plan was made taking over fields other managers own (`--force-conflicts`); the
    /// apply does the same.
    pub force_conflicts: bool,
    /// "1 to create, 2 to update, 0 to delete, 9 unchanged".
    pub summary: String,
    pub objects: Vec<PlannedApply>,
    /// Objects earlier deploys made that this one prunes.
    pub deletes: Vec<Observed>,
    /// Secrets the objects refer to: kept by version, never by value.
    pub secrets: Vec<Observed>,
}

/// The file: its format, a hash of the plan, the plan.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    format: u64,
    hash: String,
    plan: SavedPlan,
}

fn sha256_of(value: &Value) -> String {
    let bytes = serde_json::to_vec(&crate::cluster::diff::sorted(value)).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// sha256 of rendered objects (file and content).
pub fn definition_hash(objects: &[RecordedObject]) -> String {
    sha256_of(&serde_json::to_value(objects).unwrap_or_default())
}

fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

impl SavedPlan {
    /// The plan's hash, as the file records it.
    pub fn hash(&self) -> String {
        sha256_of(&serde_json::to_value(self).unwrap_or_default())
    }

    /// The file's text: pretty JSON, the hash beside the plan.
    pub fn to_file_text(&self) -> String {
        let file = PlanFile {
            format: u64::from(FORMAT),
            hash: self.hash(),
            plan: self.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the file (through a temporary file, so a reader never sees half a plan).
    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        let failed = |e: std::io::Error| PlanFileError::Write {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
        std::io::Write::write_all(&mut temp, self.to_file_text().as_bytes()).map_err(failed)?;
        temp.persist(path).map_err(|e| failed(e.error))?;
        Ok(())
    }

    /// Reads and checks a plan file: well-formed, a format this wactl knows, untouched.
    pub fn read(path: &Path) -> Result<Self, PlanFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanFileError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, PlanFileError> {
        let malformed = |e: serde_json::Error| PlanFileError::Malformed {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        };
        let value: Value = serde_json::from_str(text).map_err(malformed)?;
        // The format first: a newer wactl's plan is refused as such, not as malformed.
        match value.get("format").and_then(Value::as_u64) {
            Some(found) if found == u64::from(FORMAT) => {}
            Some(found) => {
                return Err(PlanFileError::Format {
                    path: path.to_owned(),
                    found,
                });
            }
            None => {
                return Err(PlanFileError::Malformed {
                    path: path.to_owned(),
                    line: 1,
                    column: 1,
                    message: "no `format` number: not a plan `wactl diff --save-plan` wrote"
                        .to_owned(),
                });
            }
        }
        // Typed from the text, so a wrong field is reported at its line and column.
        let file: PlanFile = serde_json::from_str(text).map_err(malformed)?;
        let computed = sha256_of(value.get("plan").unwrap_or(&Value::Null));
        if computed != file.hash {
            return Err(PlanFileError::Tampered {
                path: path.to_owned(),
                recorded: file.hash,
                computed,
            });
        }
        Ok(file.plan)
    }

    /// Refuses a plan made for another environment or namespace.
    pub fn check_environment(&self, env: &Environment, path: &Path) -> Result<(), PlanFileError> {
        if self.environment == env.name && self.namespace == env.cluster.namespace {
            return Ok(());
        }
        Err(PlanFileError::OtherEnvironment {
            path: path.to_owned(),
            planned: self.environment.clone(),
            planned_namespace: self.namespace.clone(),
            environment: env.name.clone(),
            namespace: env.cluster.namespace.clone(),
        })
    }

    /// Refuses a plan older than `limit` at `now`.
    pub fn check_age(
        &self,
        now: Timestamp,
        limit: Duration,
        path: &Path,
    ) -> Result<(), PlanFileError> {
        let created: Timestamp = self
            .created_at
            .parse()
            .map_err(|_| PlanFileError::BadTime {
                path: path.to_owned(),
                created_at: self.created_at.clone(),
            })?;
        let age = now.as_second().saturating_sub(created.as_second());
        let age = Duration::from_secs(u64::try_from(age).unwrap_or(0));
        if age <= limit {
            return Ok(());
        }
        Err(PlanFileError::TooOld {
            path: path.to_owned(),
            created_at: self.created_at.clone(),
            age: humantime::format_duration(age).to_string(),
            limit: humantime::format_duration(limit).to_string(),
        })
    }

    /// The objects to apply: the plan's, with each Secret taken from `rendered`, after
    /// checking that `rendered` (the definition now) is what the plan was made from.
    pub fn objects_to_apply(
        &self,
        rendered: &[RecordedObject],
        path: &Path,
    ) -> Result<Vec<RecordedObject>, PlanFileError> {
        let found = definition_hash(rendered);
        if found != self.definition_hash {
            return Err(PlanFileError::DefinitionChanged {
                path: path.to_owned(),
                environment: self.environment.clone(),
                planned: self.definition_hash.clone(),
                found,
                version: self.wactl_version.clone(),
            });
        }
        let mut objects = Vec::with_capacity(self.objects.len());
        for planned in &self.objects {
            let object = match &planned.object {
                Some(object) => object.clone(),
                None => rendered
                    .iter()
                    .find(|r| r.file == planned.file)
                    .map(|r| r.object.clone())
                    .ok_or_else(|| PlanFileError::DefinitionChanged {
                        path: path.to_owned(),
                        environment: self.environment.clone(),
                        planned: self.definition_hash.clone(),
                        found: definition_hash(rendered),
                        version: self.wactl_version.clone(),
                    })?,
            };
            objects.push(RecordedObject {
                file: planned.file.clone(),
                object,
            });
        }
        Ok(objects)
    }

    /// The plan as `wactl diff` shows it.
    pub fn plan(&self) -> Plan {
        let mut objects: Vec<crate::cluster::PlannedObject> = self
            .objects
            .iter()
            .map(|o| crate::cluster::PlannedObject {
                object: o.reference.clone(),
                change: o.change,
                diff: o.diff.clone(),
            })
            .collect();
        objects.extend(self.deletes.iter().map(|d| crate::cluster::PlannedObject {
            object: d.reference.clone(),
            change: Change::Delete,
            diff: d.diff.clone(),
        }));
        Plan { objects }
    }
}

/// Refuses the plan when the image the sources make now (`found`, as `wactl diff`
/// resolves it) is not the one the plan applies.
pub fn check_image(saved: &SavedPlan, found: &str, path: &Path) -> Result<(), PlanFileError> {
    if found == saved.image {
        return Ok(());
    }
    Err(PlanFileError::ImageChanged {
        path: path.to_owned(),
        planned: saved.image.clone(),
        found: found.to_owned(),
    })
}

/// "Deployment address-service in namespace ns" (or "Namespace ns").
fn place(object: &ObjectRef) -> String {
    match &object.namespace {
        Some(ns) => format!("{} {} in namespace {ns}", object.kind, object.name),
        None => format!("{} {}", object.kind, object.name),
    }
}

/// What `wactl diff --save-plan` needs besides the environment.
#[derive(Debug, Clone)]
pub struct SaveOptions {
    pub render: RenderOptions,
    pub apply: ApplyOptions,
    /// The kubeconfig context used (recorded for people).
    pub context: Option<String>,
}

/// Renders `env`, records the live state of everything the plan reads, then plans: a
/// change made after the state was read is seen by [`verify_live`] at apply.
pub async fn save(
    client: &Client,
    env: &Environment,
    options: &SaveOptions,
) -> Result<(Plan, SavedPlan), DeployError> {
    let rendered = render::render(env, &options.render)?;
    let objects = recorded(&rendered);
    let image = options
        .render
        .image
        .clone()
        .unwrap_or_else(|| env.image.tagged());
    let namespace = &env.cluster.namespace;
    let revisions = revision::list(client, namespace, &env.name).await?;
    let resolver = Resolver::new(client.clone());
    let cluster_id = saved_plan::cluster_id(client).await?;
    let refs: Vec<ObjectRef> = objects
        .iter()
        .filter_map(|o| ObjectRef::of(&o.object))
        .collect();
    let owned = previously_owned(&revisions);
    let values: Vec<Value> = objects.iter().map(|o| o.object.clone()).collect();
    let secrets = saved_plan::referenced_secrets(&values);
    let live = saved_plan::read(&resolver, &refs).await?;
    let owned_live = saved_plan::read(&resolver, &owned).await?;
    let secrets_live = saved_plan::read(&resolver, &secrets).await?;
    let plan = plan_objects(client, &objects, &revisions, options.apply).await?;

    let by_ref: BTreeMap<&ObjectRef, &crate::cluster::PlannedObject> =
        plan.objects.iter().map(|p| (&p.object, p)).collect();
    let applies = objects
        .iter()
        .zip(&refs)
        .zip(live)
        .map(|((o, reference), live)| {
            let planned = by_ref.get(reference);
            PlannedApply {
                file: o.file.clone(),
                reference: reference.clone(),
                change: planned.map_or(Change::Unchanged, |p| p.change),
                object: (!is_secret(&o.object)).then(|| o.object.clone()),
                live,
                diff: planned.map(|p| p.diff.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let deletes = owned
        .into_iter()
        .zip(owned_live)
        .filter_map(|(reference, live)| {
            let planned = by_ref.get(&reference)?;
            (planned.change == Change::Delete).then(|| Observed {
                diff: planned.diff.clone(),
                reference,
                live,
            })
        })
        .collect();
    let saved = SavedPlan {
        wactl_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: super::now(),
        environment: env.name.clone(),
        namespace: namespace.clone(),
        cluster_id,
        context: options.context.clone(),
        image,
        digests: revision::images(&objects),
        templates: options.render.templates.clone(),
        definition_hash: definition_hash(&objects),
        last_revision: revisions.last().map(|r| r.number),
        force_conflicts: options.apply.force_conflicts,
        summary: plan.summary(),
        objects: applies,
        deletes,
        secrets: secrets
            .into_iter()
            .zip(secrets_live)
            .map(|(reference, live)| Observed {
                reference,
                live,
                diff: String::new(),
            })
            .collect(),
    };
    Ok((plan, saved))
}

/// Refuses the plan when the cluster is another one, the environment was deployed since,
/// or any object it read (to apply, to prune, or a Secret it uses) changed since.
///
/// `namespaces_applied`: the deploy has applied the plan's Namespace objects already (to
/// hold its lock there), so those are not compared again.
pub async fn verify_live(
    client: &Client,
    saved: &SavedPlan,
    path: &Path,
    namespaces_applied: bool,
) -> Result<(), DeployError> {
    let found = saved_plan::cluster_id(client).await?;
    if found != saved.cluster_id {
        return Err(DeployError::from(PlanFileError::OtherCluster {
            path: path.to_owned(),
            planned: saved.cluster_id.clone(),
            found,
        }));
    }
    let revisions = revision::list(client, &saved.namespace, &saved.environment).await?;
    let last = revisions.last().map(|r| r.number);
    if last != saved.last_revision {
        let text = |n: Option<u32>| n.map_or("none".to_owned(), |n| n.to_string());
        return Err(DeployError::from(PlanFileError::Redeployed {
            path: path.to_owned(),
            environment: saved.environment.clone(),
            planned: text(saved.last_revision),
            found: text(last),
        }));
    }
    let seen: Vec<(&ObjectRef, Option<&LiveState>)> = saved
        .objects
        .iter()
        .filter(|o| !(namespaces_applied && o.reference.kind == "Namespace"))
        .map(|o| (&o.reference, o.live.as_ref()))
        .chain(
            saved
                .deletes
                .iter()
                .chain(&saved.secrets)
                .map(|o| (&o.reference, o.live.as_ref())),
        )
        .collect();
    let refs: Vec<ObjectRef> = seen.iter().map(|(r, _)| (*r).clone()).collect();
    let now = saved_plan::read(&Resolver::new(client.clone()), &refs).await?;
    let changes: Vec<String> = seen
        .iter()
        .zip(&now)
        .filter_map(|((reference, then), now)| {
            saved_plan::compare(*then, now.as_ref())
                .map(|change: LiveChange| format!("{}: {}", place(reference), change.describe()))
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    Err(DeployError::from(PlanFileError::LiveChanged {
        path: path.to_owned(),
        environment: saved.environment.clone(),
        created_at: saved.created_at.clone(),
        changes,
    }))
}

/// Refuses when the cluster would now do something else with the plan's objects than the
/// review showed (a dry run answers differently: the API server or its defaults changed).
pub fn check_same_changes(saved: &SavedPlan, now: &Plan, path: &Path) -> Result<(), DeployError> {
    let expected = saved.plan();
    let differing: Vec<String> = expected
        .objects
        .iter()
        .filter_map(|planned| {
            let found = now
                .objects
                .iter()
                .find(|o| o.object == planned.object)
                .map(|o| o.change);
            (found != Some(planned.change)).then(|| {
                format!(
                    "{}: planned {:?}, now {}",
                    place(&planned.object),
                    planned.change,
                    found.map_or("absent from the plan".to_owned(), |c| format!("{c:?}"))
                )
            })
        })
        .chain(
            now.objects
                .iter()
                .filter(|o| !expected.objects.iter().any(|e| e.object == o.object))
                .map(|o| format!("{}: not in the plan, now {:?}", place(&o.object), o.change)),
        )
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(DeployError::from(PlanFileError::LiveChanged {
        path: path.to_owned(),
        environment: saved.environment.clone(),
        created_at: saved.created_at.clone(),
        changes: differing,
    }))
}

/// The rendered objects of `env` as the plan's apply needs them (with the plan's image).
pub fn render_for(
    env: &Environment,
    saved: &SavedPlan,
    templates: Option<PathBuf>,
) -> Result<Vec<RecordedObject>, DeployError> {
    let rendered = render::render(
        env,
        &RenderOptions {
            image: Some(saved.image.clone()),
            templates: templates.or_else(|| saved.templates.clone()),
        },
    )?;
    Ok(recorded(&rendered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered() -> Vec<RecordedObject> {
        vec![
            RecordedObject {
                file: "k8s/10-secret-s.yaml".into(),
                object: json!({ "apiVersion": "v1", "kind": "Secret",
                    "metadata": { "name": "s", "namespace": "ns" },
                    "stringData": { "password": "hunter2" } }),
            },
            RecordedObject {
                file: "k8s/50-configmap-c.yaml".into(),
                object: json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "c", "namespace": "ns" }, "data": { "a": "1" } }),
            },
        ]
    }

    fn saved() -> SavedPlan {
        let objects = rendered();
        SavedPlan {
            wactl_version: "0.1.0".into(),
            created_at: "2026-11-30T10:00:00Z".into(),
            environment: "staging".into(),
            namespace: "ns".into(),
            cluster_id: "cluster-uid".into(),
            context: Some("wactl-dev".into()),
            image: "r/a:v1".into(),
            digests: BTreeMap::new(),
            templates: None,
            definition_hash: definition_hash(&objects),
            last_revision: Some(3),
            force_conflicts: false,
            summary: "1 to create, 0 to update, 0 to delete, 1 unchanged".into(),
            objects: objects
                .iter()
                .map(|o| PlannedApply {
                    file: o.file.clone(),
                    reference: ObjectRef::of(&o.object).expect("reference"),
                    change: Change::Unchanged,
                    object: (!is_secret(&o.object)).then(|| o.object.clone()),
                    live: None,
                    diff: String::new(),
                })
                .collect(),
            deletes: Vec::new(),
            secrets: Vec::new(),
        }
    }

    fn path() -> &'static Path {
        Path::new("plan.json")
    }

    #[test]
    fn a_saved_plan_reads_back_and_holds_no_secret_value() {
        let plan = saved();
        let text = plan.to_file_text();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(SavedPlan::parse(&text, path()).expect("reads back"), plan);
        let objects = plan
            .objects_to_apply(&rendered(), path())
            .expect("same definition");
        assert_eq!(objects, rendered(), "the Secret comes from the definition");
    }

    #[test]
    fn an_edited_plan_is_refused_as_tampered() {
        let text = saved().to_file_text();
        let edited = text.replace("\"a\": \"1\"", "\"a\": \"2\"");
        assert_ne!(edited, text, "the edit happened");
        let error = SavedPlan::parse(&edited, path()).expect_err("tampered");
        assert!(matches!(error, PlanFileError::Tampered { .. }), "{error}");
        assert!(error.is_invalid_input());
        assert!(error.to_string().contains("edited after"), "{error}");
    }

    #[test]
    fn a_malformed_plan_is_located() {
        let text = saved().to_file_text();
        let broken = text.replacen("\"environment\": \"staging\"", "\"environment\": 7", 1);
        let error = SavedPlan::parse(&broken, path()).expect_err("malformed");
        let PlanFileError::Malformed { line, .. } = &error else {
            panic!("{error}");
        };
        let expected = text
            .lines()
            .position(|l| l.contains("\"environment\""))
            .expect("line")
            + 1;
        assert_eq!(*line, expected, "{error}");
        let cut = SavedPlan::parse(&text[..text.len() / 2], path()).expect_err("truncated");
        assert!(matches!(cut, PlanFileError::Malformed { .. }), "{cut}");
        let other = SavedPlan::parse(&text.replacen("\"format\": 1", "\"format\": 9", 1), path())
            .expect_err("format");
        assert!(
            matches!(other, PlanFileError::Format { found: 9, .. }),
            "{other}"
        );
        let none = SavedPlan::parse("{}", path()).expect_err("no format");
        assert!(none.to_string().contains("plan.json, line 1"), "{none}");
    }

    #[test]
    fn age_is_limited() {
        let plan = saved();
        let created: Timestamp = plan.created_at.parse().expect("time");
        let day = Duration::from_secs(24 * 3600);
        let later = |s: i64| Timestamp::from_second(created.as_second() + s).expect("time");
        plan.check_age(later(3600), day, path())
            .expect("an hour old");
        let error = plan
            .check_age(later(25 * 3600), day, path())
            .expect_err("too old");
        assert!(!error.is_invalid_input());
        assert!(error.to_string().contains("1day 1h ago"), "{error}");
    }

    #[test]
    fn a_changed_definition_is_refused() {
        let mut objects = rendered();
        objects[1].object["data"]["a"] = json!("2");
        let error = saved()
            .objects_to_apply(&objects, path())
            .expect_err("changed");
        assert!(matches!(error, PlanFileError::DefinitionChanged { .. }));
        // A changed Secret value changes the hash too, without the plan holding it.
        let mut objects = rendered();
        objects[0].object["stringData"]["password"] = json!("hunter3");
        assert!(saved().objects_to_apply(&objects, path()).is_err());
    }

    #[test]
    fn another_image_from_the_sources_is_refused() {
        let plan = saved();
        check_image(&plan, "r/a:v1", path()).expect("the same image");
        let error = check_image(&plan, "r/a@sha256:0123", path()).expect_err("another");
        assert!(!error.is_invalid_input());
        assert!(
            error
                .to_string()
                .contains("now is r/a@sha256:0123, not the plan's r/a:v1"),
            "{error}"
        );
    }

    #[test]
    fn same_changes_or_refused_naming_the_object() {
        let plan = saved();
        let mut now = plan.plan();
        check_same_changes(&plan, &now, path()).expect("same");
        now.objects[1].change = Change::Update;
        let error = check_same_changes(&plan, &now, path()).expect_err("differs");
        assert!(
            error
                .to_string()
                .contains("ConfigMap c in namespace ns: planned Unchanged, now Update"),
            "{error}"
        );
    }
}
