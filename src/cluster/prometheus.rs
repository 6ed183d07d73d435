//! Prometheus inside the cluster, read through the Kubernetes API server's service proxy, so
//! the CLI needs no network path but the one to the API server; or, where a definition
//! gives one, a Prometheus at a URL, read directly.

use crate::config::Environment;
use crate::config::model::MonitoringMode;
use kube::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The port the bundled Prometheus serves on (its Service's `web` port).
pub const PORT: u16 = 9090;

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "cannot reach Prometheus {service} through the API server's service proxy ({path}): {message}"
    )]
    Unreachable {
        service: String,
        path: String,
        message: String,
    },
    #[error("cannot reach Prometheus at {url} ({path}): {message}")]
    UnreachableUrl {
        url: String,
        path: String,
        message: String,
    },
    #[error("Prometheus {service} refused {path}: {error_type}: {message}")]
    Refused {
        service: String,
        path: String,
        error_type: String,
        message: String,
    },
    #[error("Prometheus {service} answered {path} with something unreadable: {message}")]
    Decode {
        service: String,
        path: String,
        message: String,
    },
}

/// A Prometheus Service in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrometheusService {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl std::fmt::Display for PrometheusService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Service {}/{}:{}", self.namespace, self.name, self.port)
    }
}

impl PrometheusService {
    /// The bundled Prometheus of `env`, or `None` when wactl deploys none.
    pub fn bundled(env: &Environment) -> Option<Self> {
        (env.monitoring.mode == MonitoringMode::Bundled).then(|| Self {
            namespace: env.cluster.namespace.clone(),
            name: format!("{}-prometheus", env.app.name),
            port: PORT,
        })
    }

    /// The API server path that proxies to `path` (which starts with `/`) on this Service.
    pub fn proxy_path(&self, path: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/services/http:{}:{}/proxy{path}",
            self.namespace, self.name, self.port
        )
    }
}

/// Where a Prometheus is read: a Service through the API server's service proxy, or a URL
/// directly. Never one for the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrometheusAt {
    Proxy(PrometheusService),
    /// A base URL without a trailing `/` (validated by the definition).
    Url(String),
}

impl std::fmt::Display for PrometheusAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Proxy(service) => service.fmt(f),
            Self::Url(url) => write!(f, "at {url}"),
        }
    }
}

impl From<&PrometheusService> for PrometheusAt {
    fn from(service: &PrometheusService) -> Self {
        Self::Proxy(service.clone())
    }
}

impl From<&PrometheusAt> for PrometheusAt {
    fn from(at: &PrometheusAt) -> Self {
        at.clone()
    }
}

/// How long a direct request to a Prometheus URL may take (the proxy has the client's).
const URL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Prometheus' HTTP API envelope.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

/// One alert as `/api/v1/alerts` reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` (its `for:` has not elapsed yet) or `firing`.
    pub state: String,
    #[serde(default)]
    pub active_at: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    pub fn is_firing(&self) -> bool {
        self.state == "firing"
    }
}

#[derive(Debug, Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// One scrape target as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetsData {
    active_targets: Vec<Target>,
}

/// One loaded rule as `/api/v1/rules` reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LoadedRule {
    pub name: String,
    /// `alerting` or `recording`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub health: String,
    /// Alerting rules: `inactive`, `pending` or `firing`.
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    rules: Vec<LoadedRule>,
}

#[derive(Debug, Deserialize)]
struct RulesData {
    groups: Vec<RuleGroup>,
}

/// One series of an instant query's result.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Sample {
    pub metric: BTreeMap<String, String>,
    /// `[unix time, "value"]` as Prometheus writes it.
    pub value: (f64, String),
}

