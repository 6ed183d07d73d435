//! The service binary against real PostgreSQL and Redis (`cargo xtask infra up`): it starts
//! before its dependencies answer and becomes ready without a restart; over TLS it verifies
//! certificates and refuses, at start-up and with the reason, one that does not verify.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_var(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: run `cargo xtask infra up` and `eval \"$(cargo xtask infra env)\"`"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The service binary, its stderr collected line by line.
struct Service {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn start(envs: &[(&str, &str)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut command = Command::new(env!("CARGO_BIN_EXE_address-service"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LISTEN_ADDR", addr.to_string())
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start address-service");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("log").push(line);
            }
        });
        Service { child, addr, log }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// `(status, body)` of a GET, or `None` while nothing listens.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        Some((status, body))
    }

    /// Polls `/readyz` until `done` holds for its answer, at most `limit`; the last answer.
    fn readyz_until(&self, limit: Duration, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
        let deadline = Instant::now() + limit;
        let mut last = (0, String::new());
        while Instant::now() < deadline {
            if let Some(answer) = self.get("/readyz", &[]) {
                if done(answer.0, &answer.1) {
                    return answer;
                }
                last = answer;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last
    }

    /// Waits for the process to exit on its own: its exit code.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the log reader drain the pipe.
                std::thread::sleep(Duration::from_millis(200));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy on 127.0.0.1 to `upstream`, started late: the dependency "comes up" when it
/// starts listening.
fn start_proxy(port: u16, upstream: &str) -> std::thread::JoinHandle<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind proxy port");
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    })
}

fn count(log: &[String], needle: &str) -> usize {
    log.iter().filter(|l| l.contains(needle)).count()
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn starts_before_postgres_and_redis_answer_and_becomes_ready_without_a_restart() {
    let database = env_var("WACTL_TEST_DATABASE_URL");
    let redis = env_var("WACTL_TEST_REDIS_URL");
    let pg_upstream = database
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("host:port in WACTL_TEST_DATABASE_URL")
        .to_owned();
    let redis_upstream = redis.trim_start_matches("redis://").to_owned();
    let (pg_port, redis_port) = (free_port(), free_port());
    let late_database = database.replace(&pg_upstream, &format!("127.0.0.1:{pg_port}"));
    let late_redis = format!("redis://127.0.0.1:{redis_port}");

    let mut service =
        Service::start(&[("DATABASE_URL", &late_database), ("REDIS_URL", &late_redis)]);
    let (status, body) = service.readyz_until(Duration::from_secs(10), |s, _| s != 0);
    assert_eq!(status, 503, "not ready before its dependencies: {body}");
    assert!(
        body.contains("database_unavailable")
            && body.contains(r#""waiting_for":["postgres","redis"]"#),
        "{body}"
    );
    assert_eq!(
        service.get("/healthz", &[]).map(|r| r.0),
        Some(200),
        "alive meanwhile"
    );
    // Several attempts fail (back-off 200 ms, 400 ms, 800 ms, 1.6 s) before PostgreSQL comes.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        service.child.try_wait().expect("wait").is_none(),
        "still running"
    );

    let _pg = start_proxy(pg_port, &pg_upstream);
    let (status, body) =
        service.readyz_until(Duration::from_secs(15), |_, b| !b.contains("postgres"));
    assert_eq!(status, 503, "Redis is still away: {body}");
    assert!(
        body.contains("redis_unavailable") && body.contains(r#""waiting_for":["redis"]"#),
        "{body}"
    );

    let _redis = start_proxy(redis_port, &redis_upstream);
    let (status, body) = service.readyz_until(Duration::from_secs(15), |s, _| s == 200);
    assert_eq!(status, 200, "ready once both answer: {body}");
    assert!(
        service.child.try_wait().expect("wait").is_none(),
        "the same process"
    );

    let log = service.log();
    let text = log.join("\n");
    assert_eq!(
        count(&log, "postgres not reachable yet"),
        1,
        "one warning per outage, not per attempt:\n{text}"
    );
    assert_eq!(count(&log, "redis not reachable yet"), 1, "{text}");
    assert_eq!(
        count(&log, "postgres answers; ready for it now"),
        1,
        "{text}"
    );
    assert_eq!(count(&log, "redis answers; ready for it now"), 1, "{text}");
    let attempts = log
        .iter()
        .find(|l| l.contains("postgres answers"))
        .and_then(|l| l.split("\"failed_attempts\":").nth(1))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok())
        .expect("failed_attempts in the recovery line");
    assert!(attempts >= 3, "retried several times ({attempts}):\n{text}");
    assert!(!text.contains("wactl:wactl"), "no password in the log");
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn a_wrong_password_stops_start_up_naming_the_setting() {
    let database = env_var("WACTL_TEST_DATABASE_URL").replace("wactl:wactl@", "wactl:not-it@");
    let mut service = Service::start(&[("DATABASE_URL", &database)]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("DATABASE_URL: PostgreSQL refused: password authentication failed"),
        "{text}"
    );
    assert!(!text.contains("not-it"), "no password in the log: {text}");
}

/// A CA of its own, which signed nothing the infra serves.
fn unrelated_ca(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let cert = dir.join("other-ca.crt");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=unrelated-ca",
            "-keyout",
        ])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    cert
}

