//! nsq-operator: runs NSQ clusters, topics and channels on Kubernetes from custom resources.
//!
//! Map of the crate:
//! - [`crd`]: the `nsq.rustnsq.dev/v1alpha1` kinds (NsqCluster, NsqTopic, NsqChannel) and
//!   [`crdgen`], which turns them into the YAML under `crds/`;
//! - [`resources`]: pure builders for every child object of an NsqCluster;
//! - [`admin`]: the nsqd/nsqlookupd HTTP client ([`admin::NsqAdmin`]) and the mapping from
//!   pods to addresses ([`admin::NsqdEndpoints`]), both traits so tests can substitute;
//! - [`controller`]: one reconciler per kind plus the shared [`controller::Context`];
//! - [`metrics`], [`leader`], [`telemetry`], [`server`]: what `main` wires together.

pub mod admin;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod resources;
pub mod server;
pub mod telemetry;

#[cfg(test)]
pub mod fixtures;

pub use error::{Error, Result};

/// The operator's own version, used for default image tags.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "nsq-operator";