impl Sample {
    /// The value as a number (`NaN` and `±Inf` included).
    pub fn number(&self) -> Option<f64> {
        self.value.1.parse().ok()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: serde_json::Value,
}

/// Every alert Prometheus holds (pending and firing).
pub async fn alerts(
    client: &Client,
    service: impl Into<PrometheusAt>,
) -> Result<Vec<Alert>, PrometheusError> {
    let data: AlertsData = get(client, &service.into(), "/api/v1/alerts").await?;
    Ok(data.alerts)
}

/// The active scrape targets.
pub async fn targets(
    client: &Client,
    service: impl Into<PrometheusAt>,
) -> Result<Vec<Target>, PrometheusError> {
    let data: TargetsData = get(client, &service.into(), "/api/v1/targets?state=active").await?;
    Ok(data.active_targets)
}

/// Every rule Prometheus has loaded, over all groups.
pub async fn rules(
    client: &Client,
    service: impl Into<PrometheusAt>,
) -> Result<Vec<LoadedRule>, PrometheusError> {
    let data: RulesData = get(client, &service.into(), "/api/v1/rules").await?;
    Ok(data.groups.into_iter().flat_map(|g| g.rules).collect())
}

/// An instant query; a scalar result is returned as one series without labels.
pub async fn query(
    client: &Client,
    service: impl Into<PrometheusAt>,
    promql: &str,
) -> Result<Vec<Sample>, PrometheusError> {
    let service = service.into();
    let path = format!("/api/v1/query?query={}", encode(promql));
    let data: QueryData = get(client, &service, &path).await?;
    let decode = |message: String| PrometheusError::Decode {
        service: service.to_string(),
        path: path.clone(),
        message,
    };
    match data.result_type.as_str() {
        "vector" => serde_json::from_value(data.result).map_err(|e| decode(e.to_string())),
        "scalar" => {
            let value: (f64, String) =
                serde_json::from_value(data.result).map_err(|e| decode(e.to_string()))?;
            Ok(vec![Sample {
                metric: BTreeMap::new(),
                value,
            }])
        }
        other => Err(decode(format!(
            "result type `{other}`; wactl reads vectors and scalars"
        ))),
    }
}

async fn get<T: DeserializeOwned>(
    client: &Client,
    at: &PrometheusAt,
    path: &str,
) -> Result<T, PrometheusError> {
    match at {
        PrometheusAt::Proxy(service) => get_proxied(client, service, path).await,
        PrometheusAt::Url(url) => get_direct(at, url, path).await,
    }
}

/// `path` on the Prometheus at `url`, over HTTP(S) from this process.
async fn get_direct<T: DeserializeOwned>(
    at: &PrometheusAt,
    url: &str,
    path: &str,
) -> Result<T, PrometheusError> {
    let unreachable = |message: String| PrometheusError::UnreachableUrl {
        url: url.to_owned(),
        path: path.to_owned(),
        message,
    };
    // reqwest is built without a bundled crypto provider; wactl uses ring everywhere.
    // Installing fails harmlessly when another part of wactl already did it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(URL_TIMEOUT)
        .connect_timeout(URL_TIMEOUT)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let response = http
        .get(format!("{url}{path}"))
        .send()
        .await
        .map_err(|e| unreachable(error_chain(&e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| unreachable(error_chain(&e)))?;
    // Prometheus answers a bad query with 4xx and its own error body; any other answer
    // that is not a success (a proxy in front, a 503) means not reachable.
    if !status.is_success() && serde_json::from_str::<Envelope<serde_json::Value>>(&text).is_err() {
        return Err(unreachable(format!("HTTP {status}")));
    }
    parse(at, path, &text)
}

/// An error with its causes (reqwest's own message alone says little: "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn get_proxied<T: DeserializeOwned>(
    client: &Client,
    service: &PrometheusService,
    path: &str,
) -> Result<T, PrometheusError> {
    let proxied = service.proxy_path(path);
    let request = http::Request::get(&proxied).body(Vec::new()).map_err(|e| {
        PrometheusError::Unreachable {
            service: service.to_string(),
            path: path.to_owned(),
            message: e.to_string(),
        }
    })?;
    let text = client
        .request_text(request)
        .await
        .map_err(|e| unreachable_or_refused(service, path, &e))?;
    parse(&PrometheusAt::from(service), path, &text)
}

/// Prometheus answers a bad query with 400 and its own error body, which the API server
/// passes through; anything else (no endpoints, 503 from the proxy) means not reachable.
fn unreachable_or_refused(
    service: &PrometheusService,
    path: &str,
    error: &kube::Error,
) -> PrometheusError {
    if let kube::Error::Api(status) = error
        && let Ok(envelope) = serde_json::from_str::<Envelope<serde_json::Value>>(&status.message)
        && envelope.status == "error"
    {
        return PrometheusError::Refused {
            service: service.to_string(),
            path: path.to_owned(),
            error_type: envelope.error_type,
            message: envelope.error,
        };
    }
    PrometheusError::Unreachable {
        service: service.to_string(),
        path: path.to_owned(),
        message: super::api_message(error),
    }
}

fn parse<T: DeserializeOwned>(
    service: &PrometheusAt,
    path: &str,
    text: &str,
) -> Result<T, PrometheusError> {
    let decode = |message: String| PrometheusError::Decode {
        service: service.to_string(),
        path: path.to_owned(),
        message,
    };
    let envelope: Envelope<T> = serde_json::from_str(text).map_err(|e| decode(e.to_string()))?;
    if envelope.status != "success" {
        return Err(PrometheusError::Refused {
            service: service.to_string(),
            path: path.to_owned(),
            error_type: envelope.error_type,
            message: envelope.error,
        });
    }
    envelope
        .data
        .ok_or_else(|| decode("`data` is missing".to_owned()))
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> PrometheusService {
        PrometheusService {
            namespace: "ns".into(),
            name: "address-service-prometheus".into(),
            port: PORT,
        }
    }

    #[test]
    fn proxy_path_names_scheme_service_and_port() {
        assert_eq!(
            service().proxy_path("/api/v1/alerts"),
            "/api/v1/namespaces/ns/services/http:address-service-prometheus:9090/proxy/api/v1/alerts"
        );
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode(r#"sum(rate(x{job="a"}[5m])) > 0.5"#),
            "sum%28rate%28x%7Bjob%3D%22a%22%7D%5B5m%5D%29%29%20%3E%200.5"
        );
    }

    #[test]
    fn alerts_are_read_from_the_envelope() {
        let text = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"AddressServicePostgresDown","severity":"critical"},"annotations":{"summary":"s"},"state":"firing","activeAt":"2024-01-01T00:00:00Z","value":"0e+00"}]}}"#;
        let data: AlertsData = parse(&(&service()).into(), "/api/v1/alerts", text).expect("alerts");
        assert_eq!(data.alerts.len(), 1);
        assert_eq!(data.alerts[0].name(), "AddressServicePostgresDown");
        assert!(data.alerts[0].is_firing());
    }

    #[test]
    fn an_error_envelope_is_refused_with_its_type() {
        let text = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let error =
            parse::<QueryData>(&(&service()).into(), "/api/v1/query", text).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "Prometheus Service ns/address-service-prometheus:9090 refused /api/v1/query: bad_data: parse error"
        );
    }

    #[test]
    fn vector_samples_parse_with_their_value() {
        let sample: Sample =
            serde_json::from_str(r#"{"metric":{"job":"a"},"value":[1700000000.5,"0.25"]}"#)
                .expect("sample");
        assert_eq!(sample.number(), Some(0.25));
    }
}
