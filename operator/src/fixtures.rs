//! Test fixtures: an API-server double on `tower_test::mock::pair` that the test scripts
//! request by request (method, path, query, body asserted in order; replies shaped as the
//! API server would send them), a test [`Context`], and endpoint lists for local processes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::Client;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle, SendResponse};

use crate::admin::{HttpNsqAdmin, NsqAdmin, NsqdEndpoints};
use crate::controller::Context;
use crate::crd::NsqCluster;
use crate::metrics::Metrics;
use crate::resources::DefaultImages;

/// How long the double waits for a request the test expects.
const WAIT: Duration = Duration::from_secs(10);

/// One request as the double saw it.
#[derive(Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Value,
}

impl Seen {
    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a server-side apply by the operator.
    pub fn assert_server_side_apply(&self) {
        assert_eq!(self.method, Method::PATCH, "{} is not a PATCH", self.path);
        assert_eq!(
            self.param("fieldManager"),
            Some(crate::FIELD_MANAGER),
            "{}",
            self.path
        );
        assert_eq!(self.param("force"), Some("true"), "{}", self.path);
    }
}

/// Sends the reply to one request.
pub struct Reply(SendResponse<Response<Body>>);

impl Reply {
    /// 200 with `body`.
    pub fn json(self, body: Value) {
        self.status_json(StatusCode::OK, body);
    }

    /// `status` with `body`.
    pub fn status_json(self, status: StatusCode, body: Value) {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(bytes));
        match response {
            Ok(r) => self.0.send_response(r),
            Err(e) => panic!("building response: {e}"),
        }
    }

    /// A Kubernetes `Status` failure, e.g. 404 NotFound.
    pub fn error(self, code: u16, reason: &str) {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.status_json(
            status,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{reason} (test double)"), "reason": reason, "code": code
            }),
        );
    }
}

/// The API-server double.
pub struct ApiServer(Handle<Request<Body>, Response<Body>>);

