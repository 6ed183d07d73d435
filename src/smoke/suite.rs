//! The checks a smoke run makes, built from the definition alone.

use crate::config::Environment;
use crate::config::model::RateLimit;
use serde_json::{Value, json};
use std::time::Duration;

/// Series the alert rules (`prometheus/rules.yml`) read from address-service. A scrape
/// without one of them leaves an alert silently blind, so smoke insists on each.
/// `up` is made by Prometheus itself and is not in the list.
pub const ALERT_SERIES: &[&str] = &[
    "http_requests_total",
    "http_request_duration_seconds",
    "address_validations_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
];

/// Security headers nginx adds to every answer (`nginx/nginx.conf`).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// One check of the suite.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Debug, Clone)]
pub enum CheckKind {
    /// One request whose answer must match.
    Request(RequestCheck),
    /// Retried with exponential backoff until it passes or the deadline is over.
    Readiness(RequestCheck),
    /// `requests` requests sent `concurrency` at a time: the first must pass, and at least
    /// one must be answered 429.
    RateLimit {
        path: String,
        requests: usize,
        concurrency: usize,
    },
}

/// Which base URL a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The URL under test.
    Base,
    /// Where `/metrics` is served: the service itself, since nginx hides it.
    Metrics,
}

#[derive(Debug, Clone)]
pub struct RequestCheck {
    pub method: String,
    pub target: Target,
    pub path: String,
    pub body: Option<Value>,
    pub expect: Expect,
}

/// What a passing answer looks like.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: u16,
    /// Values in the JSON body, by JSON pointer, judged in this order.
    pub json: Vec<(String, Value)>,
    /// Response headers (lower-case names) and their exact values.
    pub headers: Vec<(String, String)>,
    /// Prometheus series the body must expose.
    pub series: Vec<String>,
    pub max_latency: Option<Duration>,
}

impl Expect {
    fn status(status: u16) -> Self {
        Expect {
            status,
            ..Expect::default()
        }
    }

    fn json(mut self, pointer: &str, value: Value) -> Self {
        self.json.push((pointer.to_owned(), value));
        self
    }
}

/// How a URL reaches the service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Route {
    /// Through the nginx proxy of `nginx/nginx.conf`: security headers and rate limit apply,
    /// `/metrics` is hidden.
    pub through_nginx: bool,
    /// A separate URL serves `/metrics`.
    pub has_metrics_url: bool,
}

fn request(method: &str, path: &str, body: Option<Value>, expect: Expect) -> CheckKind {
    CheckKind::Request(RequestCheck {
        method: method.to_owned(),
        target: Target::Base,
        path: path.to_owned(),
        body,
        expect,
    })
}

fn check(name: &str, kind: CheckKind) -> Check {
    Check {
        name: name.to_owned(),
        kind,
    }
}

fn us_address() -> Value {
    json!({
        "country_code": "us", "country_area": "California", "city": "Mountain View",
        "street_address": "1600 Amphitheatre Pkwy", "postal_code": "94043", "name": "Jane Doe"
    })
}

