//! NsqCluster reconciler against the API-server double.

use std::sync::Arc;

use futures::FutureExt;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::condition;
use crate::controller::cluster::{reconcile, RESYNC};
use crate::crd::NsqCluster;
use crate::fixtures::{kube_only_context, with_api, ApiServer};
use crate::resources::test_support::cluster;

const CORE: &str = "/api/v1/namespaces/ns";
const APPS: &str = "/apis/apps/v1/namespaces/ns";
const POLICY: &str = "/apis/policy/v1/namespaces/ns";
const SM: &str = "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors/demo";
const CLUSTER: &str = "/apis/nsq.rustnsq.dev/v1alpha1/namespaces/ns/nsqclusters/demo";
pub(super) const JOBS: &str = "/apis/batch/v1/namespaces/ns/jobs";
pub(super) const CLAIMS: &str = "/api/v1/namespaces/ns/persistentvolumeclaims";
pub(super) const PODS: &str = "/api/v1/namespaces/ns/pods";

/// What the API server returns for an applied StatefulSet: the object plus a status —
/// just created (not yet observed) when `ready` is 0, else settled with `ready` pods.
pub(super) fn with_sts_status(mut sts: Value, ready: i32) -> Value {
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(0);
    sts["metadata"]["generation"] = json!(1);
    if ready == 0 {
        sts["status"] = json!({"replicas": 0});
        return sts;
    }
    sts["status"] = json!({
        "observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
        "updatedReplicas": replicas, "currentRevision": "r1", "updateRevision": "r1"
    });
    sts
}

/// Everything one pass applies, in order; returns (lookupd sts, nsqd sts, status sent).
struct Pass {
    lookupd: Value,
    nsqd: Value,
    status: Value,
}

async fn expect_sts(api: &mut ApiServer, name: &str, ready: i32) -> Value {
    let (seen, reply) = api
        .expect(Method::PATCH, &format!("{APPS}/statefulsets/{name}"))
        .await;
    seen.assert_server_side_apply();
    reply.json(with_sts_status(seen.body.clone(), ready));
    seen.body
}

/// Every child up to the nsqd PodDisruptionBudget; returns (lookupd sts, nsqd sts).
pub(super) async fn expect_children(api: &mut ApiServer, ready: i32) -> (Value, Value) {
    let headless = api
        .expect_apply(&format!("{CORE}/services/demo-lookupd-headless"))
        .await;
    assert_eq!(headless["spec"]["clusterIP"], "None");
    api.expect_apply(&format!("{CORE}/services/demo-lookupd"))
        .await;
    let lookupd = expect_sts(api, "demo-lookupd", ready).await;
    api.expect_apply(&format!("{POLICY}/poddisruptionbudgets/demo-lookupd"))
        .await;
    api.expect_apply(&format!("{CORE}/services/demo-nsqd-headless"))
        .await;
    api.expect_apply(&format!("{CORE}/services/demo-nsqd"))
        .await;
    let nsqd = expect_sts(api, "demo-nsqd", ready).await;
    api.expect_apply(&format!("{POLICY}/poddisruptionbudgets/demo-nsqd"))
        .await;
    (lookupd, nsqd)
}

/// The drain pass of a cluster with no drain Job and no claim beyond its size (here: no
/// claim at all).
pub(super) async fn expect_no_drains(api: &mut ApiServer) {
    api.expect_list(JOBS, Vec::new()).await;
    api.expect_list(CLAIMS, Vec::new()).await;
}

/// The ServiceMonitor (deleted, absent) and the status; returns the status written.
pub(super) async fn expect_finish(api: &mut ApiServer) -> Value {
    let (_, reply) = api.expect(Method::DELETE, SM).await;
    reply.error(404, "NotFound");
    api.expect_status(CLUSTER).await
}

async fn expect_pass(api: &mut ApiServer, ready: i32, sm_enabled: bool) -> Pass {
    let (lookupd, nsqd) = expect_children(api, ready).await;
    expect_no_drains(api).await;
    let status = if sm_enabled {
        api.expect_apply(SM).await;
        api.expect_status(CLUSTER).await
    } else {
        expect_finish(api).await
    };
    Pass {
        lookupd,
        nsqd,
        status,
    }
}