impl ApiServer {
    /// The next request; panics when none arrives in time.
    pub async fn next(&mut self) -> (Seen, Reply) {
        let (request, send) = tokio::time::timeout(WAIT, self.0.next_request())
            .await
            .expect("timed out waiting for a request to the API server")
            .expect("the client is gone");
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let query = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let v = v.replace("%2F", "/").replace("%3D", "=");
                (k.to_string(), v.replace("%2C", ","))
            })
            .collect();
        let seen = Seen {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            body,
        };
        (seen, Reply(send))
    }

    /// The next request, asserted to be `method path`.
    pub async fn expect(&mut self, method: Method, path: &str) -> (Seen, Reply) {
        let (seen, reply) = self.next().await;
        assert_eq!(
            (&seen.method, seen.path.as_str()),
            (&method, path),
            "unexpected request {seen:?}"
        );
        (seen, reply)
    }

    /// A server-side apply of `path`, answered by echoing the applied object (what the
    /// API server returns when the apply creates or updates it).
    pub async fn expect_apply(&mut self, path: &str) -> Value {
        let (seen, reply) = self.expect(Method::PATCH, path).await;
        seen.assert_server_side_apply();
        reply.json(seen.body.clone());
        seen.body
    }

    /// A status apply of `path` (the object's path + `/status`); returns the status sent.
    pub async fn expect_status(&mut self, object_path: &str) -> Value {
        let path = format!("{object_path}/status");
        let (seen, reply) = self.expect(Method::PATCH, &path).await;
        seen.assert_server_side_apply();
        let status = seen.body.get("status").cloned().expect("a status object");
        // The API server answers with the whole object; the reconcilers ignore it, so a
        // minimal object every kind of ours can decode is enough.
        let mut segments = object_path.rsplit('/');
        let name = segments.next().unwrap_or_default();
        let namespace = segments.nth(1).unwrap_or_default();
        let mut object = seen.body.clone();
        object["metadata"] = json!({"name": name, "namespace": namespace});
        object["spec"] = json!({"clusterRef": {"name": "demo"}, "topicName": "t"});
        reply.json(object);
        status
    }

    /// An Event with `reason` in namespace `ns` (created, or patched as a series).
    pub async fn expect_event(&mut self, ns: &str, reason: &str) -> Value {
        let (seen, reply) = self.next().await;
        let collection = format!("/apis/events.k8s.io/v1/namespaces/{ns}/events");
        assert!(
            seen.path.starts_with(&collection),
            "expected an event {reason}, got {seen:?}"
        );
        assert_eq!(seen.body["reason"], reason, "event {:?}", seen.body);
        reply.json(seen.body.clone());
        seen.body
    }

    /// A JSON patch of `path` (the finalizer helper), answered with `reply_object`.
    pub async fn expect_json_patch(&mut self, path: &str, reply_object: Value) -> Value {
        let (seen, reply) = self.expect(Method::PATCH, path).await;
        reply.json(reply_object);
        seen.body
    }

    /// A GET of `path`, answered with `object` (or 404 when `None`).
    pub async fn expect_get(&mut self, path: &str, object: Option<Value>) {
        let (_, reply) = self.expect(Method::GET, path).await;
        match object {
            Some(o) => reply.json(o),
            None => reply.error(404, "NotFound"),
        }
    }

    /// A list of `path`, answered with `items`; returns the request (for its query).
    pub async fn expect_list(&mut self, path: &str, items: Vec<Value>) -> Seen {
        let (seen, reply) = self.expect(Method::GET, path).await;
        reply.json(json!({
            "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"},
            "items": items
        }));
        seen
    }

    /// A DELETE of `path`, answered with success; returns the request (its body holds
    /// the delete options).
    pub async fn expect_delete(&mut self, path: &str) -> Seen {
        let (seen, reply) = self.expect(Method::DELETE, path).await;
        reply.json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
        );
        seen
    }

    /// Asserts that no further request arrives within a short grace period.
    pub async fn assert_idle(&mut self) {
        if let Ok(Some((request, _))) =
            tokio::time::timeout(Duration::from_millis(200), self.0.next_request()).await
        {
            panic!(
                "unexpected extra request {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}

/// Fixed address lists, changed by the test (e.g. when it starts another nsqd).
#[derive(Default)]
pub struct StaticEndpoints {
    pub nsqd: Mutex<Vec<String>>,
    pub lookupd: Mutex<Vec<String>>,
}

impl StaticEndpoints {
    pub fn new(nsqd: Vec<String>, lookupd: Vec<String>) -> Arc<Self> {
        Arc::new(StaticEndpoints {
            nsqd: Mutex::new(nsqd),
            lookupd: Mutex::new(lookupd),
        })
    }

    pub fn set_nsqd(&self, nodes: Vec<String>) {
        if let Ok(mut n) = self.nsqd.lock() {
            *n = nodes;
        }
    }
}

#[async_trait]
impl NsqdEndpoints for StaticEndpoints {
    async fn nsqd_http_addresses(&self, _: &NsqCluster) -> crate::Result<Vec<String>> {
        Ok(self.nsqd.lock().map(|n| n.clone()).unwrap_or_default())
    }
    async fn lookupd_http_addresses(&self, _: &NsqCluster) -> crate::Result<Vec<String>> {
        Ok(self.lookupd.lock().map(|n| n.clone()).unwrap_or_default())
    }
    /// Pod `<anything>-<i>` is the i-th nsqd address; others get an unroutable address.
    fn nsqd_pod_http_address(&self, _: &NsqCluster, pod: &str) -> String {
        let ordinal = pod.rsplit('-').next().and_then(|i| i.parse::<usize>().ok());
        let nodes = self.nsqd.lock().map(|n| n.clone()).unwrap_or_default();
        ordinal
            .and_then(|i| nodes.get(i).cloned())
            .unwrap_or_else(|| "127.0.0.1:9".to_string())
    }
}

/// A Context whose Kubernetes client talks to the returned double.
pub fn context(
    admin: Arc<dyn NsqAdmin>,
    endpoints: Arc<dyn NsqdEndpoints>,
) -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Context::new(
        client,
        Reporter {
            controller: "nsq-operator".into(),
            instance: Some("test".into()),
        },
        Metrics::default(),
        admin,
        endpoints,
        DefaultImages::default(),
        Duration::from_secs(30),
    );
    (Arc::new(ctx), ApiServer(handle))
}

/// A Context for reconcilers that never reach NSQ.
pub fn kube_only_context() -> (Arc<Context>, ApiServer) {
    context(
        Arc::new(HttpNsqAdmin::default()),
        StaticEndpoints::new(Vec::new(), Vec::new()),
    )
}

/// Runs `script` against the double while `work` runs; returns `work`'s output after both
/// finished (a failed assertion in the script fails the test).
pub async fn with_api<S, W, T>(api: ApiServer, script: S, work: W) -> T
where
    S: FnOnce(ApiServer) -> futures::future::BoxFuture<'static, ApiServer> + Send + 'static,
    W: std::future::Future<Output = T>,
{
    let script = tokio::spawn(script(api));
    let out = tokio::time::timeout(WAIT, work).await;
    let mut api = match tokio::time::timeout(WAIT, script).await {
        Ok(Ok(api)) => api,
        Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!("the API script did not finish"),
    };
    match out {
        Ok(out) => {
            api.assert_idle().await;
            out
        }
        // The work waits for an answer the script never gave: name the request.
        Err(_) => {
            api.assert_idle().await;
            panic!("the reconcile did not finish")
        }
    }
}