/// The suite for `env`, in the order it runs: readiness first, the rate limit last (it
/// spends the burst the other checks would need).
pub fn suite(env: &Environment, route: Route) -> Vec<Check> {
    let mut checks = vec![
        check(
            "readyz",
            CheckKind::Readiness(RequestCheck {
                method: "GET".into(),
                target: Target::Base,
                path: "/readyz".into(),
                body: None,
                expect: Expect::status(200),
            }),
        ),
        check(
            "healthz",
            request(
                "GET",
                "/healthz",
                None,
                Expect::status(200).json("/status", json!("ok")),
            ),
        ),
        check(
            "validate-us",
            request(
                "POST",
                "/v1/addresses/validate",
                Some(us_address()),
                Expect::status(200)
                    .json("/valid", json!(true))
                    .json("/normalized/country_area", json!("CA"))
                    .json("/normalized/city", json!("MOUNTAIN VIEW")),
            ),
        ),
        check(
            "validate-us-invalid",
            request(
                "POST",
                "/v1/addresses/validate",
                Some(json!({
                    "country_code": "US", "country_area": "CA",
                    "street_address": "1600 Amphitheatre Pkwy", "postal_code": "10001"
                })),
                Expect::status(200)
                    .json("/valid", json!(false))
                    .json(
                        "/errors",
                        json!({"city": "required", "postal_code": "invalid"}),
                    )
                    .json("/normalized", Value::Null),
            ),
        ),
        check(
            "validate-de",
            request(
                "POST",
                "/v1/addresses/validate",
                Some(json!({
                    "country_code": "DE", "city": "Berlin", "postal_code": "10117",
                    "street_address": "Unter den Linden 77"
                })),
                Expect::status(200)
                    .json("/valid", json!(true))
                    .json("/normalized/postal_code", json!("10117")),
            ),
        ),
        check(
            "validate-gb-invalid",
            request(
                "POST",
                "/v1/addresses/validate",
                Some(json!({
                    "country_code": "GB", "city": "London", "postal_code": "not a postcode",
                    "street_address": "10 Downing Street"
                })),
                Expect::status(200)
                    .json("/valid", json!(false))
                    .json("/errors/postal_code", json!("invalid")),
            ),
        ),
        check(
            "format-us",
            request(
                "POST",
                "/v1/addresses/format",
                Some(json!({ "address": us_address() })),
                Expect::status(200).json(
                    "/lines",
                    json!([
                        "Jane Doe",
                        "1600 Amphitheatre Pkwy",
                        "MOUNTAIN VIEW, CA 94043",
                        "UNITED STATES"
                    ]),
                ),
            ),
        ),
        check(
            "format-kr-latin",
            request(
                "POST",
                "/v1/addresses/format",
                Some(json!({
                    "address": {"country_code": "KR", "country_area": "서울", "city": "강남구",
                        "street_address": "테헤란로 1", "postal_code": "06236"},
                    "latin": true
                })),
                Expect::status(200).json(
                    "/lines",
                    json!(["테헤란로 1", "Gangnam-gu", "Seoul", "06236", "SOUTH KOREA"]),
                ),
            ),
        ),
    ];

    if !route.through_nginx || route.has_metrics_url {
        checks.push(check(
            "metrics",
            CheckKind::Request(RequestCheck {
                method: "GET".into(),
                target: if route.through_nginx {
                    Target::Metrics
                } else {
                    Target::Base
                },
                path: "/metrics".into(),
                body: None,
                expect: Expect {
                    series: ALERT_SERIES.iter().map(|s| (*s).to_owned()).collect(),
                    ..Expect::status(200)
                },
            }),
        ));
    }

    if route.through_nginx {
        checks.push(check(
            "security-headers",
            request(
                "GET",
                "/v1/countries/US",
                None,
                Expect {
                    headers: SECURITY_HEADERS
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..Expect::status(200).json("/code", json!("US"))
                },
            ),
        ));
        checks.push(check(
            "metrics-hidden",
            request("GET", "/metrics", None, Expect::status(404)),
        ));
    }

    // A definition's check replaces the built-in of the same name, in its place (the docs
    // promise checks merge by name); the others run after the built-in ones.
    for custom in &env.smoke.checks {
        let replacement = check(
            &custom.name,
            request(
                &custom.method,
                &custom.path,
                custom.body.clone(),
                Expect {
                    status: custom.status,
                    json: custom.expect.clone().into_iter().collect(),
                    max_latency: custom.max_latency_ms.map(Duration::from_millis),
                    ..Expect::default()
                },
            ),
        );
        match checks.iter_mut().find(|c| c.name == custom.name) {
            Some(built_in) => *built_in = replacement,
            None => checks.push(replacement),
        }
    }

    if route.through_nginx {
        checks.push(check(
            "rate-limit",
            CheckKind::RateLimit {
                path: "/readyz".into(),
                requests: rate_limit_requests(&env.ingress.rate_limit),
                concurrency: 16,
            },
        ));
    }
    checks
}

