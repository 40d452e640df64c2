//! `GET /metrics`: the registration database in Prometheus exposition format.
//!
//! The only label is `producer` (`<broadcast_address>:<http_port>`, the name nsqlookupd
//! tombstones by) on the last-ping age, so series count is one per registered nsqd plus
//! about a dozen fixed series (monitoring/README.md has the full table).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use nsq_protocol::exposition::{self, Exposition, Format, Kind};

use crate::http::HttpState;
use crate::registration_db::{unix_nanos_now, Category, RegistrationDb};

/// The `/metrics` response: Prometheus text, or OpenMetrics when `accept` offers it.
pub fn respond(state: &HttpState, accept: Option<&str>) -> Response {
    let format = Format::negotiate(accept);
    let body = render(
        &state.ctx.db,
        state.tombstone_lifetime,
        state.start_time,
        format,
    );
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

/// Renders every metric; `start_time` is when the server started, Unix seconds.
pub fn render(
    db: &RegistrationDb,
    tombstone_lifetime: Duration,
    start_time: i64,
    format: Format,
) -> String {
    let mut e = Exposition::new(format);
    let now = unix_nanos_now();
    let peers = db.find_producers(Category::Client, "", "");
    let topics = db.find_registrations(Category::Topic, "*", "");
    let channels = db.find_registrations(Category::Channel, "*", "*");
    let tombstones: usize = topics
        .iter()
        .map(|t| {
            db.find_producers(Category::Topic, &t.key, "")
                .iter()
                .filter(|p| p.is_tombstoned(tombstone_lifetime))
                .count()
        })
        .sum();

    e.family(
        "nsq_lookupd_producers",
        Kind::Gauge,
        "nsqd connections identified to this nsqlookupd.",
    );
    e.sample(&[], peers.len() as f64);
    e.family(
        "nsq_lookupd_topics",
        Kind::Gauge,
        "Topic registrations (with or without producers).",
    );
    e.sample(&[], topics.len() as f64);
    e.family(
        "nsq_lookupd_channels",
        Kind::Gauge,
        "Channel registrations (with or without producers).",
    );
    e.sample(&[], channels.len() as f64);
    e.family(
        "nsq_lookupd_tombstones",
        Kind::Gauge,
        "Topic producers currently tombstoned (within --tombstone-lifetime).",
    );
    e.sample(&[], tombstones as f64);

    // Two connections from one nsqd (a reconnect before the old one is dropped) share a
    // producer name: one series per name, the most recent ping wins.
    let mut last_ping: BTreeMap<String, i64> = BTreeMap::new();
    for p in &peers {
        let peer = p.peer();
        let name = format!("{}:{}", peer.broadcast_address, peer.http_port);
        let at = last_ping.entry(name).or_insert(i64::MIN);
        *at = (*at).max(peer.last_update());
    }
    e.family(
        "nsq_lookupd_producer_last_ping_age_seconds",
        Kind::Gauge,
        "Seconds since the producer's last PING or IDENTIFY.",
    );
    for (name, at) in &last_ping {
        let age = now.saturating_sub(*at).max(0) as f64 / 1e9;
        e.sample(&[("producer", name)], age);
    }

    e.family(
        "nsq_lookupd_start_time_seconds",
        Kind::Gauge,
        "When this nsqlookupd started, Unix seconds.",
    );
    e.sample(&[], start_time as f64);
    e.family("nsq_lookupd_build", Kind::Info, "Build information.");
    e.sample(
        &[
            ("version", nsq_protocol::NSQ_VERSION),
            ("implementation", "rust"),
            ("crate_version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    exposition::process_metrics(&mut e);
    e.finish()
}
