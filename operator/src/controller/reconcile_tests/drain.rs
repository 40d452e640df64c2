//! Scale-down drains, against the API-server double: which Job is made for which removed
//! pod's claim, what happens when it finishes, fails or is overtaken by a scale-up; and the
//! Job's command line run for real (`nsq drain`) between two in-process nsqd.

use http::Method;
use serde_json::{json, Value};

use super::cluster::{expect_children, expect_finish, run_pass, CLAIMS, JOBS, PODS};
use super::condition;
use crate::crd::cluster::ReclaimPolicy;
use crate::crd::NsqCluster;
use crate::fixtures::ApiServer;
use crate::resources::drain::DRAINED_ANNOTATION;
use crate::resources::test_support::cluster;

/// The claim of nsqd pod `i`, as the StatefulSet controller makes it.
fn claim(i: i32, drained: bool) -> Value {
    let mut c = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": format!("data-demo-nsqd-{i}"), "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "nsq", "app.kubernetes.io/instance": "demo",
                       "app.kubernetes.io/component": "nsqd"}
        },
        "spec": {"accessModes": ["ReadWriteOnce"]}
    });
    if drained {
        c["metadata"]["annotations"] = json!({DRAINED_ANNOTATION: "true"});
    }
    c
}

/// nsqd pod `i`: `ready`, or stopping (a deletion timestamp) when not.
fn pod(i: i32, ready: bool) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("demo-nsqd-{i}"), "namespace": "ns"},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    });
    if !ready {
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    p
}

/// The drain Job of pod `i` with `condition` (`Complete`, `Failed`) or still running.
fn job(i: i32, condition: Option<&str>) -> Value {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("demo-nsqd-drain-{i}"), "namespace": "ns"},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": {"active": 1}
    });
    if let Some(c) = condition {
        j["status"] = json!({"conditions": [{"type": c, "status": "True"}]});
    }
    j
}

fn claim_path(i: i32) -> String {
    format!("{CLAIMS}/data-demo-nsqd-{i}")
}

fn job_path(i: i32) -> String {
    format!("{JOBS}/demo-nsqd-drain-{i}")
}

/// `demo` with `replicas` nsqd pods and the given scaled-claim policy.
fn scaled(replicas: i32, when_scaled: ReclaimPolicy) -> NsqCluster {
    let mut c = cluster();
    c.spec.nsqd.replicas = replicas;
    c.spec.nsqd.storage.when_scaled = when_scaled;
    c
}