fn scratch(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("svc-{tag}-{}", std::process::id()))
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn tls_verify_full_is_ready_and_audit_and_rate_limit_work_over_tls() {
    let database = env_var("WACTL_TEST_DATABASE_TLS_URL");
    assert!(database.contains("sslmode=verify-full"), "{database}");
    let redis = env_var("WACTL_TEST_REDIS_TLS_URL");
    assert!(redis.starts_with("rediss://"), "{redis}");
    let ca = env_var("WACTL_INFRA_CA");
    let service = Service::start(&[
        ("DATABASE_URL", &database),
        ("REDIS_URL", &redis),
        // Redis' roots: the system store, which SSL_CERT_FILE replaces.
        ("SSL_CERT_FILE", &ca),
        ("RATE_LIMIT_PER_MINUTE", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ]);
    let (status, body) = service.readyz_until(Duration::from_secs(20), |s, _| s == 200);
    assert_eq!(
        status,
        200,
        "ready over TLS: {body}\n{}",
        service.log().join("\n")
    );

    // A client of this run only (TEST-NET-3), so earlier runs' counts do not interfere.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let client = format!("203.0.113.{}", nanos % 250 + 1);
    let mut statuses = Vec::new();
    // The window is a wall-clock minute: straddling a boundary resets it, so try twice.
    for _ in 0..2 {
        statuses = (0..4)
            .map(|_| {
                service
                    .get("/v1/countries", &[("X-Forwarded-For", &client)])
                    .map_or(0, |r| r.0)
            })
            .collect();
        if statuses == [200, 200, 429, 429] {
            break;
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 429, 429],
        "rate limit through rediss://"
    );

    // The audit log reaches PostgreSQL over TLS (its writer flushes every second).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = env_var("WACTL_TEST_DATABASE_URL");
    let audited = rt.block_on(async {
        let (db, connection) = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rows = db
                .query(
                    "SELECT status FROM audit_log WHERE client = $1 ORDER BY id",
                    &[&client],
                )
                .await
                .expect("query");
            let statuses: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
            if statuses.len() >= 4 || Instant::now() > deadline {
                return statuses;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(
        audited.ends_with(&[200, 200, 429, 429]),
        "audited over TLS: {audited:?}"
    );
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn an_unknown_ca_is_refused_at_start_up_with_the_reason() {
    let dir = scratch("unknown-ca");
    let other = unrelated_ca(&dir);
    let ca = env_var("WACTL_INFRA_CA");
    let database =
        env_var("WACTL_TEST_DATABASE_TLS_URL").replace(&ca, &other.display().to_string());
    let mut service = Service::start(&[("DATABASE_URL", &database)]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("DATABASE_URL: the server's TLS certificate was refused: unknown CA"),
        "{text}"
    );

    let mut service = Service::start(&[
        ("REDIS_URL", &env_var("WACTL_TEST_REDIS_TLS_URL")),
        ("SSL_CERT_FILE", &other.display().to_string()),
    ]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("REDIS_URL: the server's TLS certificate was refused: unknown CA"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn a_wrong_host_name_is_refused_at_start_up_with_the_reason() {
    // PostgreSQL: connect to 127.0.0.1 but expect a name the certificate does not hold.
    let database = env_var("WACTL_TEST_DATABASE_TLS_URL")
        .replace("@127.0.0.1:", "@db.wrong-name.invalid:")
        .replace("sslmode=", "hostaddr=127.0.0.1&sslmode=");
    let mut service = Service::start(&[("DATABASE_URL", &database)]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("DATABASE_URL: the server's TLS certificate was refused: wrong host name"),
        "{text}"
    );

    // verify-ca accepts the same connection: the chain is good, only the name differs.
    let service = Service::start(&[(
        "DATABASE_URL",
        &database.replace("sslmode=verify-full", "sslmode=verify-ca"),
    )]);
    let (status, body) = service.readyz_until(Duration::from_secs(20), |s, _| s == 200);
    assert_eq!(
        status,
        200,
        "verify-ca: {body}\n{}",
        service.log().join("\n")
    );

    // Redis: reach it as ::1 (a proxy on the IPv6 loopback), a name the certificate lacks.
    let redis = env_var("WACTL_TEST_REDIS_TLS_URL");
    let upstream = redis.trim_start_matches("rediss://").to_owned();
    let listener = std::net::TcpListener::bind("[::1]:0").expect("bind [::1]");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut s2);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut c2);
            });
        }
    });
    let mut service = Service::start(&[
        ("REDIS_URL", &format!("rediss://[::1]:{port}")),
        ("SSL_CERT_FILE", &env_var("WACTL_INFRA_CA")),
    ]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("REDIS_URL: the server's TLS certificate was refused: wrong host name"),
        "{text}"
    );
}

/// Runs `openssl` with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh CA (`ca.crt`) and a server certificate for 127.0.0.1 signed by it that was valid
/// for one day in January 2026 and has expired since (`server.crt`, `server.key`).
/// `openssl ca` is used because `x509 -req` cannot set a start date in the past.
fn expired_server_certificate(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("issued")).expect("dir");
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("serial"), "01\n").expect("serial");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = expired\n[expired]\ndatabase = index.txt\nnew_certs_dir = issued\n\
         serial = serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n\
         [any]\ncommonName = supplied\n",
    )
    .expect("ca.cnf");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "2", "-subj", "/CN=expired-test-ca"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &["-subj", "/CN=127.0.0.1"],
            &["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-batch",
            "-notext",
            "-startdate",
            "20260101000000Z",
            "-enddate",
            "20260102000000Z",
            "-keyfile",
            "ca.key",
            "-cert",
            "ca.crt",
            "-in",
            "server.csr",
            "-out",
            "server.crt",
        ],
    );
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn an_expired_certificate_is_refused_at_start_up_with_the_reason() {
    // A real Redis (Debian's redis-server, as infra runs it) serving TLS with a certificate
    // whose chain is good but whose end date has passed.
    let dir = scratch("expired");
    let _ = std::fs::remove_dir_all(&dir);
    expired_server_certificate(&dir);
    let port = free_port();
    let mut redis = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(dir.join("server.crt"))
        .arg("--tls-key-file")
        .arg(dir.join("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.crt"))
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut service = Service::start(&[
        ("REDIS_URL", &format!("rediss://127.0.0.1:{port}")),
        ("SSL_CERT_FILE", &dir.join("ca.crt").display().to_string()),
    ]);
    let code = service.exit_code(Duration::from_secs(15));
    let text = service.log().join("\n");
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("REDIS_URL: the server's TLS certificate was refused: expired"),
        "{text}"
    );
}
