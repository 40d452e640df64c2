//! Reconciler tests: the Kubernetes API is the scripted double of [`crate::fixtures`];
//! NsqTopic/NsqChannel tests talk to real nsqd and nsqlookupd servers started in-process.

mod channel;
mod cluster;
mod drain;
mod leader;
mod nsq;
mod topic;

use futures::FutureExt;

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
