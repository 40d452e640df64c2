//! NsqChannel reconciler: API-server double for Kubernetes, real nsqd/nsqlookupd for NSQ.

use std::sync::Arc;

use super::nsq::{cluster_json, demo_ref, Fleet, CLUSTER_PATH};
use super::{condition, declared, deleting, drive};
use crate::controller::channel::{reconcile, FINALIZER};
use crate::crd::{DeletionPolicy, NsqChannel, NsqChannelSpec};
use crate::fixtures::ApiServer;

const CHANNELS: &str = "/apis/nsq.rustnsq.dev/v1alpha1/namespaces/ns/nsqchannels";

fn channel(name: &str, topic: &str, policy: DeletionPolicy, paused: bool) -> NsqChannel {
    let c = NsqChannel::new(
        name,
        NsqChannelSpec {
            cluster_ref: demo_ref(),
            topic_name: topic.into(),
            channel_name: None,
            paused,
            deletion_policy: policy,
        },
    );
    declared(c, 2, FINALIZER)
}

fn path(name: &str) -> String {
    format!("{CHANNELS}/{name}")
}

async fn expect_finalizer_removed(api: &mut ApiServer, c: &NsqChannel) {
    let p = path(&c.metadata.name.clone().unwrap_or_default());
    super::expect_finalizer_removed(api, &p, c, FINALIZER).await;
}

async fn create(fleet: &Fleet, c: &NsqChannel, topic_events: bool) {
    let (ctx, api) = fleet.context();
    let p = path(&c.metadata.name.clone().unwrap_or_default());
    drive(
        api,
        reconcile(Arc::new(c.clone()), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&p).await;
            assert_eq!(condition(&status, "Ready")["status"], "True");
            if topic_events {
                api.expect_event("ns", "TopicCreated").await;
            }
            api.expect_event("ns", "ChannelCreated").await;
            api
        },
    )
    .await
    .expect("created");
}

#[tokio::test]
async fn channel_and_its_topic_are_created_everywhere_and_pause_follows_the_spec() {
    let mut fleet = Fleet::start(2).await;
    let c = channel("archive", "events", DeletionPolicy::Delete, false);
    create(&fleet, &c, true).await;
    for n in &fleet.nsqds {
        assert_eq!(n.has("events", Some("archive")).await, Some(false));
    }
    assert_eq!(
        fleet.lookupd.channels("events").await,
        vec!["archive".to_string()]
    );

    // Pause, with a node added meanwhile: it gets topic, channel and pause.
    fleet.add_node().await;
    let newcomer = fleet.nsqds[2].http();
    let (ctx, api) = fleet.context();
    let paused = channel("archive", "events", DeletionPolicy::Delete, true);
    drive(
        api,
        reconcile(Arc::new(paused), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("archive")).await;
            assert_eq!(status["nodeCount"], 3);
            assert_eq!(status["channelName"], "archive");
            assert_eq!(status["observedGeneration"], 2);
            let t = api.expect_event("ns", "TopicCreated").await;
            assert_eq!(t["note"], format!("created topic events on {newcomer}"));
            api.expect_event("ns", "ChannelCreated").await;
            let p = api.expect_event("ns", "Paused").await;
            assert_eq!(
                p["note"]
                    .as_str()
                    .unwrap_or_default()
                    .matches("127.0.0.1")
                    .count(),
                3,
                "paused on all three nodes"
            );
            api
        },
    )
    .await
    .expect("reconcile succeeds");
    for n in &fleet.nsqds {
        assert_eq!(n.has("events", Some("archive")).await, Some(true));
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn channel_status_counts_messages_and_delete_if_empty_waits_for_them() {
    let fleet = Fleet::start(1).await;
    let c = channel("audit", "payments", DeletionPolicy::DeleteIfEmpty, false);
    create(&fleet, &c, true).await;
    fleet.nsqds[0].publish("payments", b"a").await;
    fleet.nsqds[0].publish("payments", b"b").await;
    // The topic pump copies into the channel asynchronously.
    for _ in 0..50 {
        let depth = fleet.nsqds[0]
            .stats("payments")
            .await
            .topics
            .unwrap_or_default()
            .first()
            .and_then(|t| t.channels.first())
            .map(|c| c.depth)
            .unwrap_or(0);
        if depth == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let (ctx, api) = fleet.context();
    drive(
        api,
        reconcile(Arc::new(c.clone()), ctx),
        |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("audit")).await;
            assert_eq!(status["depth"], 2);
            assert_eq!(status["messageCount"], 2);
            api
        },
    )
    .await
    .expect("reconcile succeeds");

    let (ctx, api) = fleet.context();
    let doomed = deleting(c);
    let err = drive(
        api,
        reconcile(Arc::new(doomed.clone()), ctx),
        |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            let status = api.expect_status(&path("audit")).await;
            assert_eq!(condition(&status, "DeletionBlocked")["status"], "True");
            api.expect_event("ns", "DeletionBlocked").await;
            api
        },
    )
    .await
    .expect_err("refused while queued");
    assert_eq!(err.metric_label(), "deletion_refused");
    assert_eq!(
        fleet.nsqds[0].has("payments", Some("audit")).await,
        Some(false)
    );

    let code = super::nsq::http_post(
        &fleet.nsqds[0].http(),
        "/channel/empty?topic=payments&channel=audit",
    )
    .await;
    assert_eq!(code, 200, "POST /channel/empty");
    let (ctx, api) = fleet.context();
    let d2 = doomed.clone();
    drive(
        api,
        reconcile(Arc::new(doomed), ctx),
        move |mut api| async move {
            api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
            api.expect_event("ns", "ChannelDeleted").await;
            expect_finalizer_removed(&mut api, &d2).await;
            api
        },
    )
    .await
    .expect("deleted once empty");
    assert_eq!(fleet.nsqds[0].has("payments", Some("audit")).await, None);
    assert_eq!(
        fleet.nsqds[0].has("payments", None).await,
        Some(false),
        "the topic stays"
    );
    assert!(fleet.lookupd.channels("payments").await.is_empty());
    fleet.shutdown().await;
}

#[tokio::test]
async fn delete_and_retain_policies() {
    let fleet = Fleet::start(2).await;
    let gone = channel("gone", "jobs", DeletionPolicy::Delete, false);
    let kept = channel("kept", "jobs", DeletionPolicy::Retain, false);
    create(&fleet, &gone, true).await;
    create(&fleet, &kept, false).await;

    for (c, reason) in [
        (deleting(gone), "ChannelDeleted"),
        (deleting(kept), "Retained"),
    ] {
        let (ctx, api) = fleet.context();
        let c2 = c.clone();
        drive(
            api,
            reconcile(Arc::new(c), ctx),
            move |mut api| async move {
                api.expect_get(CLUSTER_PATH, Some(cluster_json())).await;
                api.expect_event("ns", reason).await;
                expect_finalizer_removed(&mut api, &c2).await;
                api
            },
        )
        .await
        .expect("cleanup succeeds");
    }
    for n in &fleet.nsqds {
        assert_eq!(n.has("jobs", Some("gone")).await, None);
        assert_eq!(n.has("jobs", Some("kept")).await, Some(false));
    }
    fleet.shutdown().await;
}
