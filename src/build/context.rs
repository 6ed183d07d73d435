//! The build context: the repository tree filtered by `.dockerignore`, hashed, and streamed
//! to the engine as a tar without touching the disk.

use super::BuildError;
use super::dockerignore::{DockerIgnore, MatchInfo};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the rendered Dockerfile sits in the context. Named like the CLI's stdin Dockerfile
/// (`.dockerfile.<id>`) at the top level, so removing it leaves no empty directory behind.
pub const DOCKERFILE_NAME: &str = ".wactl.Dockerfile";
const DOCKERIGNORE: &str = ".dockerignore";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(String),
}

/// One file system entry of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
}

/// A scanned context: what will be sent, and the hash of the build inputs.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    entries: Vec<Entry>,
    /// The `.dockerignore` sent: the repository's plus a line that drops the generated
    /// Dockerfile on the daemon side, as the CLI does for a Dockerfile from stdin.
    dockerignore: String,
    dockerfile: String,
    content_hash: String,
}

impl Context {
    /// Walks `root` the way `docker build` does and hashes every input of the build:
    /// paths, kinds, modes and contents (not times), the Dockerfile, build args and target.
    pub fn scan(
        root: &Path,
        dockerfile: &str,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Self, BuildError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| BuildError::Context { path, source }
        };
        let ignore_path = root.join(DOCKERIGNORE);
        let ignore_text = match std::fs::read_to_string(&ignore_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_error(&ignore_path)(e)),
        };
        let ignore =
            DockerIgnore::parse(&ignore_text).map_err(|error| BuildError::DockerIgnore {
                path: ignore_path.clone(),
                line: error.line,
                message: error.message,
            })?;

        let mut entries = Vec::new();
        walk(root, "", None, &ignore, &mut entries)?;

        let mut dockerignore = ignore_text;
        if !dockerignore.is_empty() && !dockerignore.ends_with('\n') {
            dockerignore.push('\n');
        }
        dockerignore.push_str(&format!(
            "# added by wactl: the generated Dockerfile\n/{DOCKERFILE_NAME}\n"
        ));

        let mut hasher = Sha256::new();
        hasher.update(b"wactl-build-context-v1\0");
        for entry in &entries {
            hasher.update(entry.path.as_bytes());
            hasher.update([0]);
            hasher.update(format!("{:o}\0", entry.mode & 0o7777).as_bytes());
            match &entry.kind {
                EntryKind::Dir => hasher.update(b"d\0"),
                EntryKind::Symlink(target) => {
                    hasher.update(b"l\0");
                    hasher.update(target.as_bytes());
                    hasher.update([0]);
                }
                EntryKind::File => {
                    hasher.update(format!("f\0{}\0", entry.size).as_bytes());
                    let path = root.join(&entry.path);
                    let mut file = std::fs::File::open(&path).map_err(io_error(&path))?;
                    io::copy(&mut file, &mut hasher).map_err(io_error(&path))?;
                }
            }
        }
        for (name, text) in [
            (DOCKERIGNORE, dockerignore.as_str()),
            (DOCKERFILE_NAME, dockerfile),
        ] {
            hasher.update(format!("{name}\0{}\0", text.len()).as_bytes());
            hasher.update(text.as_bytes());
        }
        for (key, value) in build_args {
            hasher.update(format!("arg\0{key}\0{value}\0").as_bytes());
        }
        hasher.update(format!("target\0{}\0", target.unwrap_or("")).as_bytes());

        Ok(Self {
            root: root.to_owned(),
            entries,
            dockerignore,
            dockerfile: dockerfile.to_owned(),
            content_hash: hex::encode(hasher.finalize()),
        })
    }

    /// Sends `dockerfile` instead of the one scanned, keeping the content hash of the
    /// scanned inputs: for lines derived from them (the image labels), which must not
    /// make an unchanged source look changed.
    pub fn send_dockerfile(&mut self, dockerfile: String) {
        self.dockerfile = dockerfile;
    }

    /// Hex SHA-256 of every build input.
    pub fn content_hash(&self) -> &str {
        &self.content_hash
    }

    /// The entries taken from the repository, in the order they are sent.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Bytes of file content from the repository (the tar adds headers and padding).
    pub fn content_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Paths the daemon keeps after removing the generated Dockerfile and, when it is
    /// ignored, `.dockerignore` — what `COPY . dest` sees.
    pub fn visible_paths(&self) -> Vec<String> {
        let sent = DockerIgnore::parse(&self.dockerignore).unwrap_or_default();
        let mut paths = std::collections::BTreeSet::new();
        for entry in &self.entries {
            // Directories skipped for their re-included contents are created on extraction.
            let mut parent = entry.path.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                paths.insert(up.to_owned());
                parent = up;
            }
            paths.insert(entry.path.clone());
        }
        if !sent.excludes(DOCKERIGNORE) {
            paths.insert(DOCKERIGNORE.to_owned());
        }
        paths.into_iter().collect()
    }

    /// Streams the context as a tar, written on a blocking thread as it is read; the
    /// counter tells how many bytes have been produced so far.
    pub fn stream(
        &self,
    ) -> (
        impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
        Arc<AtomicU64>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
        let sent = Arc::new(AtomicU64::new(0));
        let context = self.clone();
        let counter = sent.clone();
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter {
                tx: tx.clone(),
                buffer: Vec::with_capacity(CHUNK),
                sent: counter,
            };
            let result = context.write_tar(writer);
            if let Err(e) = result {
                // The receiver is gone when the engine stopped reading: nothing to report.
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (stream, sent)
    }

    /// Writes the whole tar to `writer` (also used by tests and benchmarks).
    pub fn write_tar<W: Write>(&self, writer: W) -> io::Result<W> {
        let mut tar = tar::Builder::new(writer);
        tar.mode(tar::HeaderMode::Complete);
        for entry in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(entry.mode & 0o7777);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(entry.mtime);
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{}/", entry.path), io::empty())?;
                }
                EntryKind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &entry.path, target)?;
                }
                EntryKind::File => {
                    let file = std::fs::File::open(self.root.join(&entry.path))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(entry.size);
                    // A file that changed size since the scan must not corrupt the archive.
                    let reader = file.take(entry.size);
                    tar.append_data(&mut header, &entry.path, PadTo::new(reader, entry.size))?;
                }
            }
        }
        for (name, text) in [
            (DOCKERIGNORE, self.dockerignore.as_str()),
            (DOCKERFILE_NAME, self.dockerfile.as_str()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(text.len() as u64);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, text.as_bytes())?;
        }
        let mut writer = tar.into_inner()?;
        writer.flush()?;
        Ok(writer)
    }
}

