//! Prometheus metrics, shared by both faces: one registry per application, the HTTP series
//! every listener records, and the `/metrics` listener that exposes them (README
//! "Metrics", docs/operations.md).
//!
//! It knows neither face. Each face (and each of its parts) keeps its own instruments —
//! plain `prometheus-client` handles, cheap atomic updates — and registers them here by name
//! at start; `startup.rs` hands the same [`Metrics`] to both. The registry belongs to the
//! application, never to the process: the integration suite runs many applications in one
//! process at once, and a process-global recorder would mix their series.
//!
//! The exposition is `prometheus-client`'s OpenMetrics text, which Prometheus scrapes
//! natively; nothing here writes the format by hand.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use serde::{Deserialize, Serialize};

/// Every series is named `layer_idp_…`.
const PREFIX: &str = "layer_idp";

/// `[metrics]`: where `/metrics` is served. Off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// The metrics listener's address (its own port, never the public one).
    pub listen: Option<SocketAddr>,
}

/// Reads a value for a gauge at scrape time.
type Sampler = Box<dyn Fn() + Send + Sync>;

/// One application's registry. Registering takes a lock; recording never does (the handles
/// are atomics), so the lock is only ever held at start and during a scrape.
pub struct Metrics {
    /// A std mutex: never held across an `.await`.
    registry: Mutex<Registry>,
    /// Gauges read from their source at each scrape (queue depth, pool use).
    samplers: Mutex<Vec<Sampler>>,
    http: HttpFamilies,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::with_prefix(PREFIX)),
            samplers: Mutex::new(Vec::new()),
            http: HttpFamilies {
                requests: Family::default(),
                durations: Family::new_with_constructor(latency_histogram),
            },
        };
        metrics.register(
            "http_requests",
            "HTTP requests answered, by listener, method, route pattern and status class",
            metrics.http.requests.clone(),
        );
        metrics.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by listener, method and route pattern",
            metrics.http.durations.clone(),
        );
        metrics
    }

    /// Registers `metric` (a handle; clones share its value) as `layer_idp_<name>`.
    /// OpenMetrics adds `_total` to a counter's name.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        lock(&self.registry).register(name, help, metric);
    }

    /// A new counter, registered: the one line a new series takes.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.register(name, help, counter.clone());
        counter
    }

    /// A new gauge, registered; its owner sets it (an outbox backlog, say).
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.register(name, help, gauge.clone());
        gauge
    }

    /// A gauge whose value `read` returns, asked at each scrape. `read` runs inside the
    /// scrape, under a lock: it must be quick and must not block on I/O.
    pub fn gauge_fn(&self, name: &str, help: &str, read: impl Fn() -> i64 + Send + Sync + 'static) {
        let gauge = self.gauge(name, help);
        self.on_scrape(move || {
            gauge.set(read());
        });
    }

    /// Runs `sample` before each scrape, to set gauges read from elsewhere.
    pub fn on_scrape(&self, sample: impl Fn() + Send + Sync + 'static) {
        lock(&self.samplers).push(Box::new(sample));
    }

    /// The HTTP series of one listener (`face`: `idp`, `mock_layer`).
    pub fn http(&self, face: &'static str) -> HttpMetrics {
        HttpMetrics {
            face,
            families: self.http.clone(),
        }
    }

    /// The exposition: OpenMetrics text, ending in `# EOF`.
    pub fn render(&self) -> String {
        for sample in lock(&self.samplers).iter() {
            sample();
        }
        let mut out = String::new();
        // Writing to a String cannot fail; a metric that failed to encode would be a bug.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &lock(&self.registry)) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; a poisoned one still guards sound data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Latency buckets from 1 ms to about 16 s: a token answer takes milliseconds, a login
/// tens of milliseconds (argon2), a queued login up to the hash queue's timeout.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Buckets for waits measured in seconds, from 1 ms to about 16 s (same as requests).
pub fn wait_histogram() -> Histogram {
    latency_histogram()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    face: &'static str,
    method: &'static str,
    route: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    face: &'static str,
    method: &'static str,
    route: String,
}

#[derive(Clone)]
struct HttpFamilies {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

/// One listener's HTTP series; cheap to clone.
#[derive(Clone)]
pub struct HttpMetrics {
    face: &'static str,
    families: HttpFamilies,
}

impl HttpMetrics {
    /// Counts one answered request. Labels are bounded: a method outside the standard set
    /// is `OTHER`, a path no route matched is `(unmatched)` (never the raw path, which can
    /// carry a token).
    fn observe(&self, method: &str, route: Option<String>, status: u16, seconds: f64) {
        let method = standard_method(method);
        let route = route.unwrap_or_else(|| "(unmatched)".to_owned());
        self.families
            .requests
            .get_or_create(&RequestLabels {
                face: self.face,
                method,
                route: route.clone(),
                status: status_class(status),
            })
            .inc();
        self.families
            .durations
            .get_or_create(&RouteLabels {
                face: self.face,
                method,
                route,
            })
            .observe(seconds);
    }
}

fn standard_method(method: &str) -> &'static str {
    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("OTHER")
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware: counts and times every request by its route pattern. Runs on every request
/// of both faces: atomics and one map lookup per family, no allocation beyond the route's
/// name, no lock held across the handler.
pub async fn record_requests(
    metrics: HttpMetrics,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let result = next.call(req).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(response) => metrics.observe(
            method.as_str(),
            response.request().match_pattern(),
            response.status().as_u16(),
            seconds,
        ),
        // An error that is not a response yet is rendered by actix as its status.
        Err(e) => metrics.observe(
            method.as_str(),
            None,
            e.as_response_error().status_code().as_u16(),
            seconds,
        ),
    }
    result
}

/// A running metrics listener.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
}

/// Serves `GET /metrics` (and nothing else) on its own listener, with one worker: a scrape
/// every few seconds needs no more.
pub fn serve(metrics: Arc<Metrics>, listener: TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let metrics = web::Data::from(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(get_metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(listen = %addr, "metrics listening (GET /metrics)");
    Ok(Running { addr, server })
}

async fn get_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded_whatever_the_client_sends() {
        assert_eq!(standard_method("GET"), "GET");
        assert_eq!(standard_method("BREW"), "OTHER");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
        let metrics = Metrics::new();
        metrics.http("idp").observe("BREW", None, 404, 0.002);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"layer_idp_http_requests_total{face="idp",method="OTHER",route="(unmatched)",status="4xx"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn two_registries_never_share_a_series() {
        let one = Metrics::new();
        let two = Metrics::new();
        one.counter("things", "Things").inc();
        two.counter("things", "Things");
        assert!(one.render().contains("layer_idp_things_total 1"));
        assert!(two.render().contains("layer_idp_things_total 0"));
    }

    #[test]
    fn a_sampled_gauge_is_read_at_each_scrape() {
        let metrics = Metrics::new();
        let source = Arc::new(std::sync::atomic::AtomicI64::new(3));
        let read = source.clone();
        metrics.gauge_fn("depth", "Depth", move || {
            read.load(std::sync::atomic::Ordering::Relaxed)
        });
        assert!(metrics.render().contains("layer_idp_depth 3"));
        source.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(metrics.render().contains("layer_idp_depth 7"));
    }
}
