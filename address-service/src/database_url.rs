//! `DATABASE_URL` as libpq reads it, including the TLS settings tokio-postgres does not
//! know (`sslmode=verify-ca|verify-full`, `sslrootcert=`).
//!
//! Both forms are accepted: `postgres://user:pass@host:port/db?sslmode=verify-full` and
//! `host=… port=… sslmode=verify-full`. Errors never repeat the URL (it holds a password).

use crate::tls::Verification;
use std::ops::Range;
use std::path::PathBuf;

/// Why `DATABASE_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("DATABASE_URL: {0}")]
    Syntax(String),
    #[error(
        "DATABASE_URL: sslmode={0} may fall back to plain text, which the service never does; \
         use sslmode=disable (plain text) or require, verify-ca, verify-full"
    )]
    FallbackMode(String),
    #[error("DATABASE_URL: unknown sslmode={0:?}; use disable, require, verify-ca or verify-full")]
    UnknownMode(String),
    #[error("DATABASE_URL: sslrootcert= needs sslmode=require, verify-ca or verify-full")]
    RootCertWithoutTls,
    #[error("DATABASE_URL: {0}")]
    Invalid(#[source] tokio_postgres::Error),
}

/// How the connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `sslmode=disable` or no `sslmode`: plain text.
    Plain,
    /// TLS, never falling back to plain text.
    Tls {
        verification: Verification,
        /// `sslrootcert=`: trust only this CA file (otherwise the system store).
        root_cert: Option<PathBuf>,
    },
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    pub config: tokio_postgres::Config,
    pub transport: Transport,
}

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<Self, DatabaseUrlError> {
        let text = text.trim();
        let (rest, params) = if text.starts_with("postgres://") || text.starts_with("postgresql://")
        {
            url_params(text)
        } else {
            key_value_params(text)?
        };
        let mut sslmode = None;
        let mut root_cert = None;
        let mut keep = String::with_capacity(text.len());
        let mut at = 0;
        for param in &params {
            match param.key.as_str() {
                "sslmode" => sslmode = Some(param.value.clone()),
                "sslrootcert" => root_cert = Some(param.value.clone()),
                _ => continue,
            }
            keep.push_str(&text[at..param.span.start]);
            at = param.span.end;
        }
        keep.push_str(&text[at..]);
        let stripped = rest(keep);
        let root_cert = root_cert
            // libpq's `sslrootcert=system` is the system store, as no value is here.
            .filter(|v| v != "system")
            .map(PathBuf::from);
        let verification = match sslmode.as_deref() {
            None | Some("disable") => None,
            Some("require") if root_cert.is_some() => Some(Verification::Chain),
            Some("require") => Some(Verification::EncryptOnly),
            Some("verify-ca") => Some(Verification::Chain),
            Some("verify-full") => Some(Verification::ChainAndHostName),
            Some(mode @ ("allow" | "prefer")) => {
                return Err(DatabaseUrlError::FallbackMode(mode.to_owned()));
            }
            Some(other) => return Err(DatabaseUrlError::UnknownMode(other.to_owned())),
        };
        let mut config: tokio_postgres::Config =
            stripped.parse().map_err(DatabaseUrlError::Invalid)?;
        let transport = match verification {
            None if root_cert.is_some() => return Err(DatabaseUrlError::RootCertWithoutTls),
            None => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Transport::Plain
            }
            Some(verification) => {
                // Require: tokio-postgres fails when the server does not speak TLS.
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Transport::Tls {
                    verification,
                    root_cert,
                }
            }
        };
        Ok(DatabaseUrl { config, transport })
    }
}

/// One `key=value` setting and where it sits in the text (with its separator).
struct Param {
    key: String,
    value: String,
    span: Range<usize>,
}

type Rebuild = fn(String) -> String;

