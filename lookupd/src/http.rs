//! The HTTP API (conformance §5.2, conventions §2.1): routing as nsqlookupd's
//! httprouter does it (405 with `Allow`, automatic OPTIONS, trailing-slash and
//! case-fixing redirects), V1 responses, and one handler per endpoint.
//!
//! Routing is done here rather than with axum's router so that the details clients can
//! observe (HEAD is not GET, the `Allow` list, the 404/405 bodies) match nsqlookupd.
//! `GET /metrics` (not in nsqlookupd) is the Prometheus exposition of [`crate::metrics`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use nsq_protocol::lookup::{
    ChannelsResponse, ErrorResponse, InfoResponse, LookupResponse, Node, NodesResponse,
    TopicsResponse,
};
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};
use serde::Serialize;
use tracing::info;

use crate::protocol_v1::Context;
use crate::query::{percent_decode_path, Query};
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
const ROUTES: &[(&str, &str, Endpoint)] = &[
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
];

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
    let path = percent_decode_path(req.uri().path());
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
    let m = method.as_str();
    if let Some(&(_, _, endpoint)) = ROUTES.iter().find(|(rm, rp, _)| *rm == m && *rp == path) {
        return handle(state, endpoint, raw_query.unwrap_or(""), accept);
    }
    let method_has_routes = ROUTES.iter().any(|(rm, _, _)| *rm == m);
    if method_has_routes && method != Method::CONNECT && path != "/" {
        if let Some(fixed) = fixed_path(m, path) {
            return redirect(method, fixed, raw_query);
        }
    }
    let allowed = allowed_methods(path, m);
    if method == Method::OPTIONS {
        if let Some(allow) = allowed {
            return with_allow(Response::new(Body::empty()), &allow);
        }
    } else if let Some(allow) = allowed {
        let resp = v1_error(ApiError(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ));
        return with_allow(resp, &allow);
    }
    v1_error(ApiError(StatusCode::NOT_FOUND, "NOT_FOUND"))
}

/// httprouter's `Allow` list: the other methods routed at `path`, plus OPTIONS, sorted.
fn allowed_methods(path: &str, method: &str) -> Option<String> {
    let mut allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|(rm, rp, _)| *rp == path && *rm != method)
        .map(|(rm, _, _)| *rm)
        .collect();
    if allowed.is_empty() {
        return None;
    }
    allowed.push("OPTIONS");
    allowed.sort_unstable();
    allowed.dedup();
    Some(allowed.join(", "))
}

/// httprouter's redirect target: the cleaned path, matched case-insensitively and with
/// or without a trailing slash, against this method's routes.
fn fixed_path(method: &str, path: &str) -> Option<&'static str> {
    let cleaned = clean_path(path);
    let trimmed = match cleaned.strip_suffix('/') {
        Some(t) if !t.is_empty() => t,
        _ => cleaned.as_str(),
    };
    ROUTES
        .iter()
        .find(|(rm, rp, _)| *rm == method && rp.eq_ignore_ascii_case(trimmed))
        .map(|(_, rp, _)| *rp)
        .filter(|rp| *rp != path)
}

/// Go's `path.Clean` keeping a trailing slash, rooted at `/` (httprouter's `CleanPath`).
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out.len() > 1 {
        out.push('/');
    }
    out
}

fn redirect(method: &Method, to: &str, raw_query: Option<&str>) -> Response {
    let mut location = to.to_string();
    if let Some(q) = raw_query {
        location.push('?');
        location.push_str(q);
    }
    let (status, body) = if method == Method::GET {
        let href = location
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        (
            StatusCode::MOVED_PERMANENTLY,
            format!("<a href=\"{href}\">Moved Permanently</a>.\n\n"),
        )
    } else {
        (StatusCode::TEMPORARY_REDIRECT, String::new())
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if method == Method::GET {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
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

/// Serializes like Go's `json.Marshal`: `<`, `>`, `&`, U+2028 and U+2029 are escaped.
/// Those characters can only occur inside strings, so escaping the output is safe.
pub fn go_json<T: Serialize>(value: &T) -> String {
    // Our reply types are plain structs and maps with string keys: serialization
    // cannot fail, and an empty body would be the visible symptom if it ever did.
    let raw = serde_json::to_string(value).unwrap_or_default();
    if !raw.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return raw;
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

const X_NSQ_CONTENT_TYPE: &str = "x-nsq-content-type";

fn v1_response(status: StatusCode, body: String, is_json: bool) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if is_json {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    headers.insert(
        X_NSQ_CONTENT_TYPE,
        HeaderValue::from_static("nsq; version=1.0"),
    );
    resp
}

fn v1_error(ApiError(status, message): ApiError) -> Response {
    let body = go_json(&ErrorResponse {
        message: message.to_string(),
    });
    v1_response(status, body, true)
}

/// `/ping`: nsqlookupd's plain-text decorator sets no NSQ header.
fn plain_text(body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html() {
        let v = ErrorResponse {
            message: "<a&b>\u{2028}".into(),
        };
        assert_eq!(go_json(&v), r#"{"message":"\u003ca\u0026b\u003e\u2028"}"#);
    }

    #[test]
    fn allow_lists_like_httprouter() {
        assert_eq!(
            allowed_methods("/lookup", "POST").as_deref(),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            allowed_methods("/topic/create", "GET").as_deref(),
            Some("OPTIONS, POST")
        );
        assert_eq!(allowed_methods("/nope", "GET"), None);
    }

    #[test]
    fn path_fixing() {
        assert_eq!(clean_path("//a/./b/../c/"), "/a/c/");
        assert_eq!(clean_path(""), "/");
        assert_eq!(fixed_path("GET", "/ping/"), Some("/ping"));
        assert_eq!(fixed_path("GET", "/PING"), Some("/ping"));
        assert_eq!(fixed_path("GET", "//lookup"), Some("/lookup"));
        assert_eq!(fixed_path("GET", "/topic/create/"), None);
        assert_eq!(fixed_path("POST", "/Topic/Create"), Some("/topic/create"));
        assert_eq!(fixed_path("GET", "/nope"), None);
    }
}
