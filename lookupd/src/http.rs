//! The HTTP API (conformance §5.2, conventions §2.1): routing as nsqlookupd's
//! httprouter does it (405 with `Allow`, automatic OPTIONS, trailing-slash and
//! case-fixing redirects), V1 responses, and one handler per endpoint.
//!
//! Routing is done here rather than with axum's router so that the details clients can
//! observe (HEAD is not GET, the `Allow` list, the 404/405 bodies) match nsqlookupd.
//! `GET /metrics` (not in nsqlookupd) is the Prometheus exposition of [`crate::metrics`].
//!
//! The route resolution, query decoding and V1 body conventions are shared with nsqd in
//! [`nsq_protocol::http_api`]; this module keeps nsqlookupd's route table and handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use nsq_protocol::http_api::query::{decode_path, Query};
use nsq_protocol::http_api::response::{
    to_go_json, v1_error_body, JSON_CONTENT_TYPE, NSQ_CONTENT_TYPE, NSQ_CONTENT_TYPE_V1,
    TEXT_CONTENT_TYPE,
};
use nsq_protocol::http_api::router::{self, Route, Router};
use nsq_protocol::lookup::{
    ChannelsResponse, InfoResponse, LookupResponse, Node, NodesResponse, TopicsResponse,
};
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};
use serde::Serialize;
use tracing::info;

use crate::protocol_v1::Context;
use crate::registration_db::{filter_active, Category, Registration};

/// What the HTTP handlers share.
#[derive(Debug)]
pub struct HttpState {
    pub ctx: Arc<Context>,
    pub inactive_producer_timeout: Duration,
    pub tombstone_lifetime: Duration,
    /// When the server started, Unix seconds (`/metrics`).
    pub start_time: i64,
}

/// The axum app: every request goes through [`dispatch`].
pub fn router(state: Arc<HttpState>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Ping,
    Info,
    Debug,
    Lookup,
    Topics,
    Channels,
    Nodes,
    TopicCreate,
    TopicDelete,
    ChannelCreate,
    ChannelDelete,
    TopicTombstone,
    Metrics,
}

/// nsqlookupd v1.3.0's routes (the pre-1.0 `/create_topic` etc. are gone; the Go pprof
/// routes have no equivalent here).
const ROUTER: Router<'static, Endpoint> = Router::new(&[
    ("GET", "/ping", Endpoint::Ping),
    ("GET", "/info", Endpoint::Info),
    ("GET", "/debug", Endpoint::Debug),
    ("GET", "/lookup", Endpoint::Lookup),
    ("GET", "/topics", Endpoint::Topics),
    ("GET", "/channels", Endpoint::Channels),
    ("GET", "/nodes", Endpoint::Nodes),
    ("POST", "/topic/create", Endpoint::TopicCreate),
    ("POST", "/topic/delete", Endpoint::TopicDelete),
    ("POST", "/channel/create", Endpoint::ChannelCreate),
    ("POST", "/channel/delete", Endpoint::ChannelDelete),
    ("POST", "/topic/tombstone", Endpoint::TopicTombstone),
    ("GET", "/metrics", Endpoint::Metrics),
]);

/// A V1 error: status plus the `message` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ApiError(StatusCode, &'static str);

/// A handler's successful result.
enum Reply {
    /// 200 with a JSON body.
    Json(String),
    /// 200 with an empty body.
    Empty,
}

async fn dispatch(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = decode_path(req.uri().path());
    let raw_query = req.uri().query();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    // A handler bug answers 500, as nsqlookupd's panic handler does, instead of
    // dropping the connection.
    let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        route(&state, &method, &path, raw_query, accept)
    }))
    .unwrap_or_else(|_| {
        v1_error(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
        ))
    });
    info!(
        "{} {} {} ({}) {:?}",
        response.status().as_u16(),
        method,
        req.uri()
            .path_and_query()
            .map_or_else(|| req.uri().path(), |p| p.as_str()),
        crate::server::canonical_addr(remote),
        start.elapsed()
    );
    response
}

fn route(
    state: &HttpState,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    accept: Option<&str>,
) -> Response {
    match ROUTER.route(method.as_str(), path) {
        Route::Handle(endpoint, _) => handle(state, endpoint, raw_query.unwrap_or(""), accept),
        Route::Redirect(to) => redirect(method, &to, raw_query),
        Route::Options(allow) => with_allow(Response::new(Body::empty()), &allow),
        Route::MethodNotAllowed(allow) => {
            let resp = v1_error(ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
            ));
            with_allow(resp, &allow)
        }
        Route::NotFound => v1_error(ApiError(StatusCode::NOT_FOUND, "NOT_FOUND")),
    }
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

