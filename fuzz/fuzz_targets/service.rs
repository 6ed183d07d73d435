//! Arbitrary requests through the whole address-service router (`address_service::app`),
//! without a socket: every answer must be a response below 500, never a panic.
//!
//! Input, as text so seeds are readable: `METHOD PATH` on the first line, then `Name: value`
//! header lines, an empty line, and the body (any bytes). Inputs that are not a valid HTTP
//! request line or header are skipped: hyper refuses those before the router sees them.
#![no_main]

use address_service::{AppState, Limits, app, data::Catalog};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let catalog = Arc::new(Catalog::load().expect("the embedded data loads"));
    Fixture {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime"),
        router: app(AppState::new(catalog, Limits::default())),
    }
});

/// Splits the input into a request, or `None` when it is not one hyper would accept.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let head_end = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match head_end {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, path) = lines.next()?.split_once(' ')?;
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(path);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let fixture = &*FIXTURE;
    let description = format!("{} {}", request.method(), request.uri());
    fixture.runtime.block_on(async {
        let response = fixture
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the response body can be read")
            .to_bytes();
        assert!(
            !status.is_server_error(),
            "{description} got {status}: {}",
            String::from_utf8_lossy(&body)
        );
    });
});
