//! `cargo xtask soak`: address-service under a steady request rate for minutes, with its
//! PostgreSQL restarted once and its Redis stopped for a minute.
//!
//! The run owns its PostgreSQL and Redis (the same Debian programs infra uses, on free
//! loopback ports, in a temporary directory), so stopping them never disturbs tests that use
//! the shared infra instances. A load generator in this process sends
//! `POST /v1/addresses/validate` at a fixed rate over keep-alive connections. At the end it
//! checks: no 5xx, every answered request in the audit log, no RSS growth, and rate
//! limiting off (no 429) while Redis was down, with a warning in the service log.

use crate::bench_service::{BODIES, Server, free_port, rss_kib, wait_http};
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Length of the run (fractions allowed for a quick check, e.g. 2.5).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Requests per second, spread over the connections.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: u32,
    /// How long Redis stays stopped.
    #[arg(long, default_value_t = 60)]
    redis_outage_secs: u64,
    /// How long PostgreSQL stays stopped in its restart.
    #[arg(long, default_value_t = 10)]
    postgres_down_secs: u64,
}

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Phases the results are split by.
const PHASES: [&str; 3] = ["normal", "PostgreSQL restarting", "Redis stopped"];
const NORMAL: usize = 0;
const PG_RESTART: usize = 1;
const REDIS_DOWN: usize = 2;

/// Outcome classes per phase.
const CLASSES: [&str; 5] = ["2xx", "429", "other 4xx", "5xx", "no response"];
const C2XX: usize = 0;
const C429: usize = 1;
const C4XX: usize = 2;
const C5XX: usize = 3;
const NO_RESPONSE: usize = 4;

/// Latency histogram: 1 ms buckets up to 1 s, then one overflow bucket.
const BUCKETS: usize = 1001;