/// Visits `dir` in lexical order as Go's `filepath.WalkDir` does, applying the CLI's rules
/// for skipping excluded directories.
fn walk(
    root: &Path,
    dir: &str,
    parent: Option<&MatchInfo>,
    ignore: &DockerIgnore,
    entries: &mut Vec<Entry>,
) -> Result<(), BuildError> {
    let abs = if dir.is_empty() {
        root.to_owned()
    } else {
        root.join(dir)
    };
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| BuildError::Context { path, source }
    };
    let mut children = std::fs::read_dir(&abs)
        .map_err(io_error(&abs))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(&abs))?;
    children.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in children {
        let abs_child = abs.join(&name);
        let Some(name) = name.to_str() else {
            return Err(BuildError::Context {
                path: abs_child,
                source: io::Error::new(io::ErrorKind::InvalidData, "file name is not UTF-8"),
            });
        };
        let path = if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        };
        let meta = std::fs::symlink_metadata(&abs_child).map_err(io_error(&abs_child))?;
        let (skip, info) = ignore.matches(&path, parent);
        let is_dir = meta.is_dir();
        if skip {
            if is_dir && ignore.has_exclusions() && ignore.must_descend(&path) {
                walk(root, &path, Some(&info), ignore, entries)?;
            }
            continue;
        }
        // wactl supplies these two itself.
        if path == DOCKERIGNORE || path == DOCKERFILE_NAME {
            continue;
        }
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let mode = mode_of(&meta);
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let target = std::fs::read_link(&abs_child).map_err(io_error(&abs_child))?;
            entries.push(Entry {
                path,
                kind: EntryKind::Symlink(target.to_string_lossy().into_owned()),
                mode,
                size: 0,
                mtime,
            });
        } else if is_dir {
            entries.push(Entry {
                path: path.clone(),
                kind: EntryKind::Dir,
                mode,
                size: 0,
                mtime,
            });
            walk(root, &path, Some(&info), ignore, entries)?;
        } else if file_type.is_file() {
            entries.push(Entry {
                path,
                kind: EntryKind::File,
                mode,
                size: meta.len(),
                mtime,
            });
        }
        // Sockets, FIFOs and devices are not sent (the CLI sends headers the daemon
        // cannot use either).
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