/// How many requests the rate-limit check sends: everything past the burst within the first
/// second is over the limit; twice the burst plus a second's worth leaves room for slow
/// senders. At most 2,000, whatever the definition says (the sum is checked, not wrapped).
fn rate_limit_requests(limit: &RateLimit) -> usize {
    const MOST: u32 = 2_000;
    let requests = limit
        .burst
        .checked_mul(2)
        .and_then(|n| n.checked_add(limit.requests_per_second))
        .and_then(|n| n.checked_add(10))
        .map_or(MOST, |n| n.min(MOST));
    usize::try_from(requests).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Environment {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        crate::config::load(&dir, name).expect("environment loads")
    }

    fn names(checks: &[Check]) -> Vec<&str> {
        checks.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn direct_suite_reads_metrics_and_skips_proxy_checks() {
        let checks = suite(
            &env("dev"),
            Route {
                through_nginx: false,
                has_metrics_url: false,
            },
        );
        let names = names(&checks);
        assert_eq!(names.first(), Some(&"readyz"));
        assert!(names.contains(&"metrics"));
        assert!(!names.contains(&"security-headers"));
        assert!(!names.contains(&"rate-limit"));
    }

    #[test]
    fn nginx_suite_ends_with_the_rate_limit_and_sizes_it_from_the_definition() {
        let env = env("local");
        let checks = suite(
            &env,
            Route {
                through_nginx: true,
                has_metrics_url: true,
            },
        );
        let Some(CheckKind::RateLimit { requests, .. }) = checks.last().map(|c| &c.kind) else {
            panic!("rate-limit is not last: {:?}", names(&checks));
        };
        let limit = &env.ingress.rate_limit;
        assert!(*requests > (limit.burst + limit.requests_per_second) as usize);
        let metrics = checks
            .iter()
            .find(|c| c.name == "metrics")
            .expect("metrics check");
        assert!(matches!(&metrics.kind, CheckKind::Request(r) if r.target == Target::Metrics));
        assert!(names(&checks).contains(&"metrics-hidden"));
    }

    #[test]
    fn a_custom_check_replaces_the_built_in_of_the_same_name() {
        let staging = env("staging");
        assert!(staging.smoke.checks.iter().any(|c| c.name == "validate-de"));
        let checks = suite(&staging, Route::default());
        let named: Vec<&str> = names(&checks)
            .into_iter()
            .filter(|n| *n == "validate-de")
            .collect();
        assert_eq!(named, ["validate-de"], "one row per name");
        let position = checks.iter().position(|c| c.name == "validate-de");
        let built_in = suite(&env("dev"), Route::default());
        assert_eq!(
            position,
            built_in.iter().position(|c| c.name == "validate-de"),
            "in the built-in's place"
        );
        let CheckKind::Request(r) = &checks[position.expect("present")].kind else {
            panic!("validate-de is a request");
        };
        assert_eq!(r.expect.max_latency, Some(Duration::from_millis(500)));
    }

    #[test]
    fn the_rate_limit_check_size_is_bounded_and_never_overflows() {
        let sizes = [
            (40, 20, 110),
            (500, 20, 1_030),
            (500, 1_499, 2_000),
            (u32::MAX, 20, 2_000),
            (u32::MAX / 2, u32::MAX, 2_000),
            (0, u32::MAX, 2_000),
        ];
        for (burst, requests_per_second, expected) in sizes {
            let limit = RateLimit {
                requests_per_second,
                burst,
            };
            assert_eq!(
                rate_limit_requests(&limit),
                expected,
                "burst {burst}, {requests_per_second}/s"
            );
        }
        // Within the definition's bounds the check always sends enough to be limited.
        let largest = RateLimit {
            requests_per_second: 1_000,
            burst: crate::config::MAX_RATE_LIMIT_BURST,
        };
        assert!(rate_limit_requests(&largest) > 1_500);
    }

    #[test]
    fn custom_checks_come_from_the_definition() {
        let checks = suite(
            &env("staging"),
            Route {
                through_nginx: false,
                has_metrics_url: false,
            },
        );
        let custom = checks
            .iter()
            .find(|c| {
                c.name == "validate-de"
                    && matches!(&c.kind, CheckKind::Request(r) if r.expect.max_latency.is_some())
            })
            .expect("the staging check");
        let CheckKind::Request(r) = &custom.kind else {
            unreachable!()
        };
        assert_eq!(r.expect.max_latency, Some(Duration::from_millis(500)));
        assert_eq!(r.expect.json, [("/valid".to_owned(), json!(true))]);
    }

    /// Every series an alert rule reads is one smoke demands, so an alert cannot go blind
    /// without a failing smoke run.
    #[test]
    fn alert_series_cover_the_rendered_rules() {
        let rendered =
            crate::render::render(&env("local"), &Default::default()).expect("local renders");
        let rules = &rendered.files["prometheus/rules.yml"];
        // Made by Prometheus, or exposed only once the service talks to its dependencies.
        let not_from_the_service = ["up", "absent", "address_service_dependency_up"];
        for line in rules
            .lines()
            .filter(|l| l.contains('{') && !l.contains("summary"))
        {
            for (i, _) in line.match_indices('{') {
                let name: String = line[..i]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let base = name.trim_end_matches("_bucket");
                if base.is_empty()
                    || !base.contains('_') && base != "up"
                    || not_from_the_service.contains(&base)
                {
                    continue;
                }
                assert!(
                    ALERT_SERIES.contains(&base),
                    "rules.yml reads {base}, which smoke does not check"
                );
            }
        }
    }
}
