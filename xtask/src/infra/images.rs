//! `cargo xtask infra images`: the images the local stack and the rendered Dockerfile use,
//! made from Debian packages because no registry can be pulled from here.
//!
//! `debootstrap` makes a minimal bookworm root filesystem that `docker import` turns into
//! `wactl.local/debian:bookworm`; the Dockerfiles in `xtask/assets/infra/images/` build on it.

use super::docker;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const BASE: &str = "wactl.local/debian:bookworm";
pub const RUNTIME: &str = "wactl.local/runtime:bookworm";
pub const RUST_BUILDER: &str = "wactl.local/rust-builder:1.95";
/// The rustup toolchain copied into the builder image.
const RUST_TOOLCHAIN: &str = "1.95.0";

/// Images built from a Dockerfile directory under `xtask/assets/infra/images/`.
const STACK_IMAGES: [(&str, &str); 5] = [
    (RUNTIME, "runtime"),
    ("wactl.local/postgres:15", "postgres"),
    ("wactl.local/redis:7", "redis"),
    ("wactl.local/nginx:1.22", "nginx"),
    ("wactl.local/prometheus:2", "prometheus"),
];

/// Every image `images` makes.
pub fn all() -> Vec<&'static str> {
    let mut names = vec![BASE];
    names.extend(STACK_IMAGES.iter().map(|(tag, _)| *tag));
    names.push(RUST_BUILDER);
    names
}

#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// Rebuild images that already exist.
    pub rebuild: bool,
}

pub fn build(opts: &ImageOptions) -> anyhow::Result<()> {
    if !docker::answers() {
        bail!(
            "no Docker Engine answers on {}; run `cargo xtask infra up` first",
            docker::SOCKET
        );
    }
    crate::tools::ensure(&[crate::tools::Tool {
        program: "debootstrap",
        package: "debootstrap",
    }])?;
    let started = Instant::now();
    let cache = super::binaries::cache_dir()?.join("images");
    std::fs::create_dir_all(&cache)?;
    let mirror = Mirror::from_host()?;

    if opts.rebuild || !exists(BASE) {
        base_image(&cache, &mirror)?;
    } else {
        eprintln!("infra: image {BASE} exists");
    }
    let assets = crate::project::root().join("xtask/assets/infra/images");
    for (tag, dir) in STACK_IMAGES {
        if opts.rebuild || !exists(tag) {
            docker_build(tag, &assets.join(dir), &mirror, &[])?;
        } else {
            eprintln!("infra: image {tag} exists");
        }
    }
    rust_builder(&cache, &assets.join("rust-builder"), &mirror, opts.rebuild)?;
    eprintln!(
        "infra: images ready in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    eprintln!("infra: Grafana is not packaged by Debian, so there is no wactl.local/grafana image");
    Ok(())
}

/// The Debian mirror the host's apt uses (and its address, for builds that run apt).
struct Mirror {
    url: String,
    /// `host:ip` pairs for `docker build --add-host`.
    hosts: Vec<String>,
}

impl Mirror {
    fn from_host() -> anyhow::Result<Self> {
        let mut uris = Vec::new();
        let dir = Path::new("/etc/apt/sources.list.d");
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for file in files {
                if file
                    .extension()
                    .is_some_and(|e| e == "sources" || e == "list")
                {
                    uris.extend(apt_uris(
                        &std::fs::read_to_string(&file).unwrap_or_default(),
                    ));
                }
            }
        }
        uris.extend(apt_uris(
            &std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default(),
        ));
        let url = uris
            .iter()
            .find(|u| !u.contains("security"))
            .cloned()
            .unwrap_or_else(|| "http://deb.debian.org/debian".to_string());
        let mut hosts = Vec::new();
        for uri in &uris {
            let Some(host) = uri_host(uri) else { continue };
            if let Some(ip) = resolve(host) {
                let entry = format!("{host}:{ip}");
                if !hosts.contains(&entry) {
                    hosts.push(entry);
                }
            }
        }
        Ok(Self { url, hosts })
    }
}

/// The URIs of apt sources, in deb822 (`URIs:`) or one-line (`deb URI suite`) format.
fn apt_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("URIs:") {
            out.extend(rest.split_whitespace().map(str::to_string));
        } else if let Some(rest) = line.strip_prefix("deb ")
            && let Some(uri) = rest.split_whitespace().find(|w| w.contains("://"))
        {
            out.push(uri.to_string());
        }
    }
    out
}

fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty()).then_some(host)
}

fn resolve(host: &str) -> Option<String> {
    let out = Command::new("getent")
        .args(["ahostsv4", host])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// One `status` line per image: present or missing.
pub fn status() -> Vec<String> {
    let docker_up = docker::answers();
    all()
        .into_iter()
        .map(|tag| {
            let word = match (docker_up, docker_up && exists(tag)) {
                (false, _) => "unknown (docker down)",
                (true, true) => "present",
                (true, false) => "missing: run `cargo xtask infra images`",
            };
            format!("{:<24} {word:<5}\n", format!("image {tag}"))
        })
        .collect()
}

fn exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn label(tag: &str, key: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format"])
        .arg(format!("{{{{index .Config.Labels \"{key}\"}}}}"))
        .arg(tag)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn base_image(cache: &Path, mirror: &Mirror) -> anyhow::Result<()> {
    let rootfs = cache.join("debian-bookworm-rootfs");
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs)?;
    }
    let started = Instant::now();
    eprintln!(
        "infra: debootstrap --variant=minbase bookworm from {}",
        mirror.url
    );
    let log = cache.join("debootstrap.log");
    run(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&rootfs)
            .arg(&mirror.url),
        &log,
    )?;
    // The image's apt uses the same sources as the host, security updates included.
    let sources_dir = rootfs.join("etc/apt/sources.list.d");
    std::fs::create_dir_all(&sources_dir)?;
    for entry in std::fs::read_dir("/etc/apt/sources.list.d")? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|e| e == "sources" || e == "list")
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, sources_dir.join(name))?;
        }
    }
    if sources_dir.read_dir()?.next().is_some() {
        let _ = std::fs::remove_file(rootfs.join("etc/apt/sources.list"));
    }
    for dir in [
        "var/cache/apt",
        "var/cache/apt/archives",
        "var/lib/apt/lists",
    ] {
        for entry in std::fs::read_dir(rootfs.join(dir))? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::remove_file(path)?;
            }
        }
    }
    // `docker import` reads the root filesystem as a tar stream on stdin.
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let stdin = tar.stdout.take().context("tar stdout")?;
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            "CMD [\"/bin/bash\"]",
            "--change",
            "ENV LANG=C.UTF-8",
        ])
        .args(["-", BASE])
        .stdin(stdin)
        .stdout(Stdio::null())
        .status()
        .context("running docker import")?;
    if !tar.wait()?.success() || !import.success() {
        bail!("tar | docker import {BASE} failed");
    }
    std::fs::remove_dir_all(&rootfs)?;
    eprintln!(
        "infra: image {BASE} imported in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn docker_build(
    tag: &str,
    context: &Path,
    mirror: &Mirror,
    build_args: &[String],
) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("infra: docker build {tag}");
    let mut build = Command::new("docker");
    // The legacy builder: this Docker Engine has no BuildKit plugin installed.
    build
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "host", "--tag", tag]);
    for host in &mirror.hosts {
        build.arg("--add-host").arg(host);
    }
    for arg in build_args {
        build.arg("--build-arg").arg(arg);
    }
    build.arg(context);
    let log = super::binaries::cache_dir()?.join("images/build.log");
    run(&mut build, &log)?;
    eprintln!(
        "infra: image {tag} built in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The builder image, rebuilt when Cargo.lock changes (its hash is a label and a tag).
fn rust_builder(
    cache: &Path,
    dockerfile_dir: &Path,
    mirror: &Mirror,
    rebuild: bool,
) -> anyhow::Result<()> {
    let lock = crate::project::root().join("Cargo.lock");
    let lock_hash = hex::encode(Sha256::digest(
        std::fs::read(&lock).with_context(|| format!("reading {}", lock.display()))?,
    ));
    if !rebuild && label(RUST_BUILDER, "dev.wactl.cargo-lock-sha256").as_deref() == Some(&lock_hash)
    {
        eprintln!("infra: image {RUST_BUILDER} exists for this Cargo.lock");
        return Ok(());
    }
    let context = cache.join("rust-builder");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&context)?;
    std::fs::copy(
        dockerfile_dir.join("Dockerfile"),
        context.join("Dockerfile"),
    )?;

    // The toolchain without its documentation (share/ is mostly HTML docs).
    let sysroot = rust_sysroot()?;
    let toolchain = context.join("toolchain");
    std::fs::create_dir_all(&toolchain)?;
    for part in ["bin", "lib", "libexec"] {
        if sysroot.join(part).exists() {
            run(
                Command::new("cp")
                    .arg("-a")
                    .arg(sysroot.join(part))
                    .arg(&toolchain),
                &cache.join("build.log"),
            )?;
        }
    }
    // The registry cargo fetched for exactly this Cargo.lock, kept between builds.
    let cargo_home = cache.join("cargo-home");
    eprintln!("infra: cargo fetch into {}", cargo_home.display());
    run(
        Command::new("cargo")
            .arg(format!("+{RUST_TOOLCHAIN}"))
            .args([
                "fetch",
                "--locked",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--manifest-path",
            ])
            .arg(crate::project::root().join("Cargo.toml"))
            .env("CARGO_HOME", &cargo_home),
        &cache.join("build.log"),
    )?;
    let ctx_home = context.join("cargo-home");
    std::fs::create_dir_all(&ctx_home)?;
    run(
        Command::new("cp")
            .arg("-a")
            .arg(cargo_home.join("registry"))
            .arg(&ctx_home),
        &cache.join("build.log"),
    )?;
    let hashed_tag = format!("{RUST_BUILDER}-{}", &lock_hash[..12]);
    docker_build(
        &hashed_tag,
        &context,
        mirror,
        &[format!("CARGO_LOCK_SHA256={lock_hash}")],
    )?;
    let tag = Command::new("docker")
        .args(["tag", &hashed_tag, RUST_BUILDER])
        .status()?;
    if !tag.success() {
        bail!("docker tag {hashed_tag} {RUST_BUILDER} failed");
    }
    std::fs::remove_dir_all(&context)?;
    remove_stale_builder_tags(&hashed_tag);
    Ok(())
}

