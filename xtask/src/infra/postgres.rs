//! A PostgreSQL 15 cluster owned by infra, on 127.0.0.1:55432, with database `wactl`; it
//! speaks plain text and TLS on the same port (a certificate from the infra CA, valid for
//! 127.0.0.1 and localhost).

use super::pki::{self, Pki};
use super::process::{self, Liveness};
use super::state::{StateDir, write_if_changed};
use anyhow::{Context, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const ADDR: &str = "127.0.0.1:55432";
pub const PORT: &str = "55432";
pub const DATABASE_URL: &str = "postgres://wactl:wactl@127.0.0.1:55432/wactl";

/// The same database over TLS, verifying the certificate and host name against `ca`.
pub fn tls_database_url(ca: &Path) -> String {
    format!(
        "{DATABASE_URL}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    )
}
const COMPONENT: &str = "postgres";
const BIN: &str = "/usr/lib/postgresql/15/bin";
/// Postgres refuses to run as root, so the server runs as Debian's `postgres` user.
const OS_USER: &str = "postgres";

/// Where the cluster lives. `postgres` must reach it, and a state dir under `/root` (mode 0700)
/// is out of its reach; then the cluster goes to the `postgres` user's home and the state dir
/// holds a symlink to it.
fn data_dir(state: &StateDir) -> PathBuf {
    let preferred = state.join("postgres/data");
    if reachable_by_postgres(state.root()) {
        preferred
    } else {
        PathBuf::from("/var/lib/postgresql/wactl-infra/data")
    }
}

fn reachable_by_postgres(dir: &Path) -> bool {
    as_postgres(Command::new("test").arg("-x").arg(dir))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a command as the `postgres` user, without a wrapper process in between
/// (so the pid we record is the server's).
fn as_postgres(command: &mut Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            "--reuid",
            OS_USER,
            "--regid",
            OS_USER,
            "--init-groups",
            "--",
        ])
        .arg(command.get_program())
        .args(command.get_args())
        .env("HOME", "/var/lib/postgresql")
        .current_dir("/");
    wrapped
}

pub fn up(state: &StateDir) -> anyhow::Result<()> {
    if !Path::new(BIN).join("postgres").is_file() {
        bail!(
            "PostgreSQL 15 server programs are missing from {BIN}: apt-get install postgresql-15"
        );
    }
    let data = data_dir(state);
    let socket_dir = data.with_file_name("run");
    init_cluster(state, &data, &socket_dir)?;
    let tls = install_certificate(state, &data)?;

    let mut server = Command::new(format!("{BIN}/postgres"));
    server
        .arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-p", PORT])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", socket_dir.display()))
        .args(["-c", "ssl=on"])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", tls.cert.display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", tls.key.display()))
        // A throwaway test database: durability buys nothing here and costs test time.
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    // A server started with other settings (before TLS, say) is restarted.
    let fingerprint = format!("{server:?}\n");
    let fingerprint_path = state.join("run").join(format!("{COMPONENT}.cmd"));
    let same = std::fs::read_to_string(&fingerprint_path).ok().as_deref() == Some(&fingerprint);
    match process::liveness(state, COMPONENT) {
        Liveness::Running(pid) if same && ready() => {
            eprintln!("infra: postgres    up   {ADDR} (pid {pid})");
            return ensure_database(&socket_dir);
        }
        Liveness::Running(pid) => {
            let why = if same {
                "does not accept connections"
            } else {
                "runs with an old command line"
            };
            eprintln!("infra: postgres    pid {pid} {why}; restarting it");
            process::stop_with(
                state,
                COMPONENT,
                rustix::process::Signal::INT,
                Duration::from_secs(30),
            )?;
        }
        Liveness::Stale | Liveness::Absent => {}
    }
    if process::port_open(ADDR) {
        return Err(process::busy_port(ADDR, COMPONENT));
    }
    let pid = process::spawn_named(state, COMPONENT, "postgres", as_postgres(&mut server))?;
    std::fs::write(&fingerprint_path, fingerprint)?;
    process::wait_started(state, COMPONENT, Duration::from_secs(60), || Ok(ready()))?;
    ensure_database(&socket_dir)?;
    eprintln!(
        "infra: postgres    up   {ADDR} (started, pid {pid}, data {})",
        data.display()
    );
    Ok(())
}

