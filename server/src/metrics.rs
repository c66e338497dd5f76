//! `/metrics` in Prometheus's text format (the `prometheus-client` crate):
//! requests and their latency per route, the AI queue, the audit trail's
//! length, and the database pool.
//!
//! Requests are counted by route template (`/api/v1/cases/{id}`, never a
//! case's number) so the series stay few and carry nothing about a patient.
//! The endpoint answers clients on the loopback interface, and others only
//! with `Authorization: Bearer <--metrics-token>`: a scraper on the same
//! host or behind the proxy with the token; the rest of the world gets 404.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Instant;

type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    // 1 ms to about 8 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    ai_queue: Gauge,
    audit_rows: Gauge,
    pool_size: Gauge,
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("osteo");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let (ai_queue, audit_rows, pool_size, pool_idle) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response's head, by method and route template",
            latency.clone(),
        );
        registry.register(
            "ai_queue_cases",
            "Cases whose reads are locked and that wait for the model",
            ai_queue.clone(),
        );
        registry.register("audit_rows", "Rows in the audit trail", audit_rows.clone());
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Open database connections not in use",
            pool_idle.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            ai_queue,
            audit_rows,
            pool_size,
            pool_idle,
        }
    }
}

/// Counts each request and times it, by route template.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let labels = vec![("method", method), ("route", route)];
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(seconds);
    let mut labels = labels;
    labels.push(("status", response.status().as_u16().to_string()));
    state.metrics.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`.
pub async fn metrics(
    State(state): State<AppState>,
    crate::throttle::ClientAddress(address): crate::throttle::ClientAddress,
    headers: axum::http::HeaderMap,
) -> Response {
    let token_given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (&state.settings.metrics_token, token_given) {
        // Compared as hashes: how long a comparison takes says nothing
        // about the token.
        (Some(expected), Some(given)) => {
            osteo_trial::store::sha256_hex(expected.as_bytes())
                == osteo_trial::store::sha256_hex(given.as_bytes())
        }
        _ => address.is_some_and(|a| a.is_loopback()),
    };
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    let m = &state.metrics;
    if let Ok(n) = osteo_trial::case::ai_queue_length(&state.db).await {
        m.ai_queue.set(n);
    }
    if let Ok(n) = sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM audit_log")
        .fetch_one(state.db.pool())
        .await
    {
        m.audit_rows.set(n);
    }
    m.pool_size.set(i64::from(state.db.pool().size()));
    m.pool_idle.set(state.db.pool().num_idle() as i64);
    let mut text = String::new();
    if encode(&mut text, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
