//! [`HttpNsqAdmin`]: the real [`NsqAdmin`], plain HTTP/1.1 to the pods' HTTP ports through
//! hyper-util's pooled client, with a per-request timeout.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use nsq_protocol::lookup::ErrorResponse;
use nsq_protocol::stats::{StatsResponse, TopicStats};

use super::{AdminError, NsqAdmin};

/// Calls nsqd and nsqlookupd over HTTP.
#[derive(Clone)]
pub struct HttpNsqAdmin {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Default for HttpNsqAdmin {
    fn default() -> Self {
        HttpNsqAdmin::new(Duration::from_secs(5))
    }
}

impl HttpNsqAdmin {
    /// A client whose every request (connect included) is bounded by `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        HttpNsqAdmin {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
        }
    }

    /// One request; returns the body of a 2xx reply.
    async fn call(
        &self,
        method: http::Method,
        addr: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Bytes, AdminError> {
        let uri = format!("http://{addr}{path}{}", encode_query(query));
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::ACCEPT, "application/vnd.nsq; version=1.0")
            .body(Empty::<Bytes>::new())
            .map_err(|e| AdminError::Transport {
                addr: addr.to_string(),
                message: e.to_string(),
            })?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| AdminError::Transport {
                        addr: addr.to_string(),
                        message: error_chain(&e),
                    })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| AdminError::Transport {
                    addr: addr.to_string(),
                    message: e.to_string(),
                })?
                .to_bytes();
            Ok::<_, AdminError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| AdminError::Timeout {
                addr: addr.to_string(),
            })??;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_slice::<ErrorResponse>(&body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
        Err(AdminError::Status {
            addr: addr.to_string(),
            path: path.to_string(),
            status: status.as_u16(),
            message,
        })
    }

    async fn post(&self, addr: &str, path: &str, query: &[(&str, &str)]) -> Result<(), AdminError> {
        self.call(http::Method::POST, addr, path, query)
            .await
            .map(drop)
    }

    /// A POST where "not found" means the goal (absence) is already reached.
    async fn post_delete(
        &self,
        addr: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(), AdminError> {
        match self.post(addr, path, query).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `?k=v&k=v` with RFC 3986 percent-encoding (topic names may carry `#ephemeral`).
fn encode_query(query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[async_trait]
impl NsqAdmin for HttpNsqAdmin {
    async fn node_stats(&self, nsqd: &str) -> Result<StatsResponse, AdminError> {
        let query = [
            ("format", "json"),
            ("include_clients", "false"),
            ("include_mem", "false"),
        ];
        let body = self.call(http::Method::GET, nsqd, "/stats", &query).await?;
        serde_json::from_slice(&body).map_err(|e| AdminError::Decode {
            addr: nsqd.to_string(),
            path: "/stats".into(),
            message: e.to_string(),
        })
    }

    async fn topic_stats(
        &self,
        nsqd: &str,
        topic: &str,
        channel: Option<&str>,
    ) -> Result<Option<TopicStats>, AdminError> {
        let mut query = vec![
            ("format", "json"),
            ("topic", topic),
            ("include_clients", "false"),
            ("include_mem", "false"),
        ];
        if let Some(c) = channel {
            query.push(("channel", c));
        }
        let body = self.call(http::Method::GET, nsqd, "/stats", &query).await?;
        let stats: StatsResponse =
            serde_json::from_slice(&body).map_err(|e| AdminError::Decode {
                addr: nsqd.to_string(),
                path: "/stats".into(),
                message: e.to_string(),
            })?;
        Ok(stats
            .topics
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.topic_name == topic))
    }

    async fn create_topic(&self, nsqd: &str, topic: &str) -> Result<(), AdminError> {
        self.post(nsqd, "/topic/create", &[("topic", topic)]).await
    }

    async fn delete_topic(&self, nsqd: &str, topic: &str) -> Result<(), AdminError> {
        self.post_delete(nsqd, "/topic/delete", &[("topic", topic)])
            .await
    }

    async fn set_topic_paused(
        &self,
        nsqd: &str,
        topic: &str,
        paused: bool,
    ) -> Result<(), AdminError> {
        let path = if paused {
            "/topic/pause"
        } else {
            "/topic/unpause"
        };
        self.post(nsqd, path, &[("topic", topic)]).await
    }

    async fn create_channel(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError> {
        self.post(
            nsqd,
            "/channel/create",
            &[("topic", topic), ("channel", channel)],
        )
        .await
    }

    async fn delete_channel(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError> {
        self.post_delete(
            nsqd,
            "/channel/delete",
            &[("topic", topic), ("channel", channel)],
        )
        .await
    }

    async fn set_channel_paused(
        &self,
        nsqd: &str,
        topic: &str,
        channel: &str,
        paused: bool,
    ) -> Result<(), AdminError> {
        let path = if paused {
            "/channel/pause"
        } else {
            "/channel/unpause"
        };
        self.post(nsqd, path, &[("topic", topic), ("channel", channel)])
            .await
    }

    async fn lookupd_create_topic(&self, lookupd: &str, topic: &str) -> Result<(), AdminError> {
        self.post(lookupd, "/topic/create", &[("topic", topic)])
            .await
    }

    async fn lookupd_delete_topic(&self, lookupd: &str, topic: &str) -> Result<(), AdminError> {
        self.post_delete(lookupd, "/topic/delete", &[("topic", topic)])
            .await
    }

    async fn lookupd_create_channel(
        &self,
        lookupd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError> {
        self.post(
            lookupd,
            "/channel/create",
            &[("topic", topic), ("channel", channel)],
        )
        .await
    }

    async fn lookupd_delete_channel(
        &self,
        lookupd: &str,
        topic: &str,
        channel: &str,
    ) -> Result<(), AdminError> {
        self.post_delete(
            lookupd,
            "/channel/delete",
            &[("topic", topic), ("channel", channel)],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_percent_encoded() {
        assert_eq!(
            encode_query(&[("topic", "a#ephemeral"), ("channel", "b c")]),
            "?topic=a%23ephemeral&channel=b%20c"
        );
        assert_eq!(encode_query(&[]), "");
    }

    #[tokio::test]
    async fn connection_refused_is_a_transport_error() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let admin = HttpNsqAdmin::new(Duration::from_secs(2));
        let err = admin
            .create_topic(&format!("127.0.0.1:{port}"), "t")
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, AdminError::Transport { .. }), "{err}");
    }
}
