//! Leader election on a `coordination.k8s.io/v1` Lease (kube-runtime 5 has no elector).
//!
//! The holder renews `renewTime` every `renew_every`; another replica takes the lease over
//! once `renewTime + leaseDurationSeconds` has passed. Every write is a `replace` carrying
//! the `resourceVersion` that was read, so two contenders cannot both win: the API server
//! rejects the slower one with 409 Conflict. A leader that cannot renew within the lease
//! duration reports the loss, and `main` exits so the pod restarts as a follower.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::watch;

use crate::{Error, Result};

/// Competes for one Lease.
#[derive(Clone)]
pub struct LeaseElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

/// Leadership as the elector last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Not (yet) the leader.
    Follower,
    /// Holding the lease.
    Leader,
    /// Was the leader and could not keep the lease; the process should stop.
    Lost,
}

impl LeaseElector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, lease_duration: Duration) -> Self {
        LeaseElector {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One round: creates the lease, renews it if ours, or takes it over if expired.
    /// `Ok(true)` when this replica holds the lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !ours {
            let held = spec
                .holder_identity
                .as_deref()
                .is_some_and(|h| !h.is_empty());
            let duration = SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds
                    .unwrap_or(self.duration_seconds()),
            ));
            let expired = spec
                .renew_time
                .as_ref()
                .is_none_or(|t| t.0 + duration < now);
            if held && !expired {
                return Ok(false);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration_seconds());
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up (if held) so a follower can take over at once.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }

    /// Competes until `stop` fires, publishing leadership on `state`. Returns after a loss
    /// (state [`Leadership::Lost`]) or on stop, releasing the lease if held.
    pub async fn run(
        self,
        renew_every: Duration,
        state: watch::Sender<Leadership>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let leader = matches!(*state.borrow(), Leadership::Leader);
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewal = Some(tokio::time::Instant::now());
                    if !leader {
                        tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                        state.send_replace(Leadership::Leader);
                    }
                }
                Ok(false) if leader => {
                    tracing::error!(lease = %self.name, "leader lease taken by another replica");
                    state.send_replace(Leadership::Lost);
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.name, "lease round failed");
                    if leader && last_renewal.is_none_or(|t| t.elapsed() >= self.lease_duration) {
                        tracing::error!(lease = %self.name, "could not renew the leader lease in time");
                        state.send_replace(Leadership::Lost);
                        return;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(renew_every) => {}
                _ = stop.changed() => {
                    if matches!(*state.borrow(), Leadership::Leader) {
                        if let Err(e) = self.release().await {
                            tracing::warn!(error = %e, "releasing the lease failed");
                        }
                    }
                    return;
                }
            }
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Waits until `state` says leader; `Err` when it reports a loss or the sender is gone.
pub async fn wait_for_leadership(state: &mut watch::Receiver<Leadership>) -> Result<()> {
    loop {
        match *state.borrow_and_update() {
            Leadership::Leader => return Ok(()),
            Leadership::Lost => return Err(Error::Leader("leadership lost".into())),
            Leadership::Follower => {}
        }
        state
            .changed()
            .await
            .map_err(|_| Error::Leader("elector stopped".into()))?;
    }
}
