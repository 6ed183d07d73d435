//! A Redis server owned by infra, on 127.0.0.1:56379 (plain) and 127.0.0.1:56380 (TLS, a
//! certificate from the infra CA valid for 127.0.0.1 and localhost), config in the state dir.

use super::pki::{self, Pki};
use super::process::{self, Liveness};
use super::state::{StateDir, write_if_changed};
use anyhow::Context;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

pub const ADDR: &str = "127.0.0.1:56379";
pub const URL: &str = "redis://127.0.0.1:56379";
pub const TLS_PORT: &str = "56380";
pub const TLS_URL: &str = "rediss://127.0.0.1:56380";
const COMPONENT: &str = "redis";

pub fn up(state: &StateDir) -> anyhow::Result<()> {
    let dir = state.dir("redis")?;
    let config = dir.join("redis.conf");
    let (host, port) = ADDR.split_once(':').context("redis address")?;
    let pki = Pki::at(state);
    pki.ensure()?;
    pki.ensure_leaf(&pki::DATASTORE)?;
    let text = format!(
        "# written by `cargo xtask infra up`\n\
         bind {host}\nport {port}\nprotected-mode yes\ndaemonize no\n\
         dir {}\nsave \"\"\nappendonly no\nlogfile \"\"\n\
         tls-port {TLS_PORT}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
         tls-auth-clients no\n",
        dir.display(),
        pki.cert(&pki::DATASTORE).display(),
        pki.key(&pki::DATASTORE).display(),
        pki.ca_cert().display(),
    );
    let changed = write_if_changed(&config, text.as_bytes())?;
    match process::liveness(state, COMPONENT) {
        Liveness::Running(pid) if !changed && ping() => {
            eprintln!("infra: redis       up   {ADDR} (pid {pid})");
            return Ok(());
        }
        Liveness::Running(_) => {
            process::stop(state, COMPONENT, Duration::from_secs(10))?;
        }
        Liveness::Stale | Liveness::Absent => {}
    }
    if process::port_open(ADDR) {
        return Err(process::busy_port(ADDR, COMPONENT));
    }
    let program = crate::tools::which("redis-server").context("redis-server not found")?;
    let mut server = Command::new(program);
    server.arg(&config);
    let pid = process::spawn(state, COMPONENT, server)?;
    process::wait_started(state, COMPONENT, Duration::from_secs(30), || Ok(ping()))?;
    eprintln!("infra: redis       up   {ADDR} (started, pid {pid})");
    Ok(())
}

/// True when `PING` gets `+PONG`.
pub fn ping() -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(ADDR)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 7];
        stream.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

pub fn down(state: &StateDir) -> anyhow::Result<()> {
    if process::stop(state, COMPONENT, Duration::from_secs(10))? {
        eprintln!("infra: redis       stopped");
    }
    Ok(())
}

pub fn status(state: &StateDir) -> String {
    super::component_status(state, COMPONENT, ADDR, ping())
}