struct Stats {
    phase: AtomicUsize,
    counts: [[AtomicU64; CLASSES.len()]; PHASES.len()],
    latency_ms: [Vec<AtomicU64>; PHASES.len()],
    /// Requests the schedule wanted but a slow answer pushed out of their slot.
    skipped: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        Stats {
            phase: AtomicUsize::new(NORMAL),
            counts: Default::default(),
            latency_ms: std::array::from_fn(|_| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect()),
            skipped: AtomicU64::new(0),
        }
    }

    /// Counts a request in the phase it was sent in.
    fn record(&self, phase: usize, class: usize, latency: Duration) {
        self.counts[phase][class].fetch_add(1, Ordering::Relaxed);
        let bucket = (latency.as_millis() as usize).min(BUCKETS - 1);
        self.latency_ms[phase][bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, phase: usize, class: usize) -> u64 {
        self.counts[phase][class].load(Ordering::Relaxed)
    }

    fn total(&self, class: usize) -> u64 {
        (0..PHASES.len()).map(|p| self.count(p, class)).sum()
    }

    /// The latency (ms, bucket upper bound) below which `q` of the phase's requests fall.
    fn quantile_ms(&self, phase: usize, q: f64) -> Option<usize> {
        let counts: Vec<u64> = self.latency_ms[phase]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        counts.iter().enumerate().find_map(|(ms, &n)| {
            seen += n;
            (seen >= wanted).then_some(ms + 1)
        })
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.rate == 0 || args.connections == 0 || args.minutes <= 0.0 {
        bail!("--rate, --connections and --minutes must be positive");
    }
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let outage = Duration::from_secs(args.redis_outage_secs);
    if total < outage + Duration::from_secs(40 + args.postgres_down_secs) {
        bail!(
            "a run of {total:?} is too short for a {outage:?} Redis outage and a PostgreSQL restart"
        );
    }
    if !crate::tools::have("redis-server") {
        crate::tools::apt_install(&["redis-server"])?;
    }
    if !Path::new(BIN).join("postgres").is_file() {
        bail!("PostgreSQL 15 is missing from {BIN}: run `cargo xtask infra up` once");
    }
    let binary = crate::project::build_binary("address-service", true)?;
    let work = tempfile::Builder::new()
        .prefix("wactl-soak-")
        .tempdir_in("/tmp")?;
    let mut postgres = Postgres::init(work.path())?;
    postgres.start()?;
    let mut redis = Redis::new(free_port()?, work.path());
    redis.start()?;

    // Allow about half the offered rate, so 429s show that rate limiting works while Redis is
    // up and their absence shows it fails open while Redis is down.
    let limit = u64::from(args.rate) * 30;
    let port = free_port()?;
    let log_path = work.path().join("address-service.log");
    let service = Server(
        Command::new(&binary)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", postgres.url())
            .env("REDIS_URL", redis.url())
            .env("RATE_LIMIT_PER_MINUTE", limit.to_string())
            .env("RUST_LOG", "info,tokio_postgres=warn")
            .env_remove("REQUIRE_API_KEY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .context("starting address-service")?,
    );
    wait_http(port, Duration::from_secs(20))?;
    let pid = service.0.id();
    let idle_rss = rss_kib(pid)?;
    eprintln!(
        "xtask soak: {:.1} min at {} req/s over {} connections; rate limit {limit}/min; \
         service pid {pid}, PostgreSQL :{}, Redis :{}",
        args.minutes, args.rate, args.connections, postgres.port, redis.port
    );

    let stats = Arc::new(Stats::new());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|i| {
            let (stats, stop) = (stats.clone(), stop.clone());
            let interval =
                Duration::from_secs_f64(f64::from(args.connections) / f64::from(args.rate));
            let offset = interval.mul_f64(f64::from(i) / f64::from(args.connections));
            std::thread::spawn(move || load(port, started + offset, interval, &stats, &stop))
        })
        .collect();

    let mut events = Vec::new();
    let mut rss = vec![(0u64, idle_rss)];
    let at = |fraction: f64| total.mul_f64(fraction);
    let event = |events: &mut Vec<String>, what: String| {
        let line = format!("t={:>5.1}s {what}", started.elapsed().as_secs_f64());
        eprintln!("xtask soak: {line}");
        events.push(line);
    };
    let mut next_sample = Duration::from_secs(10);
    let mut postgres_done = false;
    let mut redis_stopped_at: Option<Instant> = None;
    let mut redis_done = false;
    let redis_stop_at = at(0.5).min(total - outage - Duration::from_secs(20));
    while started.elapsed() < total {
        let now = started.elapsed();
        if now >= next_sample {
            rss.push((now.as_secs(), rss_kib(pid)?));
            next_sample += Duration::from_secs(10);
        }
        if !postgres_done && now >= at(0.2) {
            stats.phase.store(PG_RESTART, Ordering::Relaxed);
            event(&mut events, "PostgreSQL: fast shutdown (SIGINT)".into());
            let down = Instant::now();
            postgres.stop()?;
            std::thread::sleep(Duration::from_secs(args.postgres_down_secs));
            postgres.start()?;
            event(
                &mut events,
                format!(
                    "PostgreSQL: accepting connections again after {:.1}s",
                    down.elapsed().as_secs_f64()
                ),
            );
            // Give the audit writer one backoff period to notice inside this phase.
            std::thread::sleep(Duration::from_secs(5));
            stats.phase.store(NORMAL, Ordering::Relaxed);
            postgres_done = true;
        }
        if redis_stopped_at.is_none() && !redis_done && now >= redis_stop_at {
            redis.stop()?;
            stats.phase.store(REDIS_DOWN, Ordering::Relaxed);
            event(&mut events, "Redis: stopped (SIGTERM)".into());
            redis_stopped_at = Some(Instant::now());
        }
        if let Some(since) = redis_stopped_at
            && since.elapsed() >= outage
        {
            stats.phase.store(NORMAL, Ordering::Relaxed);
            redis.start()?;
            event(
                &mut events,
                format!(
                    "Redis: started again after {:.0}s",
                    since.elapsed().as_secs_f64()
                ),
            );
            redis_stopped_at = None;
            redis_done = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let end_rss = rss_kib(pid)?;
    rss.push((elapsed.as_secs(), end_rss));

    // The audit writer flushes every second; give a backlog time to drain before counting.
    let mut audit = audit_metrics(port)?;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while audit.pending > 0 && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(500));
        audit = audit_metrics(port)?;
    }
    std::thread::sleep(Duration::from_secs(2));
    let audit = audit_metrics(port)?;
    drop(service);
    let rows: u64 = postgres
        .query("SELECT count(*) FROM audit_log WHERE route = '/v1/addresses/validate'")?
        .parse()
        .context("counting audit rows")?;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let log_count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();

    let answered: u64 = [C2XX, C429, C4XX, C5XX]
        .iter()
        .map(|&c| stats.total(c))
        .sum();
    let sent = answered + stats.total(NO_RESPONSE);
    let warm_rss = rss
        .iter()
        .find(|(t, _)| *t >= 30)
        .map_or(idle_rss, |(_, kib)| *kib);
    let max_rss = rss.iter().map(|(_, kib)| *kib).max().unwrap_or(end_rss);

    let mut report = String::new();
    let w = &mut report;
    use std::fmt::Write as _;
    writeln!(
        w,
        "Run: {:.1} min, {} req/s offered over {} keep-alive connections to `POST /v1/addresses/validate` \
         (10 bodies, 8 countries), rate limit {limit}/min per client (about half the offered rate).\n",
        elapsed.as_secs_f64() / 60.0,
        args.rate,
        args.connections
    )?;
    writeln!(w, "| phase | {} | p50 ms | p99 ms |", CLASSES.join(" | "))?;
    writeln!(w, "|---|{}---|---|", "---:|".repeat(CLASSES.len()))?;
    for (p, name) in PHASES.iter().enumerate() {
        let cells: Vec<String> = (0..CLASSES.len())
            .map(|c| stats.count(p, c).to_string())
            .collect();
        let q = |x| {
            stats
                .quantile_ms(p, x)
                .map_or("-".into(), |v| format!("≤{v}"))
        };
        writeln!(
            w,
            "| {name} | {} | {} | {} |",
            cells.join(" | "),
            q(0.5),
            q(0.99)
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "- requests sent: {sent}; answered: {answered}; 5xx: {}; no response: {}; schedule slots skipped (client behind): {}",
        stats.total(C5XX),
        stats.total(NO_RESPONSE),
        stats.skipped.load(Ordering::Relaxed)
    )?;
    writeln!(
        w,
        "- audit log: {rows} rows for {answered} answered requests; service counters: written {}, dropped {}, pending at the end {}",
        audit.written, audit.dropped, audit.pending
    )?;
    writeln!(
        w,
        "- RSS: {idle_rss} KiB idle after start, {warm_rss} KiB after 30 s of load, {max_rss} KiB max, {end_rss} KiB at the end"
    )?;
    writeln!(
        w,
        "- service log: {} `Redis unavailable` warning(s), {} `Redis answers again`, {} `audit write failed` warning(s), {} `audit log writes again`, {} error line(s)",
        log_count("Redis unavailable"),
        log_count("Redis answers again"),
        log_count("audit write failed"),
        log_count("audit log writes again"),
        log_count("\"level\":\"ERROR\"")
    )?;
    writeln!(w, "\nEvents:\n")?;
    for e in &events {
        writeln!(w, "    {e}")?;
    }
    writeln!(
        w,
        "\nRSS samples (s: KiB): {}",
        rss.iter()
            .map(|(t, k)| format!("{t}: {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    println!("{report}");
    let out = crate::project::root().join("target/soak-report.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask soak: report also in {}", out.display());

    let mut failures = Vec::new();
    if stats.total(C5XX) > 0 {
        failures.push(format!("{} responses were 5xx", stats.total(C5XX)));
    }
    if stats.total(NO_RESPONSE) > 0 {
        failures.push(format!(
            "{} requests got no response",
            stats.total(NO_RESPONSE)
        ));
    }
    if rows != answered {
        failures.push(format!(
            "audit log has {rows} rows for {answered} answered requests"
        ));
    }
    if stats.count(REDIS_DOWN, C429) > 0 {
        failures.push(format!(
            "{} requests were rate limited while Redis was down (should fail open)",
            stats.count(REDIS_DOWN, C429)
        ));
    }
    if stats.count(REDIS_DOWN, C2XX) == 0 {
        failures.push("no request succeeded while Redis was down".into());
    }
    if log_count("Redis unavailable") == 0 {
        failures.push("no warning logged while Redis was down".into());
    }
    if end_rss > warm_rss + warm_rss / 4 + 4096 {
        failures.push(format!("RSS grew from {warm_rss} KiB to {end_rss} KiB"));
    }
    if !failures.is_empty() {
        bail!("soak failed:\n  {}", failures.join("\n  "));
    }
    eprintln!("xtask soak: passed");
    Ok(())
}

/// One keep-alive connection sending on a fixed schedule until `stop`.
fn load(port: u16, first: Instant, interval: Duration, stats: &Stats, stop: &AtomicBool) {
    let mut next = first;
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > interval * 4 {
            // Far behind (a slow answer): drop the missed slots rather than burst.
            let missed = ((now - next).as_secs_f64() / interval.as_secs_f64()) as u64;
            stats.skipped.fetch_add(missed, Ordering::Relaxed);
            next = now;
        }
        next += interval;
        let body = BODIES[i % BODIES.len()];
        i += 1;
        let phase = stats.phase.load(Ordering::Relaxed);
        let sent = Instant::now();
        let result = match conn.as_mut() {
            Some(c) => exchange(c, port, body),
            None => Err(std::io::Error::other("not connected")),
        };
        let result = match result {
            Ok(status) => Ok(status),
            // A keep-alive connection the server closed: one fresh connection, then give up.
            Err(_) => connect(port).and_then(|mut c| {
                let status = exchange(&mut c, port, body);
                conn = Some(c);
                status
            }),
        };
        match result {
            Ok(status) => {
                let class = match status {
                    200..=299 => C2XX,
                    429 => C429,
                    400..=499 => C4XX,
                    _ => C5XX,
                };
                stats.record(phase, class, sent.elapsed());
            }
            Err(_) => {
                conn = None;
                stats.record(phase, NO_RESPONSE, sent.elapsed());
            }
        }
    }
}

fn connect(port: u16) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    Ok(BufReader::new(stream))
}

/// Sends one request and reads the whole response; returns its status.
fn exchange(conn: &mut BufReader<TcpStream>, port: u16, body: &str) -> std::io::Result<u16> {
    let request = format!(
        "POST /v1/addresses/validate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(request.as_bytes())?;
    read_response(conn).map(|(status, _)| status)
}

fn read_response(conn: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| bad("content-length"))?;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok((status, body))
}

struct AuditMetrics {
    written: u64,
    dropped: u64,
    pending: u64,
}

fn audit_metrics(port: u16) -> anyhow::Result<AuditMetrics> {
    let mut conn = connect(port)?;
    conn.get_mut()
        .write_all(format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())?;
    let (status, body) = read_response(&mut conn)?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("{name} missing from /metrics"))
    };
    Ok(AuditMetrics {
        written: value("address_service_audit_records_total{outcome=\"written\"}")?,
        dropped: value("address_service_audit_records_total{outcome=\"dropped\"}")?,
        pending: value("address_service_audit_pending")?,
    })
}

/// A throwaway PostgreSQL 15 cluster owned by this run (trust authentication, loopback only).
struct Postgres {
    data: PathBuf,
    port: u16,
    server: Option<Child>,
}

impl Postgres {
    fn init(work: &Path) -> anyhow::Result<Self> {
        // The server runs as `postgres`, which must reach the directory.
        chown_postgres(work)?;
        let data = work.join("postgres");
        let out = as_postgres(
            Command::new(format!("{BIN}/initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--auth=trust",
                ]),
        )
        .output()
        .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Postgres {
            data,
            port: free_port()?,
            server: None,
        })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.data.with_file_name("postgres.log"))?;
        let child = as_postgres(
            Command::new(format!("{BIN}/postgres"))
                .arg("-D")
                .arg(&self.data)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                ])
                .args(["-c", "unix_socket_directories=", "-c", "fsync=off"]),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting postgres")?;
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = Command::new(format!("{BIN}/pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("postgres on :{} did not start within 60 s", self.port)
    }

    /// Fast shutdown (SIGINT): connections are closed, as in a real restart.
    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.server.take() {
            signal(child.id(), rustix::process::Signal::INT);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn query(&self, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(format!("{BIN}/psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-tAc", sql])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A throwaway Redis owned by this run, without persistence.
struct Redis {
    port: u16,
    dir: PathBuf,
    server: Option<Child>,
}

impl Redis {
    fn new(port: u16, work: &Path) -> Self {
        Redis {
            port,
            dir: work.to_owned(),
            server: None,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if redis_ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server on :{} did not answer within 30 s", self.port)
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.server.take() {
            signal(child.id(), rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn redis_ping(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut buf = [0u8; 7];
        stream.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Runs a command as Debian's `postgres` user (PostgreSQL refuses root), with no wrapper
/// process left in between, so the child's pid is the server's.
fn as_postgres(command: &mut Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            "--reuid",
            "postgres",
            "--regid",
            "postgres",
            "--init-groups",
            "--",
        ])
        .arg(command.get_program())
        .args(command.get_args())
        .env("HOME", "/var/lib/postgresql")
        .current_dir("/");
    wrapped
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    let ok = Command::new("chown")
        .arg("postgres:postgres")
        .arg(dir)
        .status()
        .context("running chown")?
        .success();
    if !ok {
        bail!("chown postgres {} failed", dir.display());
    }
    Ok(())
}
