//! Where a rendered tree goes: a directory, in which wactl replaces only the files it
//! wrote itself, or one multi-document stream.
//!
//! A directory wactl renders into holds a manifest, [`MANIFEST`], listing the files of the
//! last render. A render replaces those files (each one atomically: written beside, then
//! renamed over), removes the ones the new render no longer produces, and refuses —
//! before writing anything — when it would replace a file that the manifest does not
//! list. Nothing else in the directory is ever touched.

use super::{RenderError, Rendered};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file in an output directory that lists what wactl rendered there.
pub const MANIFEST: &str = ".wactl-rendered.json";

/// The manifest's content: which files of the directory belong to wactl.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputManifest {
    /// Why the file is there, for whoever finds it.
    about: String,
    /// Relative paths, `/`-separated, of every file the last render wrote.
    files: BTreeSet<String>,
}

impl OutputManifest {
    fn new(files: BTreeSet<String>) -> Self {
        Self {
            about: "Files rendered here by `wactl render`; wactl replaces only these.".to_owned(),
            files,
        }
    }
}

impl Rendered {
    /// Writes every file under `dir`, creating it when needed. Files that an earlier
    /// render wrote are replaced or, when no longer rendered, removed; any other file in
    /// `dir` is left alone, and a render that would replace one fails before writing.
    pub fn write(&self, dir: &Path) -> Result<(), RenderError> {
        ensure_directory(dir)?;
        let manifest_path = dir.join(MANIFEST);
        let previous = read_manifest(&manifest_path)?;
        let mut foreign: Vec<String> = self
            .files
            .keys()
            .filter(|relative| !previous.contains(*relative))
            .filter(|relative| occupied(dir, relative))
            .cloned()
            .collect();
        // A directory a wactl from before the manifest rendered into is adopted: its text
        // files carry the header every rendered file starts with, and its JSON dashboard
        // comes with them.
        let earlier_render =
            previous.is_empty() && foreign.iter().any(|f| has_render_header(&dir.join(f)));
        if earlier_render {
            foreign.retain(|f| {
                let path = dir.join(f);
                !(has_render_header(&path) || (f.ends_with(".json") && path.is_file()))
            });
        }
        if !foreign.is_empty() {
            return Err(RenderError::ForeignFiles {
                dir: dir.to_owned(),
                files: foreign,
            });
        }

        let rendered: BTreeSet<String> = self.files.keys().cloned().collect();
        // Claim the union first: a render stopped half-way leaves every file it may have
        // written listed, so the next one can replace it rather than call it foreign. A
        // manifest that lists them all already is left as it is.
        let claimed: BTreeSet<String> = previous.union(&rendered).cloned().collect();
        if claimed != previous {
            write_atomically(&manifest_path, &manifest_text(claimed.clone())?)?;
        }
        for (relative, content) in &self.files {
            let path = dir.join(relative);
            if std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
                continue; // unchanged: keep the file's timestamps for make-like tools
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(write_error(parent))?;
            }
            write_atomically(&path, content)?;
        }
        for stale in previous.difference(&rendered) {
            remove_stale(dir, stale)?;
        }
        if claimed == rendered {
            return Ok(());
        }
        write_atomically(&manifest_path, &manifest_text(rendered)?)
    }

    /// Every file as one multi-document YAML stream, each document headed by
    /// `# Source: PATH` (as `helm template` prints). Files that are not YAML or JSON
    /// (the Dockerfile, nginx.conf) are carried as comment lines, so the stream stays
    /// one valid YAML stream.
    pub fn to_stream(&self) -> String {
        let mut stream = String::new();
        for (relative, content) in &self.files {
            stream.push_str("---\n# Source: ");
            stream.push_str(relative);
            stream.push('\n');
            if is_yaml(relative) {
                stream.push_str(content);
            } else {
                for line in content.lines() {
                    stream.push_str(if line.is_empty() { "#" } else { "# " });
                    stream.push_str(line);
                    stream.push('\n');
                }
            }
        }
        stream
    }
}

/// The first line of every text file wactl renders (see `render()`).
const RENDER_HEADER: &[u8] = b"# Rendered by wactl from ";

fn has_render_header(path: &Path) -> bool {
    use std::io::Read;
    let mut start = [0u8; 25];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| start == RENDER_HEADER)
}

