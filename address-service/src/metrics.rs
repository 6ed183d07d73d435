//! Prometheus metrics in the text exposition format, kept by hand to stay small.
//!
//! Names are a contract with the alert rules and dashboards wactl renders:
//! `http_requests_total{method,route,status}`, `http_request_duration_seconds{route}`,
//! `address_validations_total{country,result}` and the usual `process_*` gauges.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds of the request-duration histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The routes the service serves (axum's matched paths), each with its series resolved once
/// at start-up, so counting a request neither allocates nor formats a label.
pub const ROUTES: [&str; 10] = [
    "/v1/countries",
    "/v1/countries/{code}",
    "/v1/addresses/validate",
    "/v1/addresses/normalize",
    "/v1/addresses/format",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    UNMATCHED,
];

/// Country labels of `address_validations_total`: every two-letter code, then `unknown`.
const COUNTRY_SLOTS: usize = 26 * 26 + 1;
const UNKNOWN_COUNTRY: usize = COUNTRY_SLOTS - 1;

#[derive(Debug)]
pub struct Metrics {
    routes: Vec<RouteSeries>,
    /// `[valid, invalid]` per country slot.
    validations: Vec<[AtomicU64; 2]>,
    start_time: f64,
}

/// One route's request counters and duration histogram.
#[derive(Debug, Default)]
struct RouteSeries {
    /// `(method, status, count)`: the few combinations a route sees, found by a short scan.
    requests: Mutex<Vec<(&'static str, u16, u64)>>,
    /// Observations per bucket, not cumulative: slot `i` counts durations in
    /// `(BUCKETS[i-1], BUCKETS[i]]`, the last slot those above every bound. The exposed
    /// cumulative buckets and `_count` are sums of one read of these slots, so a scrape under
    /// load can never show a bucket above a later one or above `_count` (separate cumulative
    /// counters, read one after the other while requests increment them, could).
    slots: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A route's series, resolved once per request by [`Metrics::route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId(usize);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            routes: ROUTES.iter().map(|_| RouteSeries::default()).collect(),
            validations: (0..COUNTRY_SLOTS).map(|_| Default::default()).collect(),
            start_time,
        }
    }

    /// The series of a matched path (`None`: no route matched).
    pub fn route(&self, matched: Option<&str>) -> RouteId {
        let path = matched.unwrap_or(UNMATCHED);
        RouteId(
            ROUTES
                .iter()
                .position(|r| *r == path)
                .unwrap_or(ROUTES.len() - 1),
        )
    }

    pub fn observe_request(
        &self,
        method: &axum::http::Method,
        route: RouteId,
        status: u16,
        elapsed: Duration,
    ) {
        let series = &self.routes[route.0];
        let method = method_label(method);
        {
            let mut requests = lock(&series.requests);
            match requests
                .iter_mut()
                .find(|(m, s, _)| *m == method && *s == status)
            {
                Some((_, _, n)) => *n += 1,
                None => requests.push((method, status, 1)),
            }
        }
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        series.slots[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        series.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one validation. `country` is a code the catalog knows (any case) or `None`.
    pub fn observe_validation(&self, country: Option<&str>, valid: bool) {
        let slot = country.and_then(country_slot).unwrap_or(UNKNOWN_COUNTRY);
        self.validations[slot][usize::from(!valid)].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP http_requests_total HTTP requests served.\n# TYPE http_requests_total counter\n");
        for (route, series) in ROUTES.iter().zip(&self.routes) {
            let mut requests = lock(&series.requests).clone();
            requests.sort_unstable();
            for (method, status, n) in requests {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to serve a request.\n# TYPE http_request_duration_seconds histogram\n",
        );
        for (route, series) in ROUTES.iter().zip(&self.routes) {
            let slots: [u64; BUCKETS.len() + 1] =
                std::array::from_fn(|i| series.slots[i].load(Ordering::Relaxed));
            let count: u64 = slots.iter().sum();
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(slots) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
                 http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
                 http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP address_validations_total Addresses validated or normalised, by outcome.\n# TYPE address_validations_total counter\n",
        );
        for (slot, counts) in self.validations.iter().enumerate() {
            for (result, n) in ["valid", "invalid"].iter().zip(counts) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let country = slot_country(slot);
                    let country = country.as_deref().unwrap_or("unknown");
                    let _ = writeln!(
                        out,
                        "address_validations_total{{country=\"{country}\",result=\"{result}\"}} {n}"
                    );
                }
            }
        }
        self.render_process(&mut out);
        out
    }

    fn render_process(&self, out: &mut String) {
        let p = ProcessStats::read();
        let mut gauge = |name: &str, kind: &str, help: &str, value: Option<f64>| {
            if let Some(v) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
                );
            }
        };
        gauge(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent in seconds.",
            p.cpu_seconds,
        );
        gauge(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes,
        );
        gauge(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        );
        gauge(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds,
        );
        gauge(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds,
        );
        gauge(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            Some(self.start_time),
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a counter map inconsistent; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `method` label: the standard methods by name, anything else as `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The slot of a two-letter ASCII code, any case.
fn country_slot(code: &str) -> Option<usize> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(
            usize::from(a.to_ascii_uppercase() - b'A') * 26
                + usize::from(b.to_ascii_uppercase() - b'A'),
        ),
        _ => None,
    }
}

fn slot_country(slot: usize) -> Option<String> {
    (slot < UNKNOWN_COUNTRY).then(|| {
        let letter = |i: usize| char::from(b'A' + (i % 26) as u8);
        [letter(slot / 26), letter(slot)].iter().collect()
    })
}

/// What `/proc/self` says about this process (Linux); absent values are not exported.
#[derive(Debug, Default)]
struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

/// Clock ticks per second for `/proc/<pid>/stat` times; 100 on every Linux we run on.
const CLOCK_TICKS: f64 = 100.0;

impl ProcessStats {
    fn read() -> Self {
        let mut stats = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name; utime and stime are the 12th and
            // 13th of those.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
                if let (Some(u), Some(s)) = (num(11), num(12)) {
                    stats.cpu_seconds = Some((u + s) / CLOCK_TICKS);
                }
                stats.virtual_bytes = num(20);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            stats.resident_bytes = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| kb * 1024.0);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            stats.open_fds = Some(dir.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
            stats.max_fds = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok());
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_contracted_name() {
        let m = Metrics::new();
        let validate = m.route(Some("/v1/addresses/validate"));
        m.observe_request(
            &axum::http::Method::POST,
            validate,
            200,
            Duration::from_millis(2),
        );
        m.observe_request(
            &axum::http::Method::POST,
            validate,
            200,
            Duration::from_millis(3),
        );
        m.observe_request(
            &axum::http::Method::from_bytes(b"PURGE").expect("method"),
            m.route(Some("/not/a/route")),
            404,
            Duration::from_millis(1),
        );
        m.observe_validation(Some("us"), true);
        m.observe_validation(Some("ZW"), false);
        m.observe_validation(None, false);
        let text = m.render();
        for needle in [
            "http_requests_total{method=\"POST\",route=\"/v1/addresses/validate\",status=\"200\"} 2",
            "http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"0.0025\"} 1",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"0.005\"} 2",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"0.001\"} 0",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"+Inf\"} 2",
            "http_request_duration_seconds_sum{route=\"/v1/addresses/validate\"} 0.005\n",
            "http_request_duration_seconds_count{route=\"/v1/addresses/validate\"} 2",
            "address_validations_total{country=\"US\",result=\"valid\"} 1",
            "address_validations_total{country=\"ZW\",result=\"invalid\"} 1",
            "address_validations_total{country=\"unknown\",result=\"invalid\"} 1",
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_open_fds ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(
            !text.contains("route=\"/healthz\""),
            "routes never requested have no series:\n{text}"
        );
    }

    /// `(le, value)` of every bucket of `route`, then `_count`, from one scrape.
    fn histogram(text: &str, route: &str) -> (Vec<(String, u64)>, Option<u64>) {
        let bucket = format!("http_request_duration_seconds_bucket{{route=\"{route}\",le=\"");
        let count = format!("http_request_duration_seconds_count{{route=\"{route}\"}} ");
        let mut buckets = Vec::new();
        let mut total = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&bucket) {
                let (le, value) = rest.split_once("\"} ").expect("bucket line");
                buckets.push((le.to_owned(), value.parse().expect("bucket value")));
            } else if let Some(value) = line.strip_prefix(&count) {
                total = Some(value.parse().expect("count value"));
            }
        }
        (buckets, total)
    }

    #[test]
    fn scrapes_under_concurrent_load_show_monotonic_buckets() {
        const WRITERS: u64 = 3;
        /// Bounds the load should the scrapes be slow.
        const MAX_PER_WRITER: u64 = 20_000_000;
        const SCRAPES: u32 = 3_000;
        let m = std::sync::Arc::new(Metrics::new());
        let route = m.route(Some("/v1/addresses/validate"));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let m = m.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut observed = 0u64;
                    while observed < MAX_PER_WRITER && !done.load(Ordering::Relaxed) {
                        // Durations spread over every bucket and above the last one.
                        let micros = (observed * 7919 + w * 104_729) % 12_000_000;
                        m.observe_request(
                            &axum::http::Method::POST,
                            route,
                            200,
                            Duration::from_micros(micros),
                        );
                        observed += 1;
                    }
                    observed
                })
            })
            .collect();
        // The load runs for the whole scrape loop: each scrape races the writers.
        while histogram(&m.render(), "/v1/addresses/validate").1.is_none() {
            std::thread::yield_now();
        }
        let mut checked = 0u32;
        for scrape in 0..SCRAPES {
            let text = m.render();
            let (buckets, count) = histogram(&text, "/v1/addresses/validate");
            let count = count.expect("a _count line");
            assert_eq!(buckets.len(), BUCKETS.len() + 1, "{text}");
            assert_eq!(buckets.last().map(|b| b.0.as_str()), Some("+Inf"));
            for pair in buckets.windows(2) {
                assert!(
                    pair[0].1 <= pair[1].1,
                    "bucket le={} ({}) above le={} ({}) in scrape {scrape}",
                    pair[0].0,
                    pair[0].1,
                    pair[1].0,
                    pair[1].1
                );
            }
            assert_eq!(buckets.last().map(|b| b.1), Some(count), "+Inf is _count");
            checked += 1;
        }
        done.store(true, Ordering::Relaxed);
        let observed: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
        assert_eq!(checked, SCRAPES);
        let (buckets, count) = histogram(&m.render(), "/v1/addresses/validate");
        assert_eq!(count, Some(observed), "every observation counted");
        assert!(
            buckets[0].1 > 0 && buckets[BUCKETS.len() - 1].1 < observed,
            "the load spread over the first bucket and above the last: {buckets:?}"
        );
    }
}