const CHUNK: usize = 64 * 1024;

/// Sends what is written as `Bytes` chunks over a bounded channel (back-pressure from the
/// engine's reading pace).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    buffer: Vec<u8>,
    sent: Arc<AtomicU64>,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        let len = chunk.len() as u64;
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the context",
            )
        })?;
        self.sent.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// Pads a reader with zeros up to `len` bytes, so a file that shrank since the scan still
/// fills its declared tar entry.
struct PadTo<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> PadTo<R> {
    fn new(inner: R, len: u64) -> Self {
        Self {
            inner,
            remaining: len,
        }
    }
}

impl<R: Read> Read for PadTo<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        let n = if n == 0 {
            buf[..max].fill(0);
            max
        } else {
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    fn tar_paths(context: &Context) -> Vec<String> {
        let bytes = context.write_tar(Vec::new()).expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    #[test]
    fn the_tar_holds_the_unignored_tree_and_the_generated_files() {
        let dir = tree(&[
            (".dockerignore", "target\n*.log\n!keep.log\n"),
            ("src/main.rs", "fn main() {}"),
            ("target/debug/x", "binary"),
            ("a.log", "x"),
            ("keep.log", "y"),
        ]);
        let context =
            Context::scan(dir.path(), "FROM scratch\n", &BTreeMap::new(), None).expect("scan");
        assert_eq!(
            tar_paths(&context),
            vec![
                "keep.log",
                "src/",
                "src/main.rs",
                ".dockerignore",
                DOCKERFILE_NAME
            ]
        );
        assert_eq!(
            context.visible_paths(),
            vec![".dockerignore", "keep.log", "src", "src/main.rs"]
        );
    }

    #[test]
    fn the_hash_follows_contents_dockerfile_and_args_but_not_times() {
        let dir = tree(&[("a", "1")]);
        let args = BTreeMap::from([("K".to_owned(), "v".to_owned())]);
        let hash = |df: &str, args: &BTreeMap<String, String>| {
            Context::scan(dir.path(), df, args, None)
                .expect("scan")
                .content_hash()
                .to_owned()
        };
        let first = hash("FROM a\n", &args);
        assert_eq!(first, hash("FROM a\n", &args));
        assert_ne!(first, hash("FROM b\n", &args));
        assert_ne!(first, hash("FROM a\n", &BTreeMap::new()));
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("a"))
            .expect("open");
        file.set_modified(std::time::UNIX_EPOCH).expect("touch");
        assert_eq!(first, hash("FROM a\n", &args));
        std::fs::write(dir.path().join("a"), "2").expect("write");
        assert_ne!(first, hash("FROM a\n", &args));
    }

    #[test]
    fn a_bad_dockerignore_names_file_and_line() {
        let dir = tree(&[(".dockerignore", "ok\n!\n")]);
        let error = Context::scan(dir.path(), "", &BTreeMap::new(), None).expect_err("bad");
        assert!(error.to_string().contains(".dockerignore:2"), "{error}");
    }

    #[tokio::test]
    async fn the_stream_yields_the_same_bytes_as_the_writer() {
        use futures_util::StreamExt;
        let dir = tree(&[("big", &"x".repeat(200_000)), ("small", "y")]);
        let context =
            Context::scan(dir.path(), "FROM scratch\n", &BTreeMap::new(), None).expect("scan");
        let (stream, sent) = context.stream();
        let chunks: Vec<Bytes> = stream.map(|c| c.expect("chunk")).collect().await;
        let streamed: Vec<u8> = chunks.concat();
        assert_eq!(streamed, context.write_tar(Vec::new()).expect("tar"));
        assert_eq!(sent.load(Ordering::Relaxed), streamed.len() as u64);
    }
}
