//! NsqTopic reconciler: API-server double for Kubernetes, real nsqd/nsqlookupd for NSQ.

use std::sync::Arc;

use kube::runtime::controller::Action;
use serde_json::json;

use super::nsq::{cluster_json, demo_ref, Fleet, CLUSTER_PATH};
use super::{condition, declared, deleting, drive};
use crate::controller::topic::{reconcile, FINALIZER};
use crate::crd::{DeletionPolicy, NsqTopic, NsqTopicSpec};
use crate::fixtures::ApiServer;

const TOPICS: &str = "/apis/nsq.rustnsq.dev/v1alpha1/namespaces/ns/nsqtopics";

fn topic(name: &str, policy: DeletionPolicy, paused: bool) -> NsqTopic {
    let t = NsqTopic::new(
        name,
        NsqTopicSpec {
            cluster_ref: demo_ref(),
            topic_name: None,
            paused,
            deletion_policy: policy,
        },
    );
    declared(t, 1, FINALIZER)
}

fn path(name: &str) -> String {
    format!("{TOPICS}/{name}")
}

/// Expects the finalizer's removal.
async fn expect_finalizer_removed(api: &mut ApiServer, t: &NsqTopic) {
    let p = path(&t.metadata.name.clone().unwrap_or_default());
    super::expect_finalizer_removed(api, &p, t, FINALIZER).await;
}

#[tokio::test]
async fn first_reconcile_only_adds_the_finalizer() {
    let fleet = Fleet::start(1).await;
    let (ctx, api) = fleet.context();
    let mut t = topic("orders", DeletionPolicy::Delete, false);
    t.metadata.finalizers = None;
    let returned =
        serde_json::to_value(topic("orders", DeletionPolicy::Delete, false)).expect("json");
    let action = drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            let patch = api.expect_json_patch(&path("orders"), returned).await;
            assert_eq!(
                patch,
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": null},
                    {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
                ])
            );
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    assert_eq!(action, Action::await_change());
    assert_eq!(
        fleet.nsqds[0].has("orders", None).await,
        None,
        "nothing created before the finalizer"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn topic_is_created_on_every_node_and_in_lookupd_then_paused_then_on_a_new_node() {
    let mut fleet = Fleet::start(2).await;
    let (ctx, api) = fleet.context();
    let nodes: Vec<String> = fleet.nsqds.iter().map(|n| n.http()).collect();

    // 1. Created everywhere.
    let t = topic("orders", DeletionPolicy::Delete, false);
    let expected_nodes = nodes.clone();
    let action = drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("orders")).await;
            assert_eq!(status["nodeCount"], 2);
            assert_eq!(status["nodesReady"], "2/2");
            assert_eq!(status["topicName"], "orders");
            let mut listed: Vec<String> =
                serde_json::from_value(status["nodes"].clone()).expect("nodes");
            listed.sort();
            let mut expected = expected_nodes;
            expected.sort();
            assert_eq!(listed, expected);
            assert_eq!(condition(&status, "Ready")["status"], "True");
            assert_eq!(condition(&status, "Ready")["observedGeneration"], 1);
            assert_eq!(status["observedGeneration"], 1);
            let ev = api.expect_event("ns", "TopicCreated").await;
            assert!(ev["note"]
                .as_str()
                .unwrap_or_default()
                .contains("created topic orders"));
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));
    for n in &fleet.nsqds {
        assert_eq!(
            n.has("orders", None).await,
            Some(false),
            "topic on {}",
            n.http()
        );
    }
    assert!(fleet.lookupd.topics().await.contains(&"orders".to_string()));

    // 2. Pause propagates (a new Context: the event recorder's series cache starts empty).
    let (ctx, api) = fleet.context();
    let paused = topic("orders", DeletionPolicy::Delete, true);
    drive(
        api,
        reconcile(Arc::new(paused.clone()), ctx),
        |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("orders")).await;
            assert_eq!(condition(&status, "Ready")["status"], "True");
            api.expect_event("ns", "Paused").await;
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    for n in &fleet.nsqds {
        assert_eq!(
            n.has("orders", None).await,
            Some(true),
            "paused on {}",
            n.http()
        );
    }

    // 3. A node that appears later gets the topic, paused; the others are left alone.
    fleet.add_node().await;
    let newcomer = fleet.nsqds[2].http();
    let (ctx, api) = fleet.context();
    drive(
        api,
        reconcile(Arc::new(paused), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("orders")).await;
            assert_eq!(status["nodeCount"], 3);
            let created = api.expect_event("ns", "TopicCreated").await;
            assert_eq!(
                created["note"],
                format!("created topic orders on {newcomer}"),
                "only the new node"
            );
            let paused = api.expect_event("ns", "Paused").await;
            assert_eq!(paused["note"], format!("paused topic orders on {newcomer}"));
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    assert_eq!(fleet.nsqds[2].has("orders", None).await, Some(true));
    fleet.shutdown().await;
}

