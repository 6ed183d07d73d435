//! Optional PostgreSQL (`DATABASE_URL`): schema migrations, API keys and the audit log.
//!
//! The service owns its schema: [`Db::connect`] applies the embedded migrations under an
//! advisory lock, so replicas starting together migrate once. API keys are stored as the
//! SHA-256 of a 192-bit random secret; the plain key is shown once, at creation.

use crate::database_url::{DatabaseUrl, Transport};
use crate::dependency::ConnectError;
use crate::tls::PostgresTls;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// Schema migrations, applied in order; never edit one that has shipped, add a new one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE api_keys (
        id          BIGSERIAL PRIMARY KEY,
        prefix      TEXT NOT NULL UNIQUE,
        hash        BYTEA NOT NULL,
        name        TEXT NOT NULL,
        scopes      TEXT[] NOT NULL,
        created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        revoked_at  TIMESTAMPTZ
    );
    CREATE TABLE audit_log (
        id          BIGSERIAL PRIMARY KEY,
        at          TIMESTAMPTZ NOT NULL,
        key_prefix  TEXT,
        client      TEXT NOT NULL,
        method      TEXT NOT NULL,
        route       TEXT NOT NULL,
        status      INTEGER NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX audit_log_at ON audit_log (at);",
)];

/// Arbitrary, fixed: serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x5741_4444_5231;

/// What a key may do.
pub const SCOPES: &[&str] = &["countries", "addresses"];

/// How long a verified key is trusted before it is looked up again (so revocation takes
/// effect within this time on every replica).
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Verified (or refused) keys by the SHA-256 of the presented key, with when they were checked.
type KeyCache = HashMap<[u8; 32], (Option<ApiKey>, Instant)>;

/// A PostgreSQL connection that reconnects when it breaks.
pub struct Db {
    url: DatabaseUrl,
    /// Present when `sslmode` asks for TLS.
    tls: Option<PostgresTls>,
    /// `None` until [`Db::establish`] first connects and migrates.
    client: RwLock<Option<Arc<Client>>>,
    keys: Mutex<KeyCache>,
}

/// A stored API key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

impl ApiKey {
    pub fn allows(&self, scope: &str) -> bool {
        !self.revoked && self.scopes.iter().any(|s| s == scope)
    }
}

/// One audited request.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub at: std::time::SystemTime,
    pub key_prefix: Option<String>,
    pub client: String,
    pub method: String,
    pub route: String,
    pub status: i32,
    pub duration_ms: f64,
}

const SETTING: &str = "DATABASE_URL";

fn configuration(reason: impl Into<String>) -> ConnectError {
    ConnectError::Configuration {
        setting: SETTING,
        reason: reason.into(),
    }
}

async fn open(url: &DatabaseUrl, tls: Option<&PostgresTls>) -> Result<Client, ConnectError> {
    let connecting = async {
        match tls {
            Some(tls) => {
                let (client, connection) = url.config.connect(tls.clone()).await?;
                tokio::spawn(watch_connection(connection));
                Ok(client)
            }
            None => {
                let (client, connection) = url.config.connect(NoTls).await?;
                tokio::spawn(watch_connection(connection));
                Ok(client)
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), connecting).await {
        Err(_) => Err(ConnectError::Unreachable(
            "connecting to PostgreSQL timed out after 5 s".into(),
        )),
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

async fn watch_connection<F, E>(connection: F)
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection closed");
    }
}

/// A failed connection: retried when PostgreSQL may simply not be there yet, a configuration
/// error when a setting is wrong (credentials, database name, certificate, TLS refused).
fn classify(e: &tokio_postgres::Error) -> ConnectError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            || *code == SqlState::INVALID_CATALOG_NAME
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
        {
            return configuration(format!("PostgreSQL refused: {}", db.message()));
        }
        return ConnectError::Unreachable(format!("PostgreSQL: {}", db.message()));
    }
    if let Some(problem) = crate::tls::certificate_problem(e) {
        return configuration(format!(
            "the server's TLS certificate was refused: {}",
            crate::tls::certificate_reason(problem)
        ));
    }
    let text = e.to_string();
    // tokio-postgres says these only in words: a server without TLS under sslmode=require or
    // stricter (never retried in plain text), and settings it found incomplete.
    if text.contains("server does not support TLS") {
        return configuration(
            "the server does not offer TLS, and the sslmode asks for it (the service never falls back to plain text)",
        );
    }
    if text.starts_with("invalid configuration") {
        return configuration(text);
    }
    let mut why = text;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !why.contains(&more) {
            why.push_str(": ");
            why.push_str(&more);
        }
        source = s.source();
    }
    ConnectError::Unreachable(why)
}