/// JSON is YAML too; everything else is carried as comments in a stream.
fn is_yaml(relative: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|suffix| relative.ends_with(suffix))
}

/// `dir` is a directory, or can be made one: no part of the path is a file.
fn ensure_directory(dir: &Path) -> Result<(), RenderError> {
    let mut existing = Some(dir);
    while let Some(path) = existing {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(RenderError::NotADirectory {
                    out: dir.to_owned(),
                    file: path.to_owned(),
                });
            }
            Err(_) => existing = path.parent().filter(|p| !p.as_os_str().is_empty()),
        }
    }
    std::fs::create_dir_all(dir).map_err(write_error(dir))
}

fn read_manifest(path: &Path) -> Result<BTreeSet<String>, RenderError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(source) => return Err(write_error(path)(source)),
    };
    let manifest: OutputManifest =
        serde_json::from_str(&text).map_err(|e| RenderError::BadManifest {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    // A manifest names files inside its directory; anything else was not written by us.
    if let Some(bad) = manifest.files.iter().find(|f| !is_plain_relative(f)) {
        return Err(RenderError::BadManifest {
            path: path.to_owned(),
            message: format!("`{bad}` is not a path inside the directory"),
        });
    }
    Ok(manifest.files)
}

fn is_plain_relative(relative: &str) -> bool {
    let path = Path::new(relative);
    !relative.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn manifest_text(files: BTreeSet<String>) -> Result<String, RenderError> {
    serde_json::to_string_pretty(&OutputManifest::new(files))
        .map(|text| text + "\n")
        .map_err(|e| RenderError::BadManifest {
            path: PathBuf::from(MANIFEST),
            message: e.to_string(),
        })
}

/// Something is at `relative` (a file, a directory or a link), or a file sits where
/// one of its parent directories must go.
fn occupied(dir: &Path, relative: &str) -> bool {
    let path = dir.join(relative);
    if std::fs::symlink_metadata(&path).is_ok() {
        return true;
    }
    path.ancestors()
        .skip(1)
        .take_while(|a| *a != dir)
        .any(|a| std::fs::symlink_metadata(a).is_ok_and(|m| !m.is_dir()))
}

/// Writes beside `path` and renames over it, so a reader never sees half a file.
fn write_atomically(path: &Path, content: &str) -> Result<(), RenderError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wactl-");
    // As `std::fs::write` would create it (0666 less the umask), not the temp file's 0600:
    // containers running as other users read these files (compose mounts nginx.conf).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(parent).map_err(write_error(parent))?;
    file.write_all(content.as_bytes())
        .map_err(write_error(path))?;
    file.persist(path).map_err(|e| write_error(path)(e.error))?;
    Ok(())
}

/// Removes a file an earlier render wrote, then the directories it leaves empty.
fn remove_stale(dir: &Path, relative: &str) -> Result<(), RenderError> {
    let path = dir.join(relative);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => {
            std::fs::remove_file(&path).map_err(write_error(&path))?;
        }
        // Gone already, or replaced by something that is not ours: leave it.
        _ => return Ok(()),
    }
    for parent in path.ancestors().skip(1).take_while(|a| *a != dir) {
        // Only empty directories go; one holding anything else stays.
        if std::fs::remove_dir(parent).is_err() {
            break;
        }
    }
    Ok(())
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError {
    let path = path.to_owned();
    move |source| RenderError::Write { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tree(files: &[(&str, &str)]) -> Rendered {
        Rendered {
            files: files
                .iter()
                .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            manifests: Vec::new(),
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn foreign_files_in_the_directory_survive_and_stale_renders_go() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        std::fs::create_dir(out.join("k8s")).unwrap();
        std::fs::write(out.join("k8s/keep.yaml"), "mine too").unwrap();

        tree(&[
            ("Dockerfile", "one"),
            ("k8s/a.yaml", "a"),
            ("old/x.yml", "x"),
        ])
        .write(out)
        .unwrap();
        tree(&[("Dockerfile", "two"), ("k8s/b.yaml", "b")])
            .write(out)
            .unwrap();

        assert_eq!(read(&out.join("notes.txt")), "mine");
        assert_eq!(read(&out.join("k8s/keep.yaml")), "mine too");
        assert_eq!(read(&out.join("Dockerfile")), "two");
        assert_eq!(read(&out.join("k8s/b.yaml")), "b");
        assert!(!out.join("k8s/a.yaml").exists(), "stale render removed");
        assert!(!out.join("old").exists(), "its emptied directory too");
        let manifest: OutputManifest = serde_json::from_str(&read(&out.join(MANIFEST))).unwrap();
        assert_eq!(
            manifest.files.into_iter().collect::<Vec<_>>(),
            ["Dockerfile", "k8s/b.yaml"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn rendered_files_get_the_mode_any_new_file_gets() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        tree(&[("nginx/nginx.conf", "events {}\n")])
            .write(dir.path())
            .unwrap();
        std::fs::write(dir.path().join("reference"), "x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&dir.path().join("nginx/nginx.conf")),
            mode(&dir.path().join("reference"))
        );
    }

    #[test]
    fn a_file_wactl_did_not_write_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM mine").unwrap();
        std::fs::write(dir.path().join("k8s"), "a file where a directory goes").unwrap();
        let err = tree(&[("Dockerfile", "x"), ("k8s/a.yaml", "a"), ("new", "n")])
            .write(dir.path())
            .unwrap_err();
        match &err {
            RenderError::ForeignFiles { files, .. } => {
                assert_eq!(files, &["Dockerfile", "k8s/a.yaml"]);
            }
            other => panic!("unexpected error: {other}"),
        }
        assert_eq!(read(&dir.path().join("Dockerfile")), "FROM mine");
        assert!(!dir.path().join("new").exists(), "nothing written");
        assert!(!dir.path().join(MANIFEST).exists());
    }

    #[test]
    fn a_directory_rendered_before_the_manifest_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::write(
            out.join("Dockerfile"),
            "# Rendered by wactl from dev.yaml.\nFROM x\n",
        )
        .unwrap();
        std::fs::create_dir(out.join("grafana")).unwrap();
        std::fs::write(out.join("grafana/d.json"), "{}").unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        tree(&[("Dockerfile", "new"), ("grafana/d.json", "{\"a\":1}")])
            .write(out)
            .unwrap();
        assert_eq!(read(&out.join("Dockerfile")), "new");
        assert_eq!(read(&out.join("grafana/d.json")), "{\"a\":1}");
        assert_eq!(read(&out.join("notes.txt")), "mine");

        // Without a header-marked file, a JSON file in the way is the user's.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.json"), "{}").unwrap();
        let err = tree(&[("d.json", "{}\n")]).write(dir.path()).unwrap_err();
        assert!(matches!(err, RenderError::ForeignFiles { .. }), "{err}");
    }

    #[test]
    fn a_path_through_a_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        for out in [file.clone(), file.join("sub/dir")] {
            match tree(&[("a", "a")]).write(&out).unwrap_err() {
                RenderError::NotADirectory { file: found, .. } => assert_eq!(found, file),
                other => panic!("unexpected error for {}: {other}", out.display()),
            }
        }
        assert_eq!(read(&file), "x");
    }

    #[test]
    fn a_manifest_naming_paths_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../escape", "/etc/passwd", ""] {
            let manifest = serde_json::json!({ "about": "", "files": [bad] });
            std::fs::write(dir.path().join(MANIFEST), manifest.to_string()).unwrap();
            let err = tree(&[("a", "a")]).write(dir.path()).unwrap_err();
            assert!(
                matches!(err, RenderError::BadManifest { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_stream_is_one_yaml_stream_with_every_file() {
        let rendered = tree(&[
            ("Dockerfile", "# header\nFROM x\n\nRUN y\n"),
            (
                "k8s/00-namespace-a.yaml",
                "apiVersion: v1\nkind: Namespace\n",
            ),
            ("grafana/d.json", "{\"a\": 1}\n"),
        ]);
        let stream = rendered.to_stream();
        // The Dockerfile is all comments: a YAML reader sees the other two documents.
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stream).unwrap();
        assert_eq!(documents.len(), 2, "{stream}");
        assert_eq!(stream.matches("# Source: ").count(), 3);
        assert!(stream.contains("# Source: Dockerfile\n# # header\n# FROM x\n#\n# RUN y\n"));
    }
}
