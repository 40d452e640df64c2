//! The Lease elector against the API-server double.

use std::time::Duration;

use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use super::drive;
use crate::fixtures::kube_only_context;
use crate::leader::LeaseElector;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/nsq-operator";

fn elector(ctx: &crate::controller::Context) -> LeaseElector {
    LeaseElector::new(
        Api::<Lease>::namespaced(ctx.client.clone(), "ops"),
        "nsq-operator",
        "me",
        Duration::from_secs(15),
    )
}

fn lease(holder: &str, renewed_secs_ago: i64) -> serde_json::Value {
    let renew = k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago);
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "nsq-operator", "namespace": "ops", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "leaseTransitions": 2}
    })
}

#[tokio::test]
async fn creates_the_lease_when_absent() {
    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let won = drive(api, e.try_acquire_or_renew(), |mut api| async move {
        api.expect_get(LEASE, None).await;
        let (seen, reply) = api
            .expect(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases",
            )
            .await;
        assert_eq!(seen.body["spec"]["holderIdentity"], "me");
        assert_eq!(seen.body["spec"]["leaseDurationSeconds"], 15);
        reply.json(seen.body.clone());
        api
    })
    .await
    .expect("round succeeds");
    assert!(won);
}

#[tokio::test]
async fn a_fresh_lease_of_another_replica_is_respected() {
    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let won = drive(api, e.try_acquire_or_renew(), |mut api| async move {
        api.expect_get(LEASE, Some(lease("other", 2))).await;
        api
    })
    .await
    .expect("round succeeds");
    assert!(!won);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_with_optimistic_concurrency() {
    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let won = drive(api, e.try_acquire_or_renew(), |mut api| async move {
        api.expect_get(LEASE, Some(lease("other", 60))).await;
        let (seen, reply) = api.expect(Method::PUT, LEASE).await;
        assert_eq!(seen.body["metadata"]["resourceVersion"], "7");
        assert_eq!(seen.body["spec"]["holderIdentity"], "me");
        assert_eq!(seen.body["spec"]["leaseTransitions"], 3);
        reply.json(seen.body.clone());
        api
    })
    .await
    .expect("round succeeds");
    assert!(won);
}

#[tokio::test]
async fn losing_the_race_for_an_expired_lease_is_not_an_error() {
    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let won = drive(api, e.try_acquire_or_renew(), |mut api| async move {
        api.expect_get(LEASE, Some(lease("other", 60))).await;
        let (_, reply) = api.expect(Method::PUT, LEASE).await;
        reply.error(409, "Conflict");
        api
    })
    .await
    .expect("round succeeds");
    assert!(!won);
}

#[tokio::test]
async fn the_holder_renews_and_releases() {
    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let e2 = e.clone();
    let won = drive(
        api,
        async move {
            let won = e2.try_acquire_or_renew().await?;
            e2.release().await?;
            Ok::<_, crate::Error>(won)
        },
        |mut api| async move {
            api.expect_get(LEASE, Some(lease("me", 3))).await;
            let (seen, reply) = api.expect(Method::PUT, LEASE).await;
            assert_eq!(
                seen.body["spec"]["leaseTransitions"], 2,
                "no transition on renewal"
            );
            reply.json(seen.body.clone());
            api.expect_get(LEASE, Some(lease("me", 0))).await;
            let (seen, reply) = api.expect(Method::PUT, LEASE).await;
            assert!(seen.body["spec"]
                .get("holderIdentity")
                .is_none_or(|h| h.is_null()));
            reply.json(seen.body.clone());
            api
        },
    )
    .await
    .expect("rounds succeed");
    assert!(won);
}

#[tokio::test]
async fn the_run_loop_reports_leadership_then_its_loss() {
    use crate::leader::{wait_for_leadership, Leadership};
    use tokio::sync::watch;

    let (ctx, api) = kube_only_context();
    let e = elector(&ctx);
    let (state_tx, mut state_rx) = watch::channel(Leadership::Follower);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let runner = tokio::spawn(e.run(Duration::from_millis(10), state_tx, stop_rx));
    let mut watcher = state_rx.clone();
    drive(
        api,
        async move {
            wait_for_leadership(&mut watcher).await.expect("leads");
            let lost = watcher.wait_for(|s| *s == Leadership::Lost).await.is_ok();
            assert!(lost);
        },
        |mut api| async move {
            // Round 1: no lease yet, create it.
            api.expect_get(LEASE, None).await;
            let (seen, reply) = api
                .expect(
                    Method::POST,
                    "/apis/coordination.k8s.io/v1/namespaces/ops/leases",
                )
                .await;
            reply.json(seen.body.clone());
            // Round 2: someone else holds it now (e.g. after a long pause): leadership lost.
            api.expect_get(LEASE, Some(lease("other", 0))).await;
            api
        },
    )
    .await;
    runner.await.expect("elector returns after the loss");
    assert_eq!(*state_rx.borrow_and_update(), Leadership::Lost);
    assert!(wait_for_leadership(&mut state_rx).await.is_err());
}

#[tokio::test]
async fn pod_endpoints_list_ready_pods_by_stable_dns_name() {
    use crate::admin::{NsqdEndpoints, PodEndpoints};
    use crate::resources::test_support::cluster;

    let (ctx, api) = kube_only_context();
    let endpoints = PodEndpoints::new(ctx.client.clone());
    let c = cluster();
    let pod = |name: &str, ready: &str| {
        json!({
            "metadata": {"name": name, "namespace": "ns"},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}
        })
    };
    let list = json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {},
        "items": [pod("demo-nsqd-1", "True"), pod("demo-nsqd-0", "True"), pod("demo-nsqd-2", "False")]
    });
    let addrs = drive(
        api,
        endpoints.nsqd_http_addresses(&c),
        move |mut api| async move {
            let (seen, reply) = api.expect(Method::GET, "/api/v1/namespaces/ns/pods").await;
            let selector = seen
                .param("labelSelector")
                .unwrap_or_default()
                .replace("%3D", "=")
                .replace("%2C", ",");
            assert!(
                selector.contains("app.kubernetes.io/component=nsqd"),
                "{selector}"
            );
            assert!(
                selector.contains("app.kubernetes.io/instance=demo"),
                "{selector}"
            );
            reply.json(list);
            api
        },
    )
    .await
    .expect("lists");
    assert_eq!(
        addrs,
        [
            "demo-nsqd-0.demo-nsqd-headless.ns.svc:4151",
            "demo-nsqd-1.demo-nsqd-headless.ns.svc:4151"
        ]
    );
    assert_eq!(
        endpoints.nsqd_pod_http_address(&c, "demo-nsqd-7"),
        "demo-nsqd-7.demo-nsqd-headless.ns.svc:4151"
    );
}
