//! TLS to PostgreSQL and Redis (rustls, ring): which roots to trust, how strictly a server's
//! certificate is checked, and why a handshake refused one.
//!
//! Roots come from a CA file the setting names (`sslrootcert=` in `DATABASE_URL`) or else
//! from the system store, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL does.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a TLS set-up failed before any connection.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the CA file {path}: {source}")]
    ReadCaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate")]
    EmptyCaFile { path: PathBuf },
    #[error("loading the system's trusted certificates: {0}")]
    SystemRoots(String),
    #[error(
        "no trusted root certificate: the system store is empty (set SSL_CERT_FILE to a CA file)"
    )]
    NoRoots,
    #[error("building the certificate verifier: {0}")]
    Verifier(String),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// How a server's certificate is checked: libpq's `sslmode` values that encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// `require`: encrypted, the certificate is not checked (libpq's meaning).
    EncryptOnly,
    /// `verify-ca`: signed by a trusted root; any host name.
    Chain,
    /// `verify-full`: signed by a trusted root and valid for the host name.
    ChainAndHostName,
}

/// The one crypto provider the service uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide default: the redis crate builds its `ClientConfig` from the
/// default, and more than one provider may be compiled into a workspace build.
pub fn install_default_provider() {
    // An error only says a default is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Trusted roots: the certificates in `ca_file`, or the system store.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::ReadCaFile {
                path: path.to_owned(),
                source,
            })?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            store.add_parsable_certificates(certs);
            if store.is_empty() {
                return Err(TlsError::EmptyCaFile {
                    path: path.to_owned(),
                });
            }
        }
        None => {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() && !loaded.errors.is_empty() {
                let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
                return Err(TlsError::SystemRoots(errors.join("; ")));
            }
            store.add_parsable_certificates(loaded.certs);
            if store.is_empty() {
                return Err(TlsError::NoRoots);
            }
        }
    }
    Ok(store)
}

/// A client configuration that checks certificates as `verification` says.
pub fn client_config(
    verification: Verification,
    roots: RootCertStore,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let config = match verification {
        Verification::ChainAndHostName => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verification::Chain => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHostName { inner }))
                .with_no_client_auth()
        }
        Verification::EncryptOnly => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// `verify-ca`: the chain must verify; a certificate for another host name is accepted
/// (webpki checks the chain before the name, so a name error means the chain was good).
#[derive(Debug)]
struct AnyHostName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `sslmode=require`: any certificate (the handshake signatures are still checked, so the
/// session is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a certificate was refused, in words that say what to fix.
pub fn certificate_reason(problem: &CertificateError) -> String {
    match problem {
        CertificateError::UnknownIssuer => {
            "unknown CA: the server's certificate is not signed by a trusted root".to_owned()
        }
        CertificateError::NotValidForName => {
            "wrong host name: the certificate is not valid for the host connected to".to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "wrong host name: the certificate is not valid for {expected:?} (it names {})",
            presented.join(", ")
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "expired: the server's certificate is past its end date".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "not valid yet: the server's certificate starts in the future".to_owned()
        }
        CertificateError::Revoked => "revoked".to_owned(),
        CertificateError::BadSignature => "bad signature on the certificate".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not for TLS servers".to_owned()
        }
        other => format!("{other:?}"),
    }
}

/// The certificate problem that made a handshake fail, searched through an error chain
/// (rustls errors reach callers inside `std::io::Error`, whose `source` skips them).
pub fn certificate_problem<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CertificateError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(rustls::Error::InvalidCertificate(problem)) = e.downcast_ref::<rustls::Error>()
        {
            return Some(problem);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(rustls::Error::InvalidCertificate(problem)) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(problem);
        }
        current = e.source();
    }
    None
}

/// tokio-postgres' TLS hook, on rustls.
#[derive(Clone)]
pub struct PostgresTls {
    config: Arc<ClientConfig>,
}

impl PostgresTls {
    pub fn new(config: ClientConfig) -> Self {
        PostgresTls {
            config: Arc::new(config),
        }
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for PostgresTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type TlsConnect = PostgresTlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PostgresTlsConnect, TlsError> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|_| TlsError::ServerName(domain.to_owned()))?;
        Ok(PostgresTlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

pub struct PostgresTlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

type HandshakeFuture<S> =
    Pin<Box<dyn Future<Output = std::io::Result<PostgresTlsStream<S>>> + Send>>;

impl<S> tokio_postgres::tls::TlsConnect<S> for PostgresTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PostgresTlsStream<S>;
    type Error = std::io::Error;
    type Future = HandshakeFuture<S>;

    fn connect(self, stream: S) -> HandshakeFuture<S> {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(PostgresTlsStream)
        })
    }
}

/// An encrypted connection to PostgreSQL.
pub struct PostgresTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PostgresTlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PostgresTlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PostgresTlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        // SCRAM without channel binding: the binding's hash depends on the certificate's
        // signature algorithm, and a wrong one would fail authentication.
        tokio_postgres::tls::ChannelBinding::none()
    }
}

/// One TLS handshake with `host:port` under `config`: Redis' connection manager reports a
/// refused certificate only as text, so the service asks once itself to learn why.
pub async fn handshake(
    config: Arc<ClientConfig>,
    host: &str,
    port: u16,
) -> Result<(), HandshakeError> {
    let name =
        ServerName::try_from(host.to_owned()).map_err(|_| HandshakeError::Configuration {
            reason: format!("{host:?} is not a valid TLS server name"),
        })?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| HandshakeError::Unreachable(e.to_string()))?;
    match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match certificate_problem(&e) {
            Some(problem) => Err(HandshakeError::Configuration {
                reason: certificate_reason(problem),
            }),
            None => Err(HandshakeError::Unreachable(format!("TLS handshake: {e}"))),
        },
    }
}

/// How a handshake failed: a certificate that will not verify, or a server not there yet.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{reason}")]
    Configuration { reason: String },
    #[error("{0}")]
    Unreachable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_what_to_fix() {
        assert!(certificate_reason(&CertificateError::UnknownIssuer).starts_with("unknown CA"));
        assert!(certificate_reason(&CertificateError::Expired).starts_with("expired"));
        let wrong = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("db.example").expect("name"),
            presented: vec!["DnsName(\"localhost\")".to_owned()],
        };
        let text = certificate_reason(&wrong);
        assert!(
            text.starts_with("wrong host name") && text.contains("db.example"),
            "{text}"
        );
    }

    #[test]
    fn finds_the_certificate_problem_inside_an_io_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            certificate_problem(&io),
            Some(&CertificateError::UnknownIssuer)
        );
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&plain), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("svc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        assert!(matches!(
            roots(Some(&empty)),
            Err(TlsError::EmptyCaFile { .. })
        ));
        assert!(matches!(
            roots(Some(&dir.join("missing.pem"))),
            Err(TlsError::ReadCaFile { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