/// Where the server reads its TLS certificate and key.
struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
}

/// Copies the infra CA's datastore certificate where the `postgres` user can read it (the
/// PKI directory is root's), with the key mode 0600 as the server insists.
fn install_certificate(state: &StateDir, data: &Path) -> anyhow::Result<ServerTls> {
    let pki = Pki::at(state);
    pki.ensure()?;
    pki.ensure_leaf(&pki::DATASTORE)?;
    let dir = data.with_file_name("tls");
    std::fs::create_dir_all(&dir)?;
    let tls = ServerTls {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    write_if_changed(&tls.cert, &std::fs::read(pki.cert(&pki::DATASTORE))?)?;
    write_if_changed(&tls.key, &std::fs::read(pki.key(&pki::DATASTORE))?)?;
    std::fs::set_permissions(&tls.key, std::fs::Permissions::from_mode(0o600))?;
    for path in [&dir, &tls.cert, &tls.key] {
        chown_postgres(path)?;
    }
    Ok(tls)
}

fn init_cluster(state: &StateDir, data: &Path, socket_dir: &Path) -> anyhow::Result<()> {
    let parent = data.parent().context("data dir without parent")?;
    std::fs::create_dir_all(socket_dir)?;
    chown_postgres(parent)?;
    chown_postgres(socket_dir)?;
    let link = state.join("postgres/data");
    if link != data && !link.exists() {
        state.dir("postgres")?;
        std::os::unix::fs::symlink(data, &link)
            .with_context(|| format!("linking {} to {}", link.display(), data.display()))?;
    }
    if data.join("PG_VERSION").exists() {
        return Ok(());
    }
    if data.exists() && std::fs::read_dir(data)?.next().is_some() {
        bail!(
            "{} exists without PG_VERSION (a half-finished initdb?); remove it and run \
             `cargo xtask infra up` again",
            data.display()
        );
    }
    eprintln!("infra: postgres    initdb {}", data.display());
    let mut initdb = Command::new(format!("{BIN}/initdb"));
    initdb
        .arg("-D")
        .arg(data)
        .args(["--username=postgres", "--encoding=UTF8", "--locale=C.UTF-8"])
        .args(["--auth-local=peer", "--auth-host=scram-sha-256"]);
    let out = as_postgres(&mut initdb)
        .output()
        .context("running initdb")?;
    if !out.status.success() {
        bail!("initdb failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
    }
    let status = Command::new("chown")
        .arg(format!("{OS_USER}:{OS_USER}"))
        .arg(dir)
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!("chown {OS_USER} {} failed", dir.display());
    }
    Ok(())
}

fn ready() -> bool {
    Command::new(format!("{BIN}/pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", PORT])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Creates role `wactl` (password `wactl`) and database `wactl` unless they exist.
fn ensure_database(socket_dir: &Path) -> anyhow::Result<()> {
    let query = |sql: &str| -> anyhow::Result<String> {
        let mut psql = Command::new(format!("{BIN}/psql"));
        psql.arg("-h")
            .arg(socket_dir)
            .args(["-p", PORT, "-U", "postgres", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql]);
        let out = as_postgres(&mut psql).output().context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if query("SELECT 1 FROM pg_roles WHERE rolname = 'wactl'")?.is_empty() {
        query("CREATE ROLE wactl LOGIN PASSWORD 'wactl'")?;
    }
    if query("SELECT 1 FROM pg_database WHERE datname = 'wactl'")?.is_empty() {
        query("CREATE DATABASE wactl OWNER wactl")?;
    }
    Ok(())
}

pub fn down(state: &StateDir) -> anyhow::Result<()> {
    // SIGINT is postgres' "fast shutdown"; SIGTERM would wait for every client to leave.
    if process::stop_with(
        state,
        COMPONENT,
        rustix::process::Signal::INT,
        Duration::from_secs(30),
    )? {
        eprintln!("infra: postgres    stopped");
    }
    Ok(())
}

pub fn status(state: &StateDir) -> String {
    super::component_status(state, COMPONENT, ADDR, ready())
}