/// Untags builder images made for earlier Cargo.locks; best effort (a running container
/// keeps its image).
fn remove_stale_builder_tags(keep: &str) {
    let Ok(out) = Command::new("docker")
        .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
        .arg("wactl.local/rust-builder")
        .output()
    else {
        return;
    };
    let prefix = format!("{RUST_BUILDER}-");
    for tag in String::from_utf8_lossy(&out.stdout).lines() {
        if tag.starts_with(&prefix) && tag != keep {
            let _ = Command::new("docker")
                .args(["rmi", tag])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn rust_sysroot() -> anyhow::Result<PathBuf> {
    let out = Command::new("rustc")
        .arg(format!("+{RUST_TOOLCHAIN}"))
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    if !out.status.success() {
        bail!(
            "Rust {RUST_TOOLCHAIN} is not installed (rustup toolchain install {RUST_TOOLCHAIN}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

fn run(command: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let status = command
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!(
            "{:?} failed ({status}); last lines of {}:\n{}",
            command.get_program(),
            log.display(),
            super::process::log_tail(log, 20)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_uris_from_deb822_and_one_line_sources() {
        let deb822 =
            "Types: deb\n# comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n";
        assert_eq!(apt_uris(deb822), ["http://deb.debian.org/debian"]);
        let list =
            "deb [arch=amd64] http://mirror.example/debian bookworm main\n# deb http://x y\n";
        assert_eq!(apt_uris(list), ["http://mirror.example/debian"]);
    }

    #[test]
    fn uri_host_strips_scheme_port_and_path() {
        assert_eq!(
            uri_host("http://deb.debian.org/debian"),
            Some("deb.debian.org")
        );
        assert_eq!(uri_host("http://10.0.0.1:3142/debian"), Some("10.0.0.1"));
        assert_eq!(uri_host("nonsense"), None);
    }

    #[test]
    fn every_stack_image_has_a_dockerfile() {
        let assets = crate::project::root().join("xtask/assets/infra/images");
        for (tag, dir) in STACK_IMAGES {
            assert!(assets.join(dir).join("Dockerfile").is_file(), "{tag}");
        }
        assert!(assets.join("rust-builder/Dockerfile").is_file());
        assert_eq!(all().len(), 7);
    }
}
