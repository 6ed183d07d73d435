//! `address-service healthcheck`: one raw HTTP/1.0 GET, for images without a shell or curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("{0:?} is not an http://HOST:PORT/PATH URL")]
    Url(String),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{url} answered {status_line:?}")]
    Status { url: String, status_line: String },
}

/// GETs `url` and succeeds on status 200.
pub fn check(url: &str, timeout: Duration) -> Result<(), HealthcheckError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HealthcheckError::Url(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(HealthcheckError::Url(url.to_owned()));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let io = |source| HealthcheckError::Io {
        addr: with_port.clone(),
        source,
    };
    let connect = |source| HealthcheckError::Connect {
        addr: with_port.clone(),
        source,
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(connect)?
        .next()
        .ok_or_else(|| HealthcheckError::Url(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: address-service-healthcheck\r\n\r\n").map_err(io)?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let status = status_line.split_whitespace().nth(1);
    if status == Some("200") {
        Ok(())
    } else {
        Err(HealthcheckError::Status {
            url: url.to_owned(),
            status_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_http_urls() {
        assert!(matches!(
            check("https://x/healthz", Duration::from_secs(1)),
            Err(HealthcheckError::Url(_))
        ));
        assert!(matches!(
            check("http:///healthz", Duration::from_secs(1)),
            Err(HealthcheckError::Url(_))
        ));
    }

    #[test]
    fn talks_to_a_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let mut s = stream.expect("accept");
                let mut request = Vec::new();
                let mut buf = [0u8; 512];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).expect("read");
                    request.extend_from_slice(&buf[..n]);
                }
                let reply: &[u8] = if i == 0 {
                    b"HTTP/1.0 200 OK\r\n\r\nok"
                } else {
                    b"HTTP/1.0 503 Service Unavailable\r\n\r\n"
                };
                s.write_all(reply).expect("write");
            }
        });
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert!(check(&url, Duration::from_secs(2)).is_ok());
        let err = check(&url, Duration::from_secs(2)).expect_err("503 fails");
        assert!(matches!(err, HealthcheckError::Status { .. }), "{err}");
        server.join().expect("server thread");
    }
}
