//! Pure builders for every child object of an NsqCluster: no I/O, so each is unit-tested by
//! looking at what it returns. The reconciler applies them with server-side apply.

pub mod drain;
pub mod labels;
pub mod lookupd;
pub mod names;
pub mod nsqd;
pub mod pdb;
pub mod pod;
pub mod service;
pub mod service_monitor;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

use crate::crd::NsqCluster;
use crate::{Error, Result};

pub use names::Names;

/// nsqd's TCP port.
pub const NSQD_TCP_PORT: i32 = 4150;
/// nsqd's HTTP port (API, `/ping`, `/metrics`).
pub const NSQD_HTTP_PORT: i32 = 4151;
/// nsqlookupd's TCP port (nsqd registrations).
pub const LOOKUPD_TCP_PORT: i32 = 4160;
/// nsqlookupd's HTTP port (API, `/ping`, `/metrics`).
pub const LOOKUPD_HTTP_PORT: i32 = 4161;

/// Images used when the NsqCluster does not name its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultImages {
    pub nsqd: String,
    pub lookupd: String,
    /// The `nsq` command-line tool (drain Jobs).
    pub cli: String,
}

impl Default for DefaultImages {
    /// Our own images, tagged with the operator's version.
    fn default() -> Self {
        DefaultImages {
            nsqd: format!("ghcr.io/rustnsq/nsqd:{}", crate::VERSION),
            lookupd: format!("ghcr.io/rustnsq/nsqlookupd:{}", crate::VERSION),
            cli: format!("ghcr.io/rustnsq/nsq:{}", crate::VERSION),
        }
    }
}

/// What every builder needs from the cluster: its names and a controller owner reference.
#[derive(Debug, Clone)]
pub struct Owner {
    pub names: Names,
    pub owner_ref: OwnerReference,
}

impl Owner {
    /// Fails when the cluster has no namespace or uid (never true of an object read from
    /// the API server).
    pub fn of(cluster: &NsqCluster) -> Result<Owner> {
        let namespace = cluster
            .namespace()
            .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
        let owner_ref = cluster
            .controller_owner_ref(&())
            .ok_or(Error::MissingObjectKey("metadata.uid"))?;
        Ok(Owner {
            names: Names::new(&cluster.name_any(), &namespace),
            owner_ref,
        })
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::crd::{NsqCluster, NsqClusterSpec};
    use kube::core::ObjectMeta;

    /// A cluster `demo` in namespace `ns` as the API server would hand it over.
    pub fn cluster() -> NsqCluster {
        let mut c = NsqCluster::new("demo", NsqClusterSpec::default());
        c.metadata = ObjectMeta {
            name: Some("demo".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        };
        c
    }
}
