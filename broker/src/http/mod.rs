//! nsqd's HTTP API (conformance §2): routing as nsqd's httprouter does it (405 with
//! `Allow`, automatic OPTIONS, trailing-slash and case-fixing redirects, 404/405/500 as
//! V1 errors), and one module per endpoint group.
//!
//! Routing is done here rather than with axum's router so that what clients can observe
//! (HEAD is not GET, the `Allow` list, the error bodies) matches nsqd. Parameters come
//! from the query string only; request bodies are never form-parsed.
//!
//! - `/ping`, `/info`: [`info`];
//! - `/pub`, `/mpub`: [`publish`];
//! - `/stats` (JSON and text): [`stats`];
//! - `/topic/*`, `/channel/*`: [`admin`];
//! - `/config/<opt>`: [`config`];
//! - `/metrics` (Prometheus exposition, not in nsqd): [`metrics`];
//! - V1 conventions, Go query parsing, body reading: [`response`], [`query`], [`body`].
//!
//! The route resolution and query decoding themselves are shared with nsqlookupd in
//! [`nsq_protocol::http_api`]; this module keeps nsqd's route table and handlers.

pub mod admin;
pub mod body;
pub mod config;
pub mod import;
pub mod info;
pub mod metrics;
pub mod publish;
pub mod response;
pub mod stats;

/// Go `net/url` query and path decoding (shared with nsqlookupd).
pub use nsq_protocol::http_api::query;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use nsq_protocol::http_api::router::{self, Route, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::nsqd::Nsqd;
use admin::Action;
use response::ApiError;

/// What the handlers share: the node and the addresses it is bound to.
pub struct HttpState {
    pub nsqd: Arc<Nsqd>,
    /// The bound TCP listener address (`/info` reports its port).
    pub tcp_addr: SocketAddr,
    /// The bound HTTP listener address.
    pub http_addr: SocketAddr,
}

/// Serves HTTP on `listener` until `stop` turns true, then finishes the requests in
/// progress (idle keep-alive connections are closed).
pub async fn serve(listener: TcpListener, state: Arc<HttpState>, mut stop: watch::Receiver<bool>) {
    let addr = state.http_addr;
    tracing::info!(address = %addr, "HTTP: listening");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(address = %addr, error = %e, "HTTP: server failed");
    }
    tracing::info!(address = %addr, "HTTP: closing");
}

/// The axum app: every request goes through [`dispatch`].
pub fn router(state: Arc<HttpState>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Ping,
    Info,
    Pub,
    Mpub,
    Stats,
    Topic(Action),
    Channel(Action),
    ConfigGet,
    ConfigPut,
    Metrics,
    ChannelImport,
}

/// nsqd v1.3.0's routes. A `:name` segment matches any one non-empty segment. The Go
/// profiling routes (`/debug/pprof/*`, `/debug/setblockrate`, `/debug/freememory`) are
/// Go-runtime specific and have no equivalent here.
const ROUTER: Router<'static, Endpoint> = Router::new(&[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("POST", "/pub", Endpoint::Pub),
    ("POST", "/mpub", Endpoint::Mpub),
    ("GET", "/stats", Endpoint::Stats),
    ("POST", "/topic/create", Endpoint::Topic(Action::Create)),
    ("POST", "/topic/delete", Endpoint::Topic(Action::Delete)),
    ("POST", "/topic/empty", Endpoint::Topic(Action::Empty)),
    ("POST", "/topic/pause", Endpoint::Topic(Action::Pause)),
    ("POST", "/topic/unpause", Endpoint::Topic(Action::Unpause)),
    ("POST", "/channel/create", Endpoint::Channel(Action::Create)),
    ("POST", "/channel/delete", Endpoint::Channel(Action::Delete)),
    ("POST", "/channel/empty", Endpoint::Channel(Action::Empty)),
    ("POST", "/channel/pause", Endpoint::Channel(Action::Pause)),
    (
        "POST",
        "/channel/unpause",
        Endpoint::Channel(Action::Unpause),
    ),
    ("GET", "/config/:opt", Endpoint::ConfigGet),
    ("PUT", "/config/:opt", Endpoint::ConfigPut),
    ("GET", "/metrics", Endpoint::Metrics),
    // Extension (not in NSQ): used by `nsq drain` on scale-down.
    ("POST", "/channel/import", Endpoint::ChannelImport),
]);