#[tokio::test]
async fn status_reports_depth_and_channels() {
    let fleet = Fleet::start(2).await;
    fleet.nsqds[0].publish("metrics", b"one").await;
    fleet.nsqds[0].publish("metrics", b"two").await;
    fleet.nsqds[1].publish("metrics", b"three").await;
    let (ctx, api) = fleet.context();
    let t = topic("metrics", DeletionPolicy::Delete, false);
    drive(api, reconcile(Arc::new(t), ctx), |mut api| async move {
        api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
        let status = api.expect_status(&path("metrics")).await;
        assert_eq!(status["depth"], 3);
        assert_eq!(status["messageCount"], 3);
        assert_eq!(status["channelCount"], 0);
        api
    })
    .await
    .expect("reconcile succeeds");
    fleet.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_node_degrades_the_status_and_fails_for_a_retry() {
    let fleet = Fleet::start(1).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    fleet.endpoints.set_nsqd(vec![fleet.nsqds[0].http(), dead]);
    let (ctx, api) = fleet.context();
    let t = topic("orders", DeletionPolicy::Delete, false);
    let err = drive(api, reconcile(Arc::new(t), ctx), |mut api| async move {
        api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
        let status = api.expect_status(&path("orders")).await;
        assert_eq!(status["nodeCount"], 1);
        assert_eq!(status["nodesReady"], "1/2");
        assert_eq!(condition(&status, "Ready")["status"], "False");
        assert_eq!(condition(&status, "Degraded")["status"], "True");
        api.expect_event("ns", "TopicCreated").await;
        api.expect_event("ns", "SyncFailed").await;
        api
    })
    .await
    .expect_err("a failed node fails the reconcile");
    assert_eq!(err.metric_label(), "partial_sync");
    assert_eq!(fleet.nsqds[0].has("orders", None).await, Some(false));
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_missing_cluster_is_reported_in_status() {
    let fleet = Fleet::start(1).await;
    let (ctx, api) = fleet.context();
    let t = topic("orders", DeletionPolicy::Delete, false);
    let action = drive(api, reconcile(Arc::new(t), ctx), |mut api| async move {
        api.expect_get(CLUSTER_PATH, None).await;
        let status = api.expect_status(&path("orders")).await;
        assert_eq!(condition(&status, "Ready")["reason"], "ClusterNotFound");
        api
    })
    .await
    .expect("reconcile succeeds");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));
    assert_eq!(fleet.nsqds[0].has("orders", None).await, None);
    fleet.shutdown().await;
}

/// Creates `name` on every node of the fleet with one reconcile.
async fn create(fleet: &Fleet, t: &NsqTopic) {
    let (ctx, api) = fleet.context();
    let p = path(&t.metadata.name.clone().unwrap_or_default());
    drive(
        api,
        reconcile(Arc::new(t.clone()), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            api.expect_status(&p).await;
            api.expect_event("ns", "TopicCreated").await;
            api
        },
    )
    .await
    .expect("created");
}

#[tokio::test]
async fn deletion_policy_delete_removes_the_topic_everywhere() {
    let fleet = Fleet::start(2).await;
    let t = topic("gone", DeletionPolicy::Delete, false);
    create(&fleet, &t).await;
    fleet.nsqds[0]
        .publish("gone", b"dropped with the topic")
        .await;
    let (ctx, api) = fleet.context();
    let t = deleting(t);
    let t2 = t.clone();
    drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            api.expect_event("ns", "TopicDeleted").await;
            expect_finalizer_removed(&mut api, &t2).await;
            api
        },
    )
    .await
    .expect("cleanup succeeds");
    for n in &fleet.nsqds {
        assert_eq!(n.has("gone", None).await, None, "deleted on {}", n.http());
    }
    assert!(!fleet.lookupd.topics().await.contains(&"gone".to_string()));
    fleet.shutdown().await;
}

