//! The reconcilers — one per kind ([`cluster`] with [`drain`], [`topic`], [`channel`]) — their shared
//! [`Context`], error policy with per-object exponential backoff, and [`run`], which starts
//! one kube-runtime `Controller` per kind.

pub mod channel;
pub mod cluster;
pub mod drain;
pub mod nsq_object;
pub mod status;
pub mod sync;
pub mod topic;

#[cfg(test)]
mod reconcile_tests;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::admin::{NsqAdmin, NsqdEndpoints};
use crate::crd::{NsqChannel, NsqCluster, NsqTopic};
use crate::metrics::Metrics;
use crate::resources::labels::COMPONENT_NSQD;
use crate::resources::DefaultImages;
use crate::Error;

/// Everything a reconciler needs, shared by all of them.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub admin: Arc<dyn NsqAdmin>,
    pub endpoints: Arc<dyn NsqdEndpoints>,
    pub images: DefaultImages,
    /// How often NsqTopic/NsqChannel are re-checked against the nodes (and their status
    /// refreshed) without any change.
    pub resync: Duration,
    /// Consecutive failures per object, for [`error_policy`]'s backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        reporter: Reporter,
        metrics: Metrics,
        admin: Arc<dyn NsqAdmin>,
        endpoints: Arc<dyn NsqdEndpoints>,
        images: DefaultImages,
        resync: Duration,
    ) -> Context {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            admin,
            endpoints,
            images,
            resync,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an Event about `obj`; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    fn key<K: Resource>(obj: &K) -> String {
        format!(
            "{}/{}/{}",
            std::any::type_name::<K>(),
            obj.meta().namespace.as_deref().unwrap_or_default(),
            obj.meta().name.as_deref().unwrap_or_default()
        )
    }

    /// Forgets the failures of `obj` (after a successful reconcile).
    pub fn reset_backoff<K: Resource>(&self, obj: &K) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&Self::key(obj));
        }
    }

    /// Counts a failure of `obj` and returns how long to wait: 1 s doubling to 5 min.
    pub fn next_backoff<K: Resource>(&self, obj: &K) -> Duration {
        let n = match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(Self::key(obj)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        backoff_for(n)
    }
}

