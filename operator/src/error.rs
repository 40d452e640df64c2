//! The operator's error type: one variant per way a reconcile can fail, each with a
//! low-cardinality label for the failure metric.

use crate::admin::AdminError;

/// Everything a reconcile or the operator's plumbing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    #[error("nsq admin: {0}")]
    Admin(#[from] AdminError),

    #[error("object has no {0}")]
    MissingObjectKey(&'static str),

    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),

    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    #[error("deletion refused: {0}")]
    DeletionRefused(String),

    #[error("{failed} of {total} NSQ nodes could not be updated: {first}")]
    PartialSync {
        failed: usize,
        total: usize,
        first: String,
    },

    #[error("leader election: {0}")]
    Leader(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, bounded label for the `error` metric dimension (never an object name).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Error::Admin(_) => "nsq_admin",
            Error::MissingObjectKey(_) => "missing_object_key",
            Error::Serialization(_) => "serialization",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::DeletionRefused(_) => "deletion_refused",
            Error::PartialSync { .. } => "partial_sync",
            Error::Leader(_) => "leader_election",
        }
    }
}