/// One reconcile of `c` (every pod ready) in which `drain` plays the drain step; returns
/// what `drain` returned and the status written.
async fn drain_pass<F, Fut>(c: NsqCluster, drain: F) -> (Value, Value)
where
    F: FnOnce(ApiServer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = (ApiServer, Value)> + Send + 'static,
{
    let replicas = c.spec.nsqd.replicas;
    let (v, result) = run_pass(c, move |mut api| async move {
        let (_, nsqd) = expect_children(&mut api, 3).await;
        assert_eq!(
            nsqd["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"], "Retain",
            "the StatefulSet never deletes a claim before it is drained"
        );
        let (mut api, v) = drain(api).await;
        let status = expect_finish(&mut api).await;
        api.expect_event("ns", "ClusterReady").await;
        (api, json!({"drain": v, "status": status, "nsqd": nsqd}))
    })
    .await;
    result.expect("reconcile succeeds");
    assert_eq!(
        v["nsqd"]["spec"]["replicas"], replicas,
        "no scale-down waits"
    );
    (v["drain"].clone(), v["status"].clone())
}

fn progressing(status: &Value) -> (String, String) {
    let p = condition(status, "Progressing");
    (
        p["reason"].as_str().unwrap_or_default().to_string(),
        p["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn scale_down_drains_the_removed_pods_claim_with_a_job_into_every_ready_survivor() {
    let mut c = scaled(2, ReclaimPolicy::Retain);
    c.spec.nsqd.settings.max_msg_size = Some(2048);
    let (job, status) = drain_pass(c, |mut api| async move {
        let jobs = api.expect_list(JOBS, Vec::new()).await;
        assert_eq!(
            jobs.param("labelSelector"),
            Some("app.kubernetes.io/component=nsqd-drain,app.kubernetes.io/instance=demo,app.kubernetes.io/name=nsq")
        );
        let claims = api
            .expect_list(
                CLAIMS,
                vec![claim(0, false), claim(1, false), claim(2, false)],
            )
            .await;
        assert_eq!(
            claims.param("labelSelector"),
            Some("app.kubernetes.io/component=nsqd,app.kubernetes.io/instance=demo,app.kubernetes.io/name=nsq")
        );
        // demo-nsqd-2 is gone (the StatefulSet removed it); 0 and 1 serve.
        api.expect_list(PODS, vec![pod(1, true), pod(0, true)])
            .await;
        let job = api.expect_apply(&job_path(2)).await;
        let ev = api.expect_event("ns", "DrainStarted").await;
        assert!(
            ev["note"]
                .as_str()
                .unwrap_or_default()
                .contains("data-demo-nsqd-2"),
            "{ev}"
        );
        (api, job)
    })
    .await;

    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!(
        (&owner["kind"], &owner["name"], &owner["controller"]),
        (&json!("NsqCluster"), &json!("demo"), &json!(true))
    );
    let pod_spec = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod_spec["volumes"],
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-demo-nsqd-2"}}])
    );
    let container = &pod_spec["containers"][0];
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data"}])
    );
    assert_eq!(
        container["args"],
        json!([
            "drain",
            "--data-path",
            "/data",
            "--nsqd-http-address",
            "demo-nsqd-0.demo-nsqd-headless.ns.svc:4151",
            "--nsqd-http-address",
            "demo-nsqd-1.demo-nsqd-headless.ns.svc:4151",
            "--max-msg-size",
            "2048"
        ])
    );
    assert_eq!(
        container["image"],
        format!("ghcr.io/rustnsq/nsq:{}", crate::VERSION)
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod_spec["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod_spec["restartPolicy"], "Never");
    assert_eq!(job["spec"]["backoffLimit"], 6);

    let (reason, message) = progressing(&status);
    assert_eq!(reason, "Draining");
    assert!(
        message.contains("data-demo-nsqd-2: Job demo-nsqd-drain-2 started"),
        "{message}"
    );
    assert_eq!(status["pendingDrains"], 1);
    assert_eq!(condition(&status, "Ready")["status"], "True");
}

#[tokio::test]
async fn a_removed_pod_still_stopping_is_not_drained_and_nothing_drains_without_a_ready_survivor() {
    // demo-nsqd-2 is still shutting down: its claim is in use.
    let (_, status) = drain_pass(scaled(2, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, Vec::new()).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, false)],
        )
        .await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true), pod(2, false)])
            .await;
        (api, Value::Null)
    })
    .await;
    let (reason, message) = progressing(&status);
    assert_eq!(reason, "Draining");
    assert!(
        message.contains("data-demo-nsqd-2: waiting for pod demo-nsqd-2 to stop"),
        "{message}"
    );
    assert_eq!(status["pendingDrains"], 1);

    // Gone now, but neither survivor is ready: no Job with an empty target list.
    let (_, status) = drain_pass(scaled(2, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, Vec::new()).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, false)],
        )
        .await;
        let mut unready = pod(0, true);
        unready["status"]["conditions"][0]["status"] = json!("False");
        api.expect_list(PODS, vec![unready]).await;
        (api, Value::Null)
    })
    .await;
    let (_, message) = progressing(&status);
    assert!(
        message.contains("waiting for a ready nsqd pod below demo-nsqd-2"),
        "{message}"
    );
}

/// A pass where the drain Job of pod 2 has succeeded; returns the requests after the
/// lists, as `METHOD path`.
async fn finished_drain(when_scaled: ReclaimPolicy) -> (Vec<String>, Value) {
    let (seen, status) = drain_pass(scaled(2, when_scaled), move |mut api| async move {
        api.expect_list(JOBS, vec![job(2, Some("Complete"))]).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, false)],
        )
        .await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true)])
            .await;
        let mut seen = Vec::new();
        let (mark, reply) = api.expect(Method::PATCH, &claim_path(2)).await;
        assert_eq!(
            mark.body,
            json!({"metadata": {"annotations": {DRAINED_ANNOTATION: "true"}}})
        );
        reply.json(claim(2, true));
        seen.push(format!("PATCH {}", mark.path));
        if when_scaled == ReclaimPolicy::Delete {
            let del = api.expect_delete(&claim_path(2)).await;
            seen.push(format!("DELETE {}", del.path));
        }
        let del = api.expect_delete(&job_path(2)).await;
        assert_eq!(
            del.body["propagationPolicy"], "Background",
            "the Job's pods go with it"
        );
        seen.push(format!("DELETE {}", del.path));
        let ev = api.expect_event("ns", "Drained").await;
        seen.push(ev["note"].as_str().unwrap_or_default().to_string());
        (api, json!(seen))
    })
    .await;
    let seen = serde_json::from_value(seen).expect("request lines");
    (seen, status)
}

