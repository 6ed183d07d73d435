//! Prometheus metrics in the text exposition format, kept by hand to stay small.
//!
//! Names are a contract with the alert rules and dashboards wactl renders:
//! `http_requests_total{method,route,status}`, `http_request_duration_seconds{route}`,
//! `address_validations_total{country,result}` and the usual `process_*` gauges.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds of the request-duration histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    validations: Mutex<BTreeMap<(String, &'static str), u64>>,
    start_time: f64,
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

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
            requests: Mutex::default(),
            durations: Mutex::default(),
            validations: Mutex::default(),
            start_time,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = lock(&self.requests);
            match requests.get_mut(&(method.to_owned(), route.to_owned(), status)) {
                Some(n) => *n += 1,
                None => {
                    requests.insert((method.to_owned(), route.to_owned(), status), 1);
                }
            }
        }
        let secs = elapsed.as_secs_f64();
        let mut durations = lock(&self.durations);
        if !durations.contains_key(route) {
            durations.insert(route.to_owned(), Histogram::default());
        }
        if let Some(h) = durations.get_mut(route) {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
                if secs <= *bound {
                    *count += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// `result` is `valid` or `invalid`; `country` is a known code or `unknown`.
    pub fn observe_validation(&self, country: &str, result: &'static str) {
        *lock(&self.validations)
            .entry((country.to_owned(), result))
            .or_default() += 1;
    }

    /// The exposition text for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP http_requests_total HTTP requests served.\n# TYPE http_requests_total counter\n");
        for ((method, route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP http_request_duration_seconds Time to serve a request.\n# TYPE http_request_duration_seconds histogram\n",
        );
        for (route, h) in lock(&self.durations).iter() {
            let route = escape(route);
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP address_validations_total Addresses validated or normalised, by outcome.\n# TYPE address_validations_total counter\n",
        );
        for ((country, result), n) in lock(&self.validations).iter() {
            let _ = writeln!(
                out,
                "address_validations_total{{country=\"{}\",result=\"{result}\"}} {n}",
                escape(country)
            );
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

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        m.observe_request(
            "POST",
            "/v1/addresses/validate",
            200,
            Duration::from_millis(2),
        );
        m.observe_validation("US", "valid");
        let text = m.render();
        for needle in [
            "http_requests_total{method=\"POST\",route=\"/v1/addresses/validate\",status=\"200\"} 1",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"0.0025\"} 1",
            "http_request_duration_seconds_bucket{route=\"/v1/addresses/validate\",le=\"0.001\"} 0",
            "http_request_duration_seconds_count{route=\"/v1/addresses/validate\"} 1",
            "address_validations_total{country=\"US\",result=\"valid\"} 1",
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_open_fds ",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
