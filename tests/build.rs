//! `wactl build` against the real Docker Engine and registries of `cargo xtask infra`.
//!
//! Infrastructure tests are ignored by default; `cargo xtask test` runs them after
//! `cargo xtask infra up` and `cargo xtask infra images`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wactl::build::{self, BuildError, BuildOptions, NoProgress};
use wactl::config::Environment;
use wactl::render::{self, RenderOptions};

const INFRA: &str = "needs infra: cargo xtask infra up";
const BASE_IMAGE: &str = "wactl.local/debian:bookworm";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(cargo xtask infra env)\"` ({INFRA})")
    })
}

fn dev_env() -> Environment {
    wactl::config::load(&repo_root().join("environments"), "dev").expect("environments/dev.yaml")
}

/// An environment for a small test image in `repository` on `registry`.
fn test_env(repository: &str, registry: Option<String>) -> Environment {
    let mut env = dev_env();
    env.image.registry = registry;
    env.image.repository = repository.to_owned();
    env.image.tag = "test".to_owned();
    env.image.build_args.clear();
    env.image.target = None;
    env
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn docker_cli(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write_tree(root: &Path, files: &[&str]) {
    for file in files {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, format!("content of {file}\n")).expect("write");
    }
}

fn listing_dockerfile() -> String {
    format!("FROM {BASE_IMAGE}\nCOPY . /ctx\n")
}

/// What `COPY . /ctx` received, as sorted relative paths.
fn listed(image: &str) -> Vec<String> {
    let out = docker_cli(&[
        "run",
        "--rm",
        "--entrypoint",
        "find",
        image,
        "/ctx",
        "-mindepth",
        "1",
    ]);
    let mut paths: Vec<String> = out
        .lines()
        .map(|l| l.trim_start_matches("/ctx/").to_owned())
        .collect();
    paths.sort();
    paths
}

const TRICKY_IGNORE: &str = "\
# a comment, then patterns the Docker CLI treats in particular ways
*.log
!important.log
**/*.tmp
docs/**
!docs/keep/**
build
!build/keep.txt
a/*/c
dir?/x
[ab]*.dat
/abs.txt
  spaced.txt  
node_modules
**/cache
!deep/**/cache/allowed
x/../y.txt
a+b.txt
sub/./skip//me
";

const TRICKY_FILES: &[&str] = &[
    "app.log",
    "important.log",
    "sub/app.log",
    "x.tmp",
    "sub/deep/y.tmp",
    "docs/a.md",
    "docs/keep/b.md",
    "docs/keep/sub/c.md",
    "build/out",
    "build/keep.txt",
    "a/b/c",
    "a/b/d",
    "a/q/c/e",
    "dir1/x",
    "dir12/x",
    "a1.dat",
    "c1.dat",
    "abs.txt",
    "sub/abs.txt",
    "spaced.txt",
    "node_modules/m/index.js",
    "sub/node_modules/x",
    "cache/z",
    "sub/cache/z",
    "deep/p/cache/allowed",
    "deep/p/cache/other",
    "y.txt",
    "a+b.txt",
    "aab.txt",
    "sub/skip/me",
    "sub/skip/not",
    "src/main.rs",
    ".hidden",
];

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn the_context_matches_what_the_docker_cli_sends() {
    env_var("DOCKER_HOST");
    let dir = tempfile::tempdir().expect("temp dir");
    write_tree(dir.path(), TRICKY_FILES);
    std::fs::write(dir.path().join(".dockerignore"), TRICKY_IGNORE).expect("write");
    let dockerfile = listing_dockerfile();
    std::fs::write(dir.path().join("Dockerfile"), &dockerfile).expect("write");

    // The Docker CLI's own context (classic builder, as wactl uses).
    let cli_tag = "wactl-test/context-cli:latest";
    let output = Command::new("docker")
        .args(["build", "-q", "-t", cli_tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(
        output.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_cli = listed(cli_tag);

    let env = test_env("wactl-test/context-wactl", None);
    let mut options = BuildOptions::new(dir.path());
    options.force = true;
    let image = runtime()
        .block_on(async {
            let docker = build::connect().await?;
            build::build(&docker, &env, &dockerfile, &options, &NoProgress).await
        })
        .expect("wactl build");
    let from_wactl = listed(&image.reference);

    assert_eq!(
        from_wactl, from_cli,
        "wactl's context differs from the CLI's"
    );
    // And the library's own idea of it agrees with what the engine saw.
    let context =
        build::Context::scan(dir.path(), &dockerfile, &Default::default(), None).expect("scan");
    assert_eq!(context.visible_paths(), from_cli);
    assert!(from_cli.contains(&"important.log".to_owned()));
    assert!(!from_cli.contains(&"app.log".to_owned()));
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn a_broken_dockerfile_fails_with_its_line() {
    env_var("DOCKER_HOST");
    let templates = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        templates.path().join("Dockerfile.tera"),
        format!("FROM {BASE_IMAGE}\n# the next line is not an instruction\nBOGUS {{{{ env.app.port }}}}\n"),
    )
    .expect("write");
    let env = test_env("wactl-test/broken", None);
    let rendered = render::render(
        &env,
        &RenderOptions {
            image: None,
            templates: Some(templates.path().to_owned()),
        },
    )
    .expect("render");
    let dockerfile = &rendered.files["Dockerfile"];
    let context = tempfile::tempdir().expect("temp dir");
    write_tree(context.path(), &["a"]);
    let options = BuildOptions::new(context.path());
    let rt = runtime();
    let error = rt
        .block_on(async {
            let docker = build::connect().await?;
            build::build(&docker, &env, dockerfile, &options, &NoProgress).await
        })
        .expect_err("a broken Dockerfile must fail");
    let line = dockerfile
        .lines()
        .position(|l| l.starts_with("BOGUS"))
        .expect("bogus line")
        + 1;
    match &error {
        BuildError::Dockerfile { line: at, text, .. } => {
            assert_eq!(*at, line, "{error}");
            assert!(text.starts_with("BOGUS 8080"), "{error}");
        }
        other => panic!("expected a Dockerfile error, got {other}"),
    }

    // A failing RUN step names its step, line and output.
    let failing =
        format!("FROM {BASE_IMAGE}\nRUN echo preparing\nRUN echo about to fail && false\n");
    let error = rt
        .block_on(async {
            let docker = build::connect().await?;
            build::build(&docker, &env, &failing, &options, &NoProgress).await
        })
        .expect_err("a failing step must fail");
    let text = error.to_string();
    assert!(
        matches!(
            error,
            BuildError::StepFailed {
                step: 3,
                line: Some(3),
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains("| about to fail"), "{text}");
    assert!(text.contains("non-zero code: 1"), "{text}");
}

/// `HEAD /v2/<repo>/manifests/<tag>` on a plain-HTTP registry: the digest it serves.
fn registry_digest(registry: &str, repository: &str, tag: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(registry).expect("registry reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "HEAD /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    response.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("docker-content-digest")
            .then(|| value.trim().to_owned())
    })
}

fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn the_service_image_builds_runs_as_non_root_skips_when_unchanged_and_pushes() {
    env_var("DOCKER_HOST");
    let registry = env_var("WACTL_REGISTRY");
    let env = dev_env();
    assert_eq!(env.image.registry.as_deref(), Some(registry.as_str()));
    let rendered = render::render(&env, &RenderOptions::default()).expect("render");
    let dockerfile = &rendered.files["Dockerfile"];
    let mut options = BuildOptions::new(repo_root());
    options.check_registry = false;
    options.timeout = Duration::from_secs(1800);
    let rt = runtime();
    let docker = rt.block_on(build::connect()).expect("docker");

    let image = rt
        .block_on(build::build(
            &docker,
            &env,
            dockerfile,
            &options,
            &NoProgress,
        ))
        .expect("build the service image");
    assert!(
        image.tags.iter().any(|t| t.ends_with(":dev")),
        "{:?}",
        image.tags
    );
    assert!(
        image.tags.iter().any(|t| t.contains(":git-")),
        "{:?}",
        image.tags
    );

    // Non-root, with OCI labels.
    let inspect = rt
        .block_on(docker.inspect_image(&image.reference))
        .expect("inspect");
    let config = inspect.config.expect("config");
    assert_eq!(config.user.as_deref(), Some("10001:10001"));
    let labels = config.labels.expect("labels");
    for key in ["source", "revision", "created", "version"] {
        assert!(
            labels.contains_key(&format!("org.opencontainers.image.{key}")),
            "label {key} missing: {labels:?}"
        );
    }

    // Runs, answers /healthz on a loopback-published port.
    let container = docker_cli(&[
        "run",
        "-d",
        "--rm",
        "-p",
        "127.0.0.1::8080",
        &image.reference,
    ])
    .trim()
    .to_owned();
    let port: u16 = docker_cli(&["port", &container, "8080/tcp"])
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("published port");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut status = None;
    while Instant::now() < deadline {
        status = http_get_status(port, "/healthz");
        if status == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // `docker top` needs a PID column; the second column is the user id.
    let top = docker_cli(&["top", &container, "-o", "pid,uid"]);
    docker_cli(&["rm", "-f", &container]);
    assert_eq!(status, Some(200), "/healthz never answered 200");
    let users: Vec<&str> = top
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(!users.is_empty(), "docker top listed no process: {top}");
    assert!(
        users.iter().all(|uid| *uid == "10001"),
        "the service runs as another user (10001 expected): {top}"
    );

    // Unchanged inputs: no build.
    let again = rt
        .block_on(build::build(
            &docker,
            &env,
            dockerfile,
            &options,
            &NoProgress,
        ))
        .expect("second build");
    assert!(again.skipped, "unchanged inputs were built again");
    assert_eq!(again.content_hash, image.content_hash);

    // Push and read the digest back from the registry.
    let pushed = rt
        .block_on(build::push(&docker, &env, &again, &options, &NoProgress))
        .expect("push");
    let digest = pushed.digest.clone().expect("digest");
    assert_eq!(pushed.reference, format!("{}@{digest}", env.image.name()));
    let tag = build::content_tag(&image.content_hash);
    assert_eq!(
        registry_digest(&registry, &env.image.repository, &tag).as_deref(),
        Some(digest.as_str())
    );

    // The registry now answers for the same inputs, even without the local image.
    let mut from_registry = options.clone();
    from_registry.check_registry = true;
    let found = rt
        .block_on(async {
            docker
                .remove_image(
                    &image.reference,
                    None::<bollard::query_parameters::RemoveImageOptions>,
                    None,
                )
                .await
                .ok();
            build::build(&docker, &env, dockerfile, &from_registry, &NoProgress).await
        })
        .expect("lookup");
    assert!(found.skipped);
    assert_eq!(found.digest.as_deref(), Some(digest.as_str()));
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn pushing_to_the_htpasswd_registry_needs_the_credentials() {
    env_var("DOCKER_HOST");
    let registry = env_var("WACTL_AUTH_REGISTRY");
    let user = env_var("WACTL_AUTH_REGISTRY_USER");
    let password = env_var("WACTL_AUTH_REGISTRY_PASSWORD");
    let env = test_env("wactl-test/auth-push", Some(registry.clone()));
    let context = tempfile::tempdir().expect("temp dir");
    write_tree(context.path(), &["payload"]);
    let nonce = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_nanos()
    );
    let dockerfile =
        format!("FROM {BASE_IMAGE}\nCOPY payload /payload\nLABEL test.nonce={nonce}\n");

    let empty_config = tempfile::tempdir().expect("temp dir");
    let mut options = BuildOptions::new(context.path());
    options.docker_config = Some(empty_config.path().to_owned());
    let rt = runtime();
    let docker = rt.block_on(build::connect()).expect("docker");
    let image = rt
        .block_on(build::build(
            &docker,
            &env,
            &dockerfile,
            &options,
            &NoProgress,
        ))
        .expect("build");

    let error = rt
        .block_on(build::push(&docker, &env, &image, &options, &NoProgress))
        .expect_err("anonymous push must be refused");
    let text = error.to_string();
    assert!(matches!(error, BuildError::Push { .. }), "{text}");
    assert!(text.contains("docker login"), "{text}");

    let config = tempfile::tempdir().expect("temp dir");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("write config");
    options.docker_config = Some(config.path().to_owned());
    let pushed = rt
        .block_on(build::push(&docker, &env, &image, &options, &NoProgress))
        .expect("push with credentials");
    let digest = pushed.digest.expect("digest");
    assert!(digest.starts_with("sha256:"));
    assert!(!format!("{:?}", pushed.reference).contains(&password));
}

#[test]
fn an_unreachable_engine_names_the_endpoint_and_docker_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("no-docker.sock");
    let output = Command::new(env!("CARGO_BIN_EXE_wactl"))
        .args(["--env-dir"])
        .arg(repo_root().join("environments"))
        .args(["build", "dev", "--source"])
        .arg(dir.path())
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .output()
        .expect("run wactl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("unix://{}", socket.display())),
        "{stderr}"
    );
    assert!(stderr.contains("DOCKER_HOST"), "{stderr}");
}

#[test]
fn a_bad_dockerignore_is_invalid_input_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(".dockerignore"), "target\n!\n").expect("write");
    let error = build::Context::scan(dir.path(), "FROM x\n", &Default::default(), None)
        .expect_err("bad pattern");
    assert!(error.is_invalid_input());
    assert!(
        error
            .to_string()
            .ends_with(".dockerignore:2: illegal exclusion pattern: \"!\""),
        "{error}"
    );
}