/// Exponential backoff after `failures` consecutive failures: 1 s, 2 s, 4 s ... capped at
/// 5 minutes.
pub fn backoff_for(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// The shared error policy: count, log, and requeue with per-object backoff.
pub fn error_policy<K>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource + KindName,
{
    ctx.metrics.reconcile_failed(K::KIND_NAME, error);
    let delay = ctx.next_backoff(obj.as_ref());
    tracing::warn!(
        kind = K::KIND_NAME,
        namespace = obj.meta().namespace.as_deref().unwrap_or_default(),
        name = obj.meta().name.as_deref().unwrap_or_default(),
        error = %error,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// The metric label of a kind.
pub trait KindName {
    const KIND_NAME: &'static str;
}
impl KindName for NsqCluster {
    const KIND_NAME: &'static str = "NsqCluster";
}
impl KindName for NsqTopic {
    const KIND_NAME: &'static str = "NsqTopic";
}
impl KindName for NsqChannel {
    const KIND_NAME: &'static str = "NsqChannel";
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Watches only what the operator made (children carry `managed-by=nsq-operator`).
fn managed() -> watcher::Config {
    watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        crate::FIELD_MANAGER
    ))
}

/// What makes an object worth reconciling again: its spec (generation), its finalizers
/// (the finalizer helper adds ours, then waits for that change) and the start of its
/// deletion. Our own status writes change none of these, so they do not loop back.
fn worth_reconciling<K: Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta().finalizers.hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// A Controller over `api` whose trigger stream skips status-only changes.
fn controller_for<K>(api: Api<K>) -> Controller<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = kube::runtime::watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(worth_reconciling, Default::default());
    Controller::for_stream(stream, reader)
}

/// Every NsqTopic/NsqChannel (from `store`) of the cluster that owns the nsqd StatefulSet
/// `sts`: a pod appearing or becoming ready changes the StatefulSet's status, which
/// re-applies that cluster's topics and channels to the new pod.
fn dependents_of<K>(
    store: &kube::runtime::reflector::Store<K>,
    sts: &StatefulSet,
    cluster_of: fn(&K) -> &str,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + 'static,
{
    let labels = sts.labels();
    let Some(cluster) = labels.get("app.kubernetes.io/instance") else {
        return Vec::new();
    };
    if labels
        .get("app.kubernetes.io/component")
        .map(String::as_str)
        != Some(COMPONENT_NSQD)
    {
        return Vec::new();
    }
    store
        .state()
        .iter()
        .filter(|o| o.namespace() == sts.namespace() && cluster_of(o) == cluster)
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Completes once `stop` turns true (or its sender is dropped).
pub fn stopped(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + Sync + 'static {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|s| *s).await;
    }
}

/// Runs the three controllers until `stop` turns true (each then finishes the reconciles
/// in progress).
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    stop: watch::Receiver<bool>,
    concurrency: u16,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let config = kube::runtime::controller::Config::default().concurrency(concurrency);

    let clusters = controller_for(api::<NsqCluster>(&client, ns))
        .with_config(config.clone())
        .owns(api::<StatefulSet>(&client, ns), managed())
        .owns(api::<Service>(&client, ns), managed())
        .owns(api::<PodDisruptionBudget>(&client, ns), managed())
        // A drain Job finishing is what moves a scale-down on.
        .owns(api::<Job>(&client, ns), managed())
        .graceful_shutdown_on(stopped(&stop))
        .run(cluster::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move { log_result("NsqCluster", r) });

    let topics = controller_for(api::<NsqTopic>(&client, ns)).with_config(config.clone());
    let topic_store = topics.store();
    let topics = topics
        .watches(api::<StatefulSet>(&client, ns), managed(), move |sts| {
            dependents_of(&topic_store, &sts, |t: &NsqTopic| {
                t.spec.cluster_ref.name.as_str()
            })
        })
        .graceful_shutdown_on(stopped(&stop))
        .run(topic::reconcile, error_policy, ctx.clone())
        .for_each(|r| async move { log_result("NsqTopic", r) });

    let channels = controller_for(api::<NsqChannel>(&client, ns)).with_config(config);
    let channel_store = channels.store();
    let channels = channels
        .watches(api::<StatefulSet>(&client, ns), managed(), move |sts| {
            dependents_of(&channel_store, &sts, |c: &NsqChannel| {
                c.spec.cluster_ref.name.as_str()
            })
        })
        .graceful_shutdown_on(stopped(&stop))
        .run(channel::reconcile, error_policy, ctx)
        .for_each(|r| async move { log_result("NsqChannel", r) });

    futures::join!(clusters, topics, channels);
}

fn log_result<K: Resource, E: std::fmt::Display, Q: std::fmt::Display>(
    kind: &str,
    r: Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E, Q>>,
) {
    match r {
        Ok((obj, _)) => tracing::debug!(kind, object = %obj, "reconciled"),
        Err(e) => tracing::debug!(kind, error = %e, "controller"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_writes_do_not_retrigger_but_spec_finalizers_and_deletion_do() {
        use crate::crd::{NsqTopicSpec, NsqTopicStatus};
        let mut t = NsqTopic::new("t", NsqTopicSpec::default());
        t.metadata.generation = Some(1);
        let base = worth_reconciling(&t);
        t.status = Some(NsqTopicStatus {
            depth: 42,
            ..NsqTopicStatus::default()
        });
        t.metadata.resource_version = Some("2".into());
        assert_eq!(worth_reconciling(&t), base, "status only");
        let mut spec = t.clone();
        spec.metadata.generation = Some(2);
        assert_ne!(worth_reconciling(&spec), base);
        let mut fin = t.clone();
        fin.metadata.finalizers = Some(vec!["x".into()]);
        assert_ne!(worth_reconciling(&fin), base);
        let mut del = t.clone();
        del.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_ne!(worth_reconciling(&del), base);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(5), Duration::from_secs(16));
        assert_eq!(backoff_for(20), Duration::from_secs(300));
    }
}