impl Db {
    /// Reads `DATABASE_URL` and the TLS settings it names, without connecting.
    pub fn configure(url: &str) -> Result<Self, ConnectError> {
        let url = DatabaseUrl::parse(url).map_err(|e| ConnectError::Configuration {
            setting: SETTING,
            reason: e
                .to_string()
                .trim_start_matches("DATABASE_URL: ")
                .to_owned(),
        })?;
        let tls = match &url.transport {
            Transport::Plain => None,
            Transport::Tls {
                verification,
                root_cert,
            } => {
                let roots = crate::tls::roots(root_cert.as_deref())
                    .map_err(|e| configuration(e.to_string()))?;
                let config = crate::tls::client_config(*verification, roots)
                    .map_err(|e| configuration(e.to_string()))?;
                if *verification == crate::tls::Verification::EncryptOnly {
                    tracing::warn!(
                        "DATABASE_URL has sslmode=require: the connection is encrypted but the \
                         server's certificate is not checked; use sslmode=verify-full"
                    );
                }
                Some(PostgresTls::new(config))
            }
        };
        Ok(Db {
            url,
            tls,
            client: RwLock::new(None),
            keys: Mutex::default(),
        })
    }

    /// Connects and applies pending migrations; afterwards the database serves requests.
    pub async fn establish(&self) -> Result<(), ConnectError> {
        let mut client = open(&self.url, self.tls.as_ref()).await?;
        migrate(&mut client).await.map_err(|e| {
            let config_error = e
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(tokio_postgres::Error::code)
                .is_some_and(|c| *c == SqlState::INSUFFICIENT_PRIVILEGE);
            if config_error {
                configuration(format!("applying migrations: {e:#}"))
            } else {
                ConnectError::Unreachable(format!("applying migrations: {e:#}"))
            }
        })?;
        *self.client.write().await = Some(Arc::new(client));
        Ok(())
    }

    /// Connects and applies pending migrations now, or fails.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let db = Db::configure(url)?;
        db.establish().await?;
        Ok(db)
    }

    /// The current client, reconnecting first if the last one broke.
    async fn client(&self) -> anyhow::Result<Arc<Client>> {
        {
            let c = self.client.read().await;
            match c.as_ref() {
                None => bail!("PostgreSQL has not answered since start-up"),
                Some(c) if !c.is_closed() => return Ok(c.clone()),
                Some(_) => {}
            }
        }
        let mut c = self.client.write().await;
        match c.as_ref() {
            Some(current) if !current.is_closed() => Ok(current.clone()),
            _ => {
                let fresh = Arc::new(open(&self.url, self.tls.as_ref()).await?);
                *c = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// True when the database answers `SELECT 1` within a second.
    pub async fn ping(&self) -> bool {
        let check = async {
            self.client()
                .await?
                .simple_query("SELECT 1")
                .await
                .map_err(anyhow::Error::from)
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), check).await,
            Ok(Ok(_))
        )
    }

    /// Creates a key; returns the plain key (shown once) and its record.
    pub async fn create_key(
        &self,
        name: &str,
        scopes: &[String],
    ) -> anyhow::Result<(String, ApiKey)> {
        for s in scopes {
            if !SCOPES.contains(&s.as_str()) {
                bail!("unknown scope {s:?}; scopes are {}", SCOPES.join(", "));
            }
        }
        let random = random_bytes::<28>()?;
        let prefix = hex::encode(&random[..4]);
        let key = format!("wa_{prefix}_{}", hex::encode(&random[4..]));
        let hash = Sha256::digest(key.as_bytes()).to_vec();
        self.client()
            .await?
            .execute(
                "INSERT INTO api_keys (prefix, hash, name, scopes) VALUES ($1, $2, $3, $4)",
                &[&prefix, &hash, &name, &scopes],
            )
            .await
            .context("storing the key")?;
        Ok((
            key,
            ApiKey {
                prefix,
                name: name.to_owned(),
                scopes: scopes.to_vec(),
                revoked: false,
            },
        ))
    }

    /// Revokes the key with this prefix (the part after `wa_`); false when there is none.
    pub async fn revoke_key(&self, prefix: &str) -> anyhow::Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE prefix = $1 AND revoked_at IS NULL",
                &[&prefix],
            )
            .await
            .context("revoking the key")?;
        lock(&self.keys).clear();
        Ok(n > 0)
    }

    pub async fn list_keys(&self) -> anyhow::Result<Vec<ApiKey>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT prefix, name, scopes, revoked_at IS NOT NULL FROM api_keys ORDER BY id",
                &[],
            )
            .await
            .context("listing keys")?;
        Ok(rows
            .iter()
            .map(|r| ApiKey {
                prefix: r.get(0),
                name: r.get(1),
                scopes: r.get(2),
                revoked: r.get(3),
            })
            .collect())
    }

    /// The key a client presented, if it exists and is not revoked.
    pub async fn verify_key(&self, presented: &str) -> anyhow::Result<Option<ApiKey>> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some((key, at)) = lock(&self.keys).get(&digest)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(key.clone());
        }
        let Some(prefix) = presented
            .strip_prefix("wa_")
            .and_then(|r| r.split('_').next())
        else {
            return Ok(None);
        };
        let row = self
            .client()
            .await?
            .query_opt("SELECT prefix, name, scopes, revoked_at IS NOT NULL, hash FROM api_keys WHERE prefix = $1", &[&prefix])
            .await
            .context("looking up the key")?;
        let key = row.and_then(|r| {
            let stored: Vec<u8> = r.get(4);
            let key = ApiKey {
                prefix: r.get(0),
                name: r.get(1),
                scopes: r.get(2),
                revoked: r.get(3),
            };
            (constant_time_eq(&stored, &digest) && !key.revoked).then_some(key)
        });
        let mut cache = lock(&self.keys);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(digest, (key.clone(), Instant::now()));
        Ok(key)
    }

    /// Writes a batch of audit records in one statement.
    pub async fn write_audit(&self, batch: &[AuditRecord]) -> anyhow::Result<()> {
        let at: Vec<std::time::SystemTime> = batch.iter().map(|r| r.at).collect();
        let key: Vec<Option<&str>> = batch.iter().map(|r| r.key_prefix.as_deref()).collect();
        let client: Vec<&str> = batch.iter().map(|r| r.client.as_str()).collect();
        let method: Vec<&str> = batch.iter().map(|r| r.method.as_str()).collect();
        let route: Vec<&str> = batch.iter().map(|r| r.route.as_str()).collect();
        let status: Vec<i32> = batch.iter().map(|r| r.status).collect();
        let duration: Vec<f64> = batch.iter().map(|r| r.duration_ms).collect();
        self.client()
            .await?
            .execute(
                "INSERT INTO audit_log (at, key_prefix, client, method, route, status, duration_ms)
                 SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[])",
                &[&at, &key, &client, &method, &route, &status, &duration],
            )
            .await
            .context("writing audit records")?;
        Ok(())
    }
}

async fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let tx = client
        .transaction()
        .await
        .context("starting the migration transaction")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .context("creating schema_migrations")?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied database migration");
    }
    tx.commit().await.context("committing migrations")?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Compares without an early exit, so timing does not reveal how much of a hash matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("getting random bytes from the operating system: {e}"))?;
    Ok(buf)
}

/// Sends audit records to PostgreSQL in batches, off the request path.
///
/// Requests `try_send` into a bounded channel and never wait. A writer task moves records from
/// the channel into a bounded retry buffer and writes them in batches of up to
/// [`AUDIT_BATCH`] every second (or as soon as a batch is full). A failed write leaves the
/// batch in the buffer and is retried with a backoff from 200 ms to 5 s, for as long as the
/// database stays away: an outage delays records, it does not lose them.
///
/// Records are lost only when a bound is hit, and each loss is counted
/// (`address_service_audit_records_total{outcome="dropped"}`) and logged: when the channel is
/// full (the writer cannot keep up), or when the retry buffer is full during a long outage
/// (the oldest records go first, so the newest are kept).
#[derive(Clone)]
pub struct AuditLog {
    tx: tokio::sync::mpsc::Sender<AuditRecord>,
    counters: Arc<AuditCounters>,
}

/// What became of audit records so far.
#[derive(Debug, Default)]
pub struct AuditCounters {
    written: std::sync::atomic::AtomicU64,
    dropped: std::sync::atomic::AtomicU64,
    /// Records waiting in the retry buffer.
    pending: std::sync::atomic::AtomicU64,
}