async fn dispatch(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.to_string())
        .unwrap_or_default();
    let path = query::decode_path(uri.path());
    let raw_query = uri.query().unwrap_or("").to_string();
    let (response, logged) = match ROUTER.route(method.as_str(), &path) {
        Route::Handle(endpoint, param) => {
            // nsqd's handlers recover from panics with a V1 500 INTERNAL_ERROR.
            let handled = CatchUnwind(Box::pin(handle(state, endpoint, param, raw_query, req)));
            let response = handled.await.unwrap_or_else(|()| {
                tracing::error!(path = %path, "panic in HTTP handler");
                response::v1(Err(ApiError::INTERNAL))
            });
            // nsqd does not log /pub and /mpub requests (nor do we the bulk import).
            (
                response,
                !matches!(
                    endpoint,
                    Endpoint::Pub | Endpoint::Mpub | Endpoint::ChannelImport
                ),
            )
        }
        Route::Redirect(to) => (redirect(&method, &to, uri.query()), false),
        Route::Options(allow) => (with_allow(Response::new(Body::empty()), &allow), false),
        Route::MethodNotAllowed(allow) => (
            with_allow(response::v1(Err(ApiError::METHOD_NOT_ALLOWED)), &allow),
            true,
        ),
        Route::NotFound => (response::v1(Err(ApiError::NOT_FOUND)), true),
    };
    if logged {
        tracing::info!(
            "{} {} {} ({}) {:?}",
            response.status().as_u16(),
            method,
            uri.path_and_query()
                .map_or_else(|| uri.path(), |p| p.as_str()),
            remote,
            start.elapsed()
        );
    }
    response
}

async fn handle(
    state: Arc<HttpState>,
    endpoint: Endpoint,
    param: Option<String>,
    raw_query: String,
    req: Request,
) -> Response {
    let state = &*state;
    let q = raw_query.as_str();
    let opt = param.unwrap_or_default();
    let result = match endpoint {
        Endpoint::Ping => return info::ping(state),
        Endpoint::Info => info::info(state),
        Endpoint::Pub => {
            let (parts, body) = req.into_parts();
            publish::publish(state, q, &parts.headers, body).await
        }
        Endpoint::Mpub => {
            let (parts, body) = req.into_parts();
            publish::multi_publish(state, q, &parts.headers, body).await
        }
        Endpoint::Stats => stats::stats(state, q),
        Endpoint::Topic(action) => admin::topic(state, action, q),
        Endpoint::Channel(action) => admin::channel(state, action, q),
        Endpoint::ConfigGet => config::get(state, &opt),
        Endpoint::ConfigPut => config::put(state, &opt, req.into_body()).await,
        Endpoint::Metrics => return metrics::metrics(state, req.headers()).await,
        Endpoint::ChannelImport => import::import(state, q, req.into_body()).await,
    };
    response::v1(result)
}

/// 301 for GET (with Go's little HTML body), 307 for other methods.
fn redirect(method: &Method, to: &str, raw_query: Option<&str>) -> Response {
    let r = router::redirect(method.as_str(), to, raw_query);
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = if r.permanent {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    if let Ok(v) = HeaderValue::from_str(&r.location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(ct) = r.content_type {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

fn with_allow(mut resp: Response, allow: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}

/// Polls a future, turning a panic into `Err(())` (the handler's task survives and the
/// client gets a 500).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &Method, path: &str) -> Route<Endpoint> {
        ROUTER.route(method.as_str(), path)
    }

    fn endpoint(method: Method, path: &str) -> Option<(Endpoint, Option<String>)> {
        match route(&method, path) {
            Route::Handle(e, p) => Some((e, p)),
            _ => None,
        }
    }

    #[test]
    fn routes_and_params() {
        assert_eq!(endpoint(Method::GET, "/ping"), Some((Endpoint::Ping, None)));
        assert_eq!(
            endpoint(Method::PUT, "/config/log_level"),
            Some((Endpoint::ConfigPut, Some("log_level".into())))
        );
        assert!(endpoint(Method::GET, "/config/").is_none());
        assert!(endpoint(Method::GET, "/config/a/b").is_none());
        assert!(endpoint(Method::HEAD, "/ping").is_none());
    }

    #[test]
    fn not_found_not_allowed_options_redirects() {
        assert!(matches!(route(&Method::GET, "/nope"), Route::NotFound));
        match route(&Method::GET, "/pub") {
            Route::MethodNotAllowed(allow) => assert_eq!(allow, "OPTIONS, POST"),
            _ => panic!("expected 405"),
        }
        match route(&Method::POST, "/config/x") {
            Route::MethodNotAllowed(allow) => assert_eq!(allow, "GET, OPTIONS, PUT"),
            _ => panic!("expected 405"),
        }
        match route(&Method::OPTIONS, "/stats") {
            Route::Options(allow) => assert_eq!(allow, "GET, OPTIONS"),
            _ => panic!("expected OPTIONS"),
        }
        match route(&Method::GET, "/PING/") {
            Route::Redirect(to) => assert_eq!(to, "/ping"),
            _ => panic!("expected a redirect"),
        }
        match route(&Method::GET, "/Config/Opt/") {
            Route::Redirect(to) => assert_eq!(to, "/config/Opt"),
            _ => panic!("expected a redirect"),
        }
        assert!(matches!(route(&Method::OPTIONS, "/nope"), Route::NotFound));
    }

    #[test]
    fn catches_panics() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.block_on(CatchUnwind(Box::pin(async { panic!("boom") })));
        assert_eq!(r, Err::<(), ()>(()));
    }
}