#[tokio::test]
async fn a_succeeded_drain_marks_then_deletes_the_claim_under_when_scaled_delete() {
    let (seen, status) = finished_drain(ReclaimPolicy::Delete).await;
    assert_eq!(
        seen[..3],
        [
            format!("PATCH {}", claim_path(2)),
            format!("DELETE {}", claim_path(2)),
            format!("DELETE {}", job_path(2)),
        ]
    );
    assert!(seen[3].contains("the claim is deleted"), "{}", seen[3]);
    assert_eq!(status["pendingDrains"], 0);
    assert_ne!(progressing(&status).0, "Draining");
}

#[tokio::test]
async fn a_succeeded_drain_keeps_the_marked_claim_under_when_scaled_retain() {
    let (seen, status) = finished_drain(ReclaimPolicy::Retain).await;
    assert_eq!(
        seen[..2],
        [
            format!("PATCH {}", claim_path(2)),
            format!("DELETE {}", job_path(2)),
        ],
        "no DELETE of the claim"
    );
    assert!(seen[2].contains("kept, annotated drained"), "{}", seen[2]);
    assert_eq!(status["pendingDrains"], 0);
}

#[tokio::test]
async fn scaling_back_up_before_the_drain_deletes_the_job_and_keeps_the_claim() {
    // Back to 3 while demo-nsqd-drain-2 still runs: the returning pod reuses its claim.
    let (_, status) = drain_pass(scaled(3, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, vec![job(2, None)]).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, false)],
        )
        .await;
        // No claim beyond the size: no need to look at pods. Nothing touches the claim.
        let del = api.expect_delete(&job_path(2)).await;
        assert_eq!(del.body["propagationPolicy"], "Background");
        let ev = api.expect_event("ns", "DrainCancelled").await;
        assert!(
            ev["note"]
                .as_str()
                .unwrap_or_default()
                .contains("pod demo-nsqd-2 exists again"),
            "{ev}"
        );
        (api, Value::Null)
    })
    .await;
    assert_eq!(status["pendingDrains"], 0);

    // A claim drained earlier and now in use again loses its mark (a later scale-down
    // must drain it again).
    drain_pass(scaled(3, ReclaimPolicy::Retain), |mut api| async move {
        api.expect_list(JOBS, Vec::new()).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, true)],
        )
        .await;
        let (unmark, reply) = api.expect(Method::PATCH, &claim_path(2)).await;
        assert_eq!(
            unmark.body,
            json!({"metadata": {"annotations": {DRAINED_ANNOTATION: null}}})
        );
        reply.json(claim(2, false));
        (api, Value::Null)
    })
    .await;
}

#[tokio::test]
async fn a_failed_drain_is_reported_and_its_job_and_claim_are_kept() {
    let (_, status) = drain_pass(scaled(2, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, vec![job(2, Some("Failed"))]).await;
        api.expect_list(
            CLAIMS,
            vec![claim(0, false), claim(1, false), claim(2, false)],
        )
        .await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true)])
            .await;
        let ev = api.expect_event("ns", "DrainFailed").await;
        assert_eq!(ev["type"], "Warning");
        (api, Value::Null)
    })
    .await;
    let (reason, message) = progressing(&status);
    assert_eq!(reason, "Draining");
    assert!(
        message.contains("Job demo-nsqd-drain-2 failed"),
        "{message}"
    );
    assert_eq!(status["pendingDrains"], 1);
}

#[tokio::test]
async fn drained_or_undrainable_claims_follow_when_scaled() {
    // A claim marked drained whose deletion did not happen yet is deleted now, with a Job
    // left behind; nothing is announced again.
    drain_pass(scaled(2, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, vec![job(2, Some("Complete"))]).await;
        api.expect_list(CLAIMS, vec![claim(1, false), claim(2, true)])
            .await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true)])
            .await;
        api.expect_delete(&job_path(2)).await;
        api.expect_delete(&claim_path(2)).await;
        (api, Value::Null)
    })
    .await;

    // Draining turned off: Delete drops the claim (and says so), Retain keeps it.
    let mut off = scaled(2, ReclaimPolicy::Delete);
    off.spec.nsqd.drain.enabled = false;
    let (_, status) = drain_pass(off, |mut api| async move {
        api.expect_list(JOBS, Vec::new()).await;
        api.expect_list(CLAIMS, vec![claim(2, false)]).await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true)])
            .await;
        api.expect_delete(&claim_path(2)).await;
        let ev = api.expect_event("ns", "VolumeDeleted").await;
        assert_eq!(ev["type"], "Warning");
        (api, Value::Null)
    })
    .await;
    assert_eq!(status["pendingDrains"], 0);
    let mut off = scaled(2, ReclaimPolicy::Retain);
    off.spec.nsqd.drain.enabled = false;
    drain_pass(off, |mut api| async move {
        api.expect_list(JOBS, Vec::new()).await;
        api.expect_list(CLAIMS, vec![claim(2, false)]).await;
        api.expect_list(PODS, vec![pod(0, true), pod(1, true)])
            .await;
        (api, Value::Null)
    })
    .await;
}