impl AuditCounters {
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub fn pending(&self) -> u64 {
        self.pending.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Records per INSERT.
pub const AUDIT_BATCH: usize = 500;
/// Records queued between requests and the writer.
pub const AUDIT_CHANNEL: usize = 10_000;
/// Records kept for retry while the database is away: about 200 bytes each, so at most ~20 MB;
/// at 500 requests/s, 200 s of outage.
pub const AUDIT_RETRY_BUFFER: usize = 100_000;

const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
const AUDIT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const AUDIT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Attempts for the last batches at shutdown, before they are given up.
const AUDIT_FINAL_ATTEMPTS: u32 = 3;

/// Where audit batches go: PostgreSQL in the service, a fake in the unit tests.
pub trait AuditSink: Send + Sync + 'static {
    fn write(
        &self,
        batch: &[AuditRecord],
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

impl AuditSink for Db {
    async fn write(&self, batch: &[AuditRecord]) -> anyhow::Result<()> {
        self.write_audit(batch).await
    }
}

impl AuditLog {
    /// Starts the writer with the default bounds; the returned handle finishes once every
    /// sender is dropped and the buffer is written (or given up after a few attempts).
    pub fn start(db: Arc<Db>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start_with(db, capacity, AUDIT_RETRY_BUFFER)
    }

    /// Starts the writer with an explicit channel capacity and retry-buffer bound.
    pub fn start_with<S: AuditSink>(
        sink: Arc<S>,
        capacity: usize,
        buffer: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = tokio::sync::mpsc::channel::<AuditRecord>(capacity.max(1));
        let counters = Arc::new(AuditCounters::default());
        let writer = tokio::spawn(run_writer(sink, rx, counters.clone(), buffer.max(1)));
        (AuditLog { tx, counters }, writer)
    }

    /// Queues a record without waiting.
    pub fn record(&self, record: AuditRecord) {
        if self.tx.try_send(record).is_err() {
            let before = self
                .counters
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if before.is_power_of_two() || before == 0 {
                tracing::error!(
                    dropped_total = before + 1,
                    "audit channel full; audit record dropped"
                );
            }
        }
    }

    pub fn counters(&self) -> &AuditCounters {
        &self.counters
    }

    pub fn dropped(&self) -> u64 {
        self.counters.dropped()
    }
}

async fn run_writer<S: AuditSink>(
    sink: Arc<S>,
    mut rx: tokio::sync::mpsc::Receiver<AuditRecord>,
    counters: Arc<AuditCounters>,
    bound: usize,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut pending: std::collections::VecDeque<AuditRecord> = std::collections::VecDeque::new();
    let mut backoff = Duration::ZERO;
    let mut next_attempt = tokio::time::Instant::now();
    let mut failing_since: Option<Instant> = None;
    let mut overflow_logged: Option<Instant> = None;
    let mut closed = false;
    while !closed {
        // Collect until a batch is full, the flush interval passes, or the senders are gone.
        let wake = (tokio::time::Instant::now() + AUDIT_FLUSH_INTERVAL).max(next_attempt);
        loop {
            let ready = pending.len() >= AUDIT_BATCH && tokio::time::Instant::now() >= next_attempt;
            if ready {
                break;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Some(record) => {
                        if pending.len() >= bound {
                            pending.pop_front();
                            let dropped = counters.dropped.fetch_add(1, Relaxed) + 1;
                            if overflow_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                                tracing::error!(
                                    buffer = bound,
                                    dropped_total = dropped,
                                    "audit retry buffer full; dropping the oldest records"
                                );
                                overflow_logged = Some(Instant::now());
                            }
                        }
                        pending.push_back(record);
                        counters.pending.store(pending.len() as u64, Relaxed);
                    }
                    None => {
                        closed = true;
                        break;
                    }
                },
                () = tokio::time::sleep_until(wake) => break,
            }
        }
        if closed {
            break;
        }
        if pending.is_empty() || tokio::time::Instant::now() < next_attempt {
            continue;
        }
        while !pending.is_empty() {
            let n = pending.len().min(AUDIT_BATCH);
            let batch = &pending.make_contiguous()[..n];
            match write_once(&*sink, batch).await {
                Ok(()) => {
                    pending.drain(..n);
                    counters.written.fetch_add(n as u64, Relaxed);
                    counters.pending.store(pending.len() as u64, Relaxed);
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            outage_ms = since.elapsed().as_millis() as u64,
                            "audit log writes again"
                        );
                    }
                    backoff = Duration::ZERO;
                    if pending.is_empty() && pending.capacity() > 4 * AUDIT_BATCH {
                        // Give back what an outage's backlog took.
                        pending.shrink_to(AUDIT_BATCH);
                    }
                    // Let new records in between batches while catching up.
                    if pending.len() < AUDIT_BATCH {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(200), AUDIT_MAX_BACKOFF);
                    next_attempt = tokio::time::Instant::now() + backoff;
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                    }
                    tracing::warn!(
                        error = format!("{e:#}"),
                        pending = pending.len(),
                        retry_in_ms = backoff.as_millis() as u64,
                        "audit write failed; records kept for retry"
                    );
                    break;
                }
            }
        }
    }
    // Shutdown: a few more attempts for what is left, then give it up (counted).
    let mut attempts = 0;
    while !pending.is_empty() && attempts < AUDIT_FINAL_ATTEMPTS {
        let n = pending.len().min(AUDIT_BATCH);
        let batch = &pending.make_contiguous()[..n];
        match write_once(&*sink, batch).await {
            Ok(()) => {
                pending.drain(..n);
                counters.written.fetch_add(n as u64, Relaxed);
            }
            Err(e) => {
                attempts += 1;
                tracing::warn!(
                    error = format!("{e:#}"),
                    attempt = attempts,
                    "audit write failed at shutdown"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if !pending.is_empty() {
        counters.dropped.fetch_add(pending.len() as u64, Relaxed);
        tracing::error!(
            records = pending.len(),
            "audit records not written at shutdown"
        );
    }
    counters.pending.store(0, Relaxed);
}

async fn write_once<S: AuditSink>(sink: &S, batch: &[AuditRecord]) -> anyhow::Result<()> {
    tokio::time::timeout(AUDIT_WRITE_TIMEOUT, sink.write(batch))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {} s", AUDIT_WRITE_TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails its first `failures` writes, then stores every batch.
    #[derive(Default)]
    struct FlakySink {
        failures: Mutex<u32>,
        rows: Mutex<Vec<String>>,
    }

    impl AuditSink for FlakySink {
        async fn write(&self, batch: &[AuditRecord]) -> anyhow::Result<()> {
            {
                let mut f = lock(&self.failures);
                if *f > 0 {
                    *f -= 1;
                    bail!("database away");
                }
            }
            lock(&self.rows).extend(batch.iter().map(|r| r.client.clone()));
            Ok(())
        }
    }

    fn record(i: usize) -> AuditRecord {
        AuditRecord {
            at: std::time::SystemTime::now(),
            key_prefix: None,
            client: i.to_string(),
            method: "POST".into(),
            route: "/v1/addresses/validate".into(),
            status: 200,
            duration_ms: 0.1,
        }
    }

    #[tokio::test]
    async fn audit_outage_delays_records_but_loses_none() {
        let sink = Arc::new(FlakySink {
            failures: Mutex::new(3),
            ..FlakySink::default()
        });
        let (log, writer) = AuditLog::start_with(sink.clone(), 100, 10_000);
        for i in 0..1_200 {
            log.record(record(i));
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while log.counters().written() < 1_200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dropped = log.dropped();
        drop(log);
        writer.await.unwrap();
        assert_eq!(dropped, 0);
        let rows = lock(&sink.rows).clone();
        let expected: Vec<String> = (0..1_200).map(|i| i.to_string()).collect();
        assert_eq!(rows, expected, "every record written once, in order");
    }

    #[tokio::test]
    async fn audit_buffer_overflow_drops_the_oldest_and_counts_them() {
        let sink = Arc::new(FlakySink {
            failures: Mutex::new(u32::MAX),
            ..FlakySink::default()
        });
        let (log, writer) = AuditLog::start_with(sink.clone(), 100, 10);
        for i in 0..25 {
            log.record(record(i));
        }
        let counters = log.counters.clone();
        drop(log);
        writer.await.unwrap();
        // 15 pushed out of the full buffer, 10 given up at shutdown.
        assert_eq!(counters.dropped(), 25);
        assert_eq!(counters.written(), 0);
        assert!(lock(&sink.rows).is_empty());
    }

    #[tokio::test]
    async fn audit_overflow_keeps_the_newest() {
        let sink = Arc::new(FlakySink::default());
        let (log, writer) = AuditLog::start_with(sink.clone(), 100, 10);
        for i in 0..25 {
            log.record(record(i));
        }
        let counters = log.counters.clone();
        drop(log);
        writer.await.unwrap();
        assert_eq!(counters.dropped(), 15);
        assert_eq!(counters.written(), 10);
        let expected: Vec<String> = (15..25).map(|i| i.to_string()).collect();
        assert_eq!(*lock(&sink.rows), expected);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn keys_scopes() {
        let key = ApiKey {
            prefix: "p".into(),
            name: "n".into(),
            scopes: vec!["addresses".into()],
            revoked: false,
        };
        assert!(key.allows("addresses") && !key.allows("countries"));
        assert!(
            !ApiKey {
                revoked: true,
                ..key
            }
            .allows("addresses")
        );
    }
}