/// The query parameters of a URL; removing one leaves a `&` or `?` that the rebuild tidies.
fn url_params(text: &str) -> (Rebuild, Vec<Param>) {
    let Some(q) = text.find('?') else {
        return (|s| s, Vec::new());
    };
    let mut params = Vec::new();
    let mut start = q + 1;
    for piece in text[q + 1..].split('&') {
        let end = start + piece.len();
        if let Some((key, value)) = piece.split_once('=') {
            // Cover the `&` after the parameter, or the one before the last.
            let span = if end < text.len() {
                start..end + 1
            } else {
                start..end
            };
            params.push(Param {
                key: percent_decode(key),
                value: percent_decode(value),
                span,
            });
        }
        start = end + 1;
    }
    (
        |s: String| {
            let s = s.trim_end_matches('&').to_owned();
            s.strip_suffix('?').map(str::to_owned).unwrap_or(s)
        },
        params,
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' => {
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's key-value form: `key = value` pairs separated by white space, values optionally
/// single-quoted, backslash escapes.
fn key_value_params(text: &str) -> Result<(Rebuild, Vec<Param>), DatabaseUrlError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let offset = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut params = Vec::new();
    let mut i = 0;
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        let mut key = String::new();
        while let Some(c) = at(i).filter(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
            i += 1;
        }
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i) != Some('=') {
            return Err(DatabaseUrlError::Syntax(format!(
                "expected `=` after {key:?} (key=value pairs separated by spaces)"
            )));
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let mut value = String::new();
        if at(i) == Some('\'') {
            i += 1;
            loop {
                match at(i) {
                    None => {
                        return Err(DatabaseUrlError::Syntax(format!(
                            "unterminated quoted value of {key:?}"
                        )));
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(c) = at(i + 1) {
                            value.push(c);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = at(i).filter(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = at(i + 1) {
                        value.push(next);
                    }
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        params.push(Param {
            key,
            value,
            span: offset(start)..offset(i),
        });
    }
    Ok((|s| s, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(url: &str) -> (Verification, Option<PathBuf>) {
        match DatabaseUrl::parse(url).expect(url).transport {
            Transport::Tls {
                verification,
                root_cert,
            } => (verification, root_cert),
            Transport::Plain => panic!("{url} is TLS"),
        }
    }

    #[test]
    fn url_form_modes() {
        let base = "postgres://u:p@db.example:5433/app";
        assert_eq!(
            DatabaseUrl::parse(base).expect("plain").transport,
            Transport::Plain
        );
        assert_eq!(
            DatabaseUrl::parse(&format!("{base}?sslmode=disable"))
                .expect("disable")
                .transport,
            Transport::Plain
        );
        assert_eq!(
            tls(&format!("{base}?sslmode=require")),
            (Verification::EncryptOnly, None)
        );
        assert_eq!(
            tls(&format!("{base}?sslmode=verify-ca")),
            (Verification::Chain, None)
        );
        assert_eq!(
            tls(&format!(
                "{base}?connect_timeout=3&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"
            )),
            (
                Verification::ChainAndHostName,
                Some(PathBuf::from("/etc/ca.pem"))
            )
        );
        // libpq: require with a root certificate verifies the chain.
        assert_eq!(
            tls(&format!("{base}?sslrootcert=/ca.pem&sslmode=require")).0,
            Verification::Chain
        );
        let parsed =
            DatabaseUrl::parse(&format!("{base}?sslmode=verify-full&application_name=svc"))
                .expect("other parameters kept");
        assert_eq!(parsed.config.get_application_name(), Some("svc"));
        assert_eq!(parsed.config.get_dbname(), Some("app"));
        assert_eq!(parsed.config.get_ports(), [5433]);
    }

    #[test]
    fn key_value_form_modes() {
        let (v, root) = tls(
            "host=127.0.0.1 port=5432 user=u password='a b\\'c' dbname=app sslmode = verify-full sslrootcert='/tmp/my ca.pem'",
        );
        assert_eq!(v, Verification::ChainAndHostName);
        assert_eq!(root, Some(PathBuf::from("/tmp/my ca.pem")));
        let parsed = DatabaseUrl::parse(
            "host=127.0.0.1 user=u password='a b\\'c' dbname=app sslmode=verify-ca",
        )
        .expect("parses");
        assert_eq!(parsed.config.get_password(), Some("a b'c".as_bytes()));
    }

    #[test]
    fn modes_that_could_fall_back_or_are_unknown_are_refused() {
        for (url, needle) in [
            ("postgres://u:secret@h/db?sslmode=prefer", "sslmode=prefer"),
            ("host=h password=secret sslmode=allow", "sslmode=allow"),
            (
                "postgres://u:secret@h/db?sslmode=verify_full",
                "verify_full",
            ),
            (
                "postgres://u:secret@h/db?sslrootcert=/ca.pem",
                "sslrootcert",
            ),
            ("host=h password=secret sslmode", "expected `=`"),
        ] {
            let err = DatabaseUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(err.starts_with("DATABASE_URL"), "{err}");
            assert!(!err.contains("secret"), "the password stays out: {err}");
        }
    }
}