fn handle(
    state: &HttpState,
    endpoint: Endpoint,
    raw_query: &str,
    accept: Option<&str>,
) -> Response {
    let result = match endpoint {
        Endpoint::Ping => return plain_text("OK"),
        Endpoint::Info => Ok(json(&InfoResponse {
            version: nsq_protocol::NSQ_VERSION.to_string(),
        })),
        Endpoint::Debug => Ok(json(&state.ctx.db.debug())),
        Endpoint::Topics => Ok(topics(state)),
        Endpoint::Nodes => Ok(nodes(state)),
        Endpoint::Lookup => params(raw_query).and_then(|q| lookup(state, &q)),
        Endpoint::Channels => params(raw_query).and_then(|q| channels(state, &q)),
        Endpoint::TopicCreate => params(raw_query).and_then(|q| topic_create(state, &q)),
        Endpoint::TopicDelete => params(raw_query).and_then(|q| topic_delete(state, &q)),
        Endpoint::ChannelCreate => params(raw_query).and_then(|q| channel_create(state, &q)),
        Endpoint::ChannelDelete => params(raw_query).and_then(|q| channel_delete(state, &q)),
        Endpoint::TopicTombstone => params(raw_query).and_then(|q| topic_tombstone(state, &q)),
        Endpoint::Metrics => return crate::metrics::respond(state, accept),
    };
    match result {
        Ok(Reply::Json(body)) => v1_response(StatusCode::OK, body, true),
        Ok(Reply::Empty) => v1_response(StatusCode::OK, String::new(), false),
        Err(e) => v1_error(e),
    }
}

fn params(raw_query: &str) -> Result<Query, ApiError> {
    Query::parse(raw_query).map_err(|_| ApiError(StatusCode::BAD_REQUEST, "INVALID_REQUEST"))
}

fn bad_request(code: &'static str) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code)
}

fn topics(state: &HttpState) -> Reply {
    let topics = keys(state.ctx.db.find_registrations(Category::Topic, "*", ""));
    json(&TopicsResponse { topics })
}

fn channels(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    let channels = sub_keys(
        state
            .ctx
            .db
            .find_registrations(Category::Channel, topic, "*"),
    );
    Ok(json(&ChannelsResponse { channels }))
}