#[tokio::test]
async fn creates_every_child_from_scratch_with_owner_refs_and_reports_progress() {
    let (v, result) = run_pass(cluster(), |mut api| async move {
        let pass = expect_pass(&mut api, 0, false).await;
        (
            api,
            json!({"lookupd": pass.lookupd, "nsqd": pass.nsqd, "status": pass.status}),
        )
    })
    .await;
    let action = result.expect("reconcile succeeds");
    let pass = Pass {
        lookupd: v["lookupd"].clone(),
        nsqd: v["nsqd"].clone(),
        status: v["status"].clone(),
    };
    assert_eq!(action, Action::requeue(RESYNC));
    for obj in [&pass.lookupd, &pass.nsqd] {
        let owner = &obj["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "NsqCluster");
        assert_eq!(owner["uid"], "uid-1");
        assert_eq!(owner["controller"], true);
    }
    let args = pass.nsqd["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(args.as_array().expect("args").contains(&json!(
        "--broadcast-address=$(POD_NAME).demo-nsqd-headless.ns.svc"
    )));
    assert_eq!(
        pass.nsqd["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert_eq!(
        pass.nsqd["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenScaled": "Retain", "whenDeleted": "Retain"})
    );
    assert_eq!(condition(&pass.status, "Ready")["status"], "False");
    assert_eq!(condition(&pass.status, "Progressing")["status"], "True");
    assert_eq!(condition(&pass.status, "Degraded")["status"], "False");
    assert_eq!(pass.status["nsqdReady"], "0/3");
    assert_eq!(pass.status["observedGeneration"], 1);
    assert_eq!(
        pass.status["lookupdHttpAddress"],
        "demo-lookupd.ns.svc:4161"
    );
}