#[tokio::test]
async fn deletion_policy_retain_leaves_the_topic() {
    let fleet = Fleet::start(1).await;
    let t = topic("kept", DeletionPolicy::Retain, false);
    create(&fleet, &t).await;
    let (ctx, api) = fleet.context();
    let t = deleting(t);
    let t2 = t.clone();
    drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            api.expect_event("ns", "Retained").await;
            expect_finalizer_removed(&mut api, &t2).await;
            api
        },
    )
    .await
    .expect("cleanup succeeds");
    assert_eq!(fleet.nsqds[0].has("kept", None).await, Some(false));
    fleet.shutdown().await;
}

#[tokio::test]
async fn delete_if_empty_refuses_while_messages_are_queued_then_deletes_when_empty() {
    let fleet = Fleet::start(2).await;
    let t = topic("careful", DeletionPolicy::DeleteIfEmpty, false);
    create(&fleet, &t).await;
    fleet.nsqds[1].publish("careful", b"still here").await;

    let (ctx, api) = fleet.context();
    let t = deleting(t);
    let err = drive(
        api,
        reconcile(Arc::new(t.clone()), ctx),
        |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("careful")).await;
            let blocked = condition(&status, "DeletionBlocked");
            assert_eq!(blocked["status"], "True");
            assert_eq!(blocked["reason"], "NotEmpty");
            assert!(blocked["message"]
                .as_str()
                .unwrap_or_default()
                .contains("depth 1"));
            assert_eq!(status["depth"], 1);
            api.expect_event("ns", "DeletionBlocked").await;
            // No finalizer removal follows: the double would fail on an extra request.
            api
        },
    )
    .await
    .expect_err("deletion is refused");
    assert_eq!(err.metric_label(), "deletion_refused");
    assert_eq!(
        fleet.nsqds[1].has("careful", None).await,
        Some(false),
        "still there"
    );

    // Drain it (empty the topic on the node), and the deletion goes through.
    let empty = super::nsq::http_post(&fleet.nsqds[1].http(), "/topic/empty?topic=careful").await;
    assert_eq!(empty, 200, "POST /topic/empty");
    let (ctx, api) = fleet.context();
    let t2 = t.clone();
    drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            api.expect_event("ns", "TopicDeleted").await;
            expect_finalizer_removed(&mut api, &t2).await;
            api
        },
    )
    .await
    .expect("cleanup succeeds once empty");
    for n in &fleet.nsqds {
        assert_eq!(n.has("careful", None).await, None);
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_vanished_cluster_never_blocks_deletion() {
    let fleet = Fleet::start(1).await;
    let t = topic("orphan", DeletionPolicy::DeleteIfEmpty, false);
    create(&fleet, &t).await;
    fleet.nsqds[0].publish("orphan", b"x").await;
    let (ctx, api) = fleet.context();
    let t = deleting(t);
    let t2 = t.clone();
    drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, None).await;
            api.expect_event("ns", "ClusterGone").await;
            expect_finalizer_removed(&mut api, &t2).await;
            api
        },
    )
    .await
    .expect("the finalizer goes");
    fleet.shutdown().await;
}

#[tokio::test]
async fn an_invalid_name_is_reported_without_touching_nsq() {
    let fleet = Fleet::start(1).await;
    let (ctx, api) = fleet.context();
    let t = topic(&"x".repeat(70), DeletionPolicy::Delete, false);
    let p = path(&"x".repeat(70));
    let action = drive(
        api,
        reconcile(Arc::new(t), ctx),
        move |mut api| async move {
            let status = api.expect_status(&p).await;
            assert_eq!(condition(&status, "Ready")["reason"], "InvalidTopicName");
            api.expect_event("ns", "InvalidTopicName").await;
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    assert_eq!(action, Action::await_change());
    fleet.shutdown().await;
}
