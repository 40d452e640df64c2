//! Reconciler tests: the Kubernetes API is the scripted double of [`crate::fixtures`];
//! NsqTopic/NsqChannel tests talk to real nsqd and nsqlookupd servers started in-process.

mod channel;
mod cluster;
mod drain;
mod leader;
mod nsq;
mod topic;

use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

use crate::fixtures::{with_api, ApiServer};

/// Runs `work` (a reconcile) while `script` plays the API server.
pub async fn drive<T, F, Fut>(
    api: ApiServer,
    work: impl std::future::Future<Output = T>,
    script: F,
) -> T
where
    F: FnOnce(ApiServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ApiServer> + Send + 'static,
{
    with_api(api, move |api| script(api).boxed(), work).await
}

/// `obj` as the API server hands over a declared NsqTopic/NsqChannel: in namespace `ns`,
/// with a uid, `generation`, and the operator's finalizer already added.
pub fn declared<K: Resource>(mut obj: K, generation: i64, finalizer: &str) -> K {
    let name = obj.meta().name.clone().unwrap_or_default();
    let meta = obj.meta_mut();
    meta.namespace = Some("ns".into());
    meta.uid = Some(format!("uid-{name}"));
    meta.generation = Some(generation);
    meta.finalizers = Some(vec![finalizer.to_string()]);
    obj
}

/// `obj` with its deletion started.
pub fn deleting<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().deletion_timestamp = Some(Time(Timestamp::now()));
    obj
}

/// The condition of type `type_` in a status the reconciler wrote (it must be there).
pub fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or_else(|| panic!("condition {type_} in {status}"))
}

/// Expects the removal of `finalizer` from `obj` at `path`: the finalizer helper's JSON
/// patch testing then removing our entry, answered with the object without finalizers.
pub async fn expect_finalizer_removed<K>(api: &mut ApiServer, path: &str, obj: &K, finalizer: &str)
where
    K: Resource + Clone + serde::Serialize,
{
    let mut after = obj.clone();
    after.meta_mut().finalizers = None;
    let patch = api
        .expect_json_patch(path, serde_json::to_value(&after).expect("json"))
        .await;
    assert_eq!(patch[0]["op"], "test");
    assert_eq!(patch[0]["value"], finalizer);
    assert_eq!(patch[1]["op"], "remove");
}