/// Runs one reconcile of `c` with the script `f`, returning what the script returned.
pub(super) async fn run_pass<F, Fut>(c: NsqCluster, f: F) -> (Value, Result<Action, crate::Error>)
where
    F: FnOnce(ApiServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (ApiServer, Value)> + Send + 'static,
{
    let (ctx, api) = kube_only_context();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let result = with_api(
        api,
        move |api| {
            async move {
                let (api, v) = f(api).await;
                let _ = tx.send(v);
                api
            }
            .boxed()
        },
        reconcile(Arc::new(c), ctx),
    )
    .await;
    (rx.await.expect("script value"), result)
}

#[tokio::test]
async fn becoming_ready_sets_conditions_observed_generation_and_an_event() {
    let mut c = cluster();
    c.metadata.generation = Some(4);
    let (status, result) = run_pass(c, |mut api| async move {
        let pass = expect_pass(&mut api, 3, false).await;
        api.expect_event("ns", "ClusterReady").await;
        (api, pass.status)
    })
    .await;
    result.expect("reconcile succeeds");
    let ready = condition(&status, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["observedGeneration"], 4);
    assert_eq!(status["observedGeneration"], 4);
    assert_eq!(status["nsqdReady"], "3/3");
    assert_eq!(status["readyLookupd"], 3);
    assert_eq!(
        status["nsqdAddresses"][2],
        "demo-nsqd-2.demo-nsqd-headless.ns.svc:4150"
    );
}

#[tokio::test]
async fn a_spec_change_is_applied_to_the_statefulsets() {
    let mut c = cluster();
    c.spec.nsqd.image = Some("example/nsqd:2".into());
    c.spec.nsqd.settings.mem_queue_size = Some(500);
    c.spec.nsqd.replicas = 4;
    c.spec.lookupd.replicas = 2;
    let (nsqd, result) = run_pass(c, |mut api| async move {
        let pass = expect_pass(&mut api, 0, false).await;
        assert_eq!(pass.lookupd["spec"]["replicas"], 2);
        (api, pass.nsqd)
    })
    .await;
    result.expect("reconcile succeeds");
    assert_eq!(nsqd["spec"]["replicas"], 4);
    let container = &nsqd["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example/nsqd:2");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--mem-queue-size=500"));
    assert_eq!(
        args.iter()
            .filter(|a| a.starts_with("--lookupd-tcp-address="))
            .count(),
        2
    );
    assert_eq!(nsqd["spec"]["updateStrategy"]["type"], "RollingUpdate");
}

#[tokio::test]
async fn drifted_or_deleted_children_are_reapplied_in_full_with_force() {
    // A user scaled demo-nsqd to 1 and deleted demo-nsqd-headless: the watch on owned
    // objects triggers a reconcile, which re-applies the complete desired objects with
    // force=true, taking the fields back.
    let (bodies, result) = run_pass(cluster(), |mut api| async move {
        let pass = expect_pass(&mut api, 3, false).await;
        api.expect_event("ns", "ClusterReady").await;
        (api, pass.nsqd)
    })
    .await;
    result.expect("reconcile succeeds");
    assert_eq!(bodies["spec"]["replicas"], 3);
    assert_eq!(bodies["spec"]["serviceName"], "demo-nsqd-headless");
}

#[tokio::test]
async fn service_monitor_and_disabled_pdb() {
    let mut c = cluster();
    c.spec.metrics.service_monitor.enabled = true;
    c.spec.nsqd.pdb.enabled = false;
    let (sm, result) = run_pass(c, |mut api| async move {
        api.expect_apply(&format!("{CORE}/services/demo-lookupd-headless"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-lookupd"))
            .await;
        expect_sts(&mut api, "demo-lookupd", 0).await;
        api.expect_apply(&format!("{POLICY}/poddisruptionbudgets/demo-lookupd"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-nsqd-headless"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-nsqd"))
            .await;
        expect_sts(&mut api, "demo-nsqd", 0).await;
        let (_, reply) = api
            .expect(
                Method::DELETE,
                &format!("{POLICY}/poddisruptionbudgets/demo-nsqd"),
            )
            .await;
        reply.json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        expect_no_drains(&mut api).await;
        let sm = api.expect_apply(SM).await;
        api.expect_status(CLUSTER).await;
        (api, sm)
    })
    .await;
    result.expect("reconcile succeeds");
    assert_eq!(sm["kind"], "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
}

#[tokio::test]
async fn a_missing_service_monitor_api_is_reported_not_fatal() {
    let mut c = cluster();
    c.spec.metrics.service_monitor.enabled = true;
    let (_, result) = run_pass(c, |mut api| async move {
        api.expect_apply(&format!("{CORE}/services/demo-lookupd-headless"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-lookupd"))
            .await;
        expect_sts(&mut api, "demo-lookupd", 3).await;
        api.expect_apply(&format!("{POLICY}/poddisruptionbudgets/demo-lookupd"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-nsqd-headless"))
            .await;
        api.expect_apply(&format!("{CORE}/services/demo-nsqd"))
            .await;
        expect_sts(&mut api, "demo-nsqd", 3).await;
        api.expect_apply(&format!("{POLICY}/poddisruptionbudgets/demo-nsqd"))
            .await;
        expect_no_drains(&mut api).await;
        let (_, reply) = api.expect(Method::PATCH, SM).await;
        reply.error(404, "NotFound");
        api.expect_event("ns", "ServiceMonitorUnavailable").await;
        api.expect_status(CLUSTER).await;
        api.expect_event("ns", "ClusterReady").await;
        (api, Value::Null)
    })
    .await;
    result.expect("reconcile succeeds without the ServiceMonitor API");
}

#[tokio::test]
async fn an_api_error_fails_the_reconcile_for_a_retry() {
    let (_, result) = run_pass(cluster(), |mut api| async move {
        let (_, reply) = api
            .expect(
                Method::PATCH,
                &format!("{CORE}/services/demo-lookupd-headless"),
            )
            .await;
        reply.error(500, "InternalError");
        (api, Value::Null)
    })
    .await;
    let err = result.expect_err("the reconcile fails");
    assert_eq!(err.metric_label(), "kube");
}