fn lookup(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    let db = &state.ctx.db;
    if db.find_registrations(Category::Topic, topic, "").is_empty() {
        return Err(ApiError(StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND"));
    }
    let channels = sub_keys(db.find_registrations(Category::Channel, topic, "*"));
    let producers = filter_active(
        db.find_producers(Category::Topic, topic, ""),
        state.inactive_producer_timeout,
        state.tombstone_lifetime,
    )
    .iter()
    .map(|p| p.peer().to_json())
    .collect();
    Ok(json(&LookupResponse {
        channels,
        producers,
    }))
}

/// Every active peer, tombstoned ones included, with its topics and their tombstones.
fn nodes(state: &HttpState) -> Reply {
    let db = &state.ctx.db;
    let peers = filter_active(
        db.find_producers(Category::Client, "", ""),
        state.inactive_producer_timeout,
        Duration::ZERO,
    );
    let producers = peers
        .iter()
        .map(|p| {
            let peer = p.peer();
            let topics: Vec<String> = db
                .lookup_registrations(&peer.id)
                .into_iter()
                .filter(|r| r.category == Category::Topic)
                .map(|r| r.key)
                .collect();
            let tombstones = topics
                .iter()
                .map(|t| {
                    db.find_producers(Category::Topic, t, "")
                        .iter()
                        .find(|tp| tp.peer().id == peer.id)
                        .is_some_and(|tp| tp.is_tombstoned(state.tombstone_lifetime))
                })
                .collect();
            Node {
                remote_address: peer.remote_address.clone(),
                hostname: peer.hostname.clone(),
                broadcast_address: peer.broadcast_address.clone(),
                tcp_port: peer.tcp_port,
                http_port: peer.http_port,
                version: peer.version.clone(),
                tombstones,
                topics,
            }
        })
        .collect();
    json(&NodesResponse { producers })
}

fn topic_create(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(topic) {
        return Err(bad_request("INVALID_ARG_TOPIC"));
    }
    info!("DB: adding topic({topic})");
    state.ctx.db.add_registration(Registration::topic(topic));
    Ok(Reply::Empty)
}

fn topic_delete(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    let db = &state.ctx.db;
    for reg in db.find_registrations(Category::Channel, topic, "*") {
        info!("DB: removing channel({}) from topic({topic})", reg.sub_key);
        db.remove_registration(&reg);
    }
    for reg in db.find_registrations(Category::Topic, topic, "") {
        info!("DB: removing topic({})", reg.key);
        db.remove_registration(&reg);
    }
    Ok(Reply::Empty)
}

/// nsqd's and nsqlookupd's shared argument check, in its order.
fn topic_channel_args(q: &Query) -> Result<(&str, &str), ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    if !is_valid_topic_name(topic) {
        return Err(bad_request("INVALID_ARG_TOPIC"));
    }
    let channel = q.get("channel").ok_or(bad_request("MISSING_ARG_CHANNEL"))?;
    if !is_valid_channel_name(channel) {
        return Err(bad_request("INVALID_ARG_CHANNEL"));
    }
    Ok((topic, channel))
}

fn channel_create(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let (topic, channel) = topic_channel_args(q)?;
    info!("DB: adding channel({channel}) in topic({topic})");
    state
        .ctx
        .db
        .add_registration(Registration::channel(topic, channel));
    info!("DB: adding topic({topic})");
    state.ctx.db.add_registration(Registration::topic(topic));
    Ok(Reply::Empty)
}

fn channel_delete(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let (topic, channel) = topic_channel_args(q)?;
    let db = &state.ctx.db;
    let regs = db.find_registrations(Category::Channel, topic, channel);
    if regs.is_empty() {
        return Err(ApiError(StatusCode::NOT_FOUND, "CHANNEL_NOT_FOUND"));
    }
    info!("DB: removing channel({channel}) from topic({topic})");
    for reg in regs {
        db.remove_registration(&reg);
    }
    Ok(Reply::Empty)
}

fn topic_tombstone(state: &HttpState, q: &Query) -> Result<Reply, ApiError> {
    let topic = q.get("topic").ok_or(bad_request("MISSING_ARG_TOPIC"))?;
    let node = q.get("node").ok_or(bad_request("MISSING_ARG_NODE"))?;
    info!("DB: setting tombstone for producer@{node} of topic({topic})");
    state.ctx.db.tombstone(topic, node);
    Ok(Reply::Empty)
}

fn keys(regs: Vec<Registration>) -> Vec<String> {
    regs.into_iter().map(|r| r.key).collect()
}

fn sub_keys(regs: Vec<Registration>) -> Vec<String> {
    regs.into_iter().map(|r| r.sub_key).collect()
}

fn json<T: Serialize>(value: &T) -> Reply {
    Reply::Json(go_json(value))
}

/// Serializes like Go's `json.Marshal` (`<`, `>`, `&`, U+2028 and U+2029 escaped).
pub fn go_json<T: Serialize>(value: &T) -> String {
    // Our reply types are plain structs and maps with string keys: serialization
    // cannot fail, and an empty body would be the visible symptom if it ever did.
    to_go_json(value).unwrap_or_default()
}

fn v1_response(status: StatusCode, body: String, is_json: bool) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if is_json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
    }
    headers.insert(
        NSQ_CONTENT_TYPE,
        HeaderValue::from_static(NSQ_CONTENT_TYPE_V1),
    );
    resp
}

fn v1_error(ApiError(status, message): ApiError) -> Response {
    v1_response(status, v1_error_body(message), true)
}

/// `/ping`: nsqlookupd's plain-text decorator sets no NSQ header.
fn plain_text(body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_like_httprouter() {
        assert_eq!(
            ROUTER.allowed_methods("/lookup", "POST").as_deref(),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            ROUTER.allowed_methods("/topic/create", "GET").as_deref(),
            Some("OPTIONS, POST")
        );
        assert_eq!(ROUTER.allowed_methods("/nope", "GET"), None);
    }

    #[test]
    fn path_fixing() {
        assert_eq!(ROUTER.fixed_path("GET", "/ping/").as_deref(), Some("/ping"));
        assert_eq!(ROUTER.fixed_path("GET", "/PING").as_deref(), Some("/ping"));
        assert_eq!(
            ROUTER.fixed_path("GET", "//lookup").as_deref(),
            Some("/lookup")
        );
        assert_eq!(ROUTER.fixed_path("GET", "/topic/create/"), None);
        assert_eq!(
            ROUTER.fixed_path("POST", "/Topic/Create").as_deref(),
            Some("/topic/create")
        );
        assert_eq!(ROUTER.fixed_path("GET", "/nope"), None);
    }
}