#[tokio::test]
async fn a_job_whose_claim_is_gone_is_deleted() {
    drain_pass(scaled(2, ReclaimPolicy::Delete), |mut api| async move {
        api.expect_list(JOBS, vec![job(3, None)]).await;
        api.expect_list(CLAIMS, vec![claim(0, false), claim(1, false)])
            .await;
        api.expect_delete(&job_path(3)).await;
        (api, Value::Null)
    })
    .await;
}

/// The Job's container command line, run for real: the claim mounted at the Job's mount
/// path is here the data directory of an in-process nsqd that stopped with messages
/// queued, and the survivor address is a second in-process nsqd's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_command_line_moves_a_stopped_nodes_messages_to_a_survivor() {
    use super::nsq::{http_post, Nsqd};
    use crate::resources::{drain, DefaultImages, Owner};
    use clap::Parser;

    #[derive(clap::Parser)]
    #[command(name = "nsq")]
    struct Nsq {
        #[command(subcommand)]
        command: Command,
    }
    #[derive(clap::Subcommand)]
    enum Command {
        Drain(nsq_cli::drain::DrainArgs),
    }

    // The removed pod: a channel with three queued messages, a channel-less topic with
    // two; then a clean stop, which leaves them on disk.
    let removed = Nsqd::start(&[]).await;
    let addr = removed.http();
    for path in [
        "/topic/create?topic=orders",
        "/channel/create?topic=orders&channel=billing",
    ] {
        assert_eq!(http_post(&addr, path).await, 200, "POST {path}");
    }
    for body in [&b"a"[..], b"b", b"c"] {
        removed.publish("orders", body).await;
    }
    for body in [&b"x"[..], b"y"] {
        removed.publish("audit", body).await;
    }
    let volume = removed.stop().await;
    let survivor = Nsqd::start(&[]).await;

    let mut c = scaled(1, ReclaimPolicy::Delete);
    c.spec.nsqd.settings.max_msg_size = Some(4096);
    let job = drain::job(
        &c,
        &Owner::of(&c).expect("owner"),
        &DefaultImages::default(),
        1,
        &[survivor.http()],
    );
    let pod_spec = job
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod template");
    let container = &pod_spec.containers[0];
    let mount = &container.volume_mounts.as_ref().expect("mounts")[0];
    let volumes = pod_spec.volumes.as_ref().expect("volumes");
    assert_eq!(volumes[0].name, mount.name);
    let mounted_path = volume.path().to_string_lossy().to_string();
    let argv = std::iter::once("nsq".to_string()).chain(
        container.args.clone().expect("args").into_iter().map(|a| {
            if a == mount.mount_path {
                mounted_path.clone()
            } else {
                a
            }
        }),
    );
    let Command::Drain(args) = Nsq::try_parse_from(argv)
        .expect("nsq accepts the Job's args")
        .command;
    assert_eq!(args.max_msg_size, 4096);
    assert_eq!(args.nsqd_http_addresses, [survivor.http()]);

    let report = nsq_cli::drain::run(&args)
        .await
        .expect("the drain succeeds");
    assert_eq!((report.channel_messages, report.topic_messages), (3, 2));
    let stats = survivor.stats("orders").await;
    let orders = stats.topics.unwrap_or_default();
    let billing = orders
        .iter()
        .flat_map(|t| t.channels.iter())
        .find(|ch| ch.channel_name == "billing")
        .expect("billing on the survivor");
    assert_eq!(billing.depth, 3);
    let audit = survivor.stats("audit").await.topics.unwrap_or_default();
    assert_eq!(audit.first().map(|t| t.depth), Some(2));

    // A retried Job (the operator lost track of the first) finds nothing and succeeds.
    let again = nsq_cli::drain::run(&args).await.expect("a rerun succeeds");
    assert_eq!((again.channel_messages, again.topic_messages), (0, 0));
    survivor.running.shutdown().await;
}
