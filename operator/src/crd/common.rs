//! Types and rules shared by the three kinds: the API group, references to an NsqCluster,
//! deletion policies, NSQ name validation and status conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind the operator serves.
pub const GROUP: &str = "nsq.rustnsq.dev";
/// The (only) served version.
pub const VERSION: &str = "v1alpha1";

/// The NSQ name rule (conformance §1.10) as a JSON-schema pattern; length is checked apart.
pub const NSQ_NAME_PATTERN: &str = r"^[.a-zA-Z0-9_-]+(#ephemeral)?$";

/// Condition types the operator writes.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    /// On NsqTopic/NsqChannel: deletion waits for the queue to drain (`DeleteIfEmpty`).
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
}

/// A reference to the NsqCluster (in the same namespace) a topic or channel lives on.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the NsqCluster in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What happens to the topic or channel on the NSQ nodes when the resource is deleted.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum DeletionPolicy {
    /// Delete it from every nsqd (dropping queued messages) and from every nsqlookupd.
    #[default]
    Delete,
    /// Leave it on the nodes; only the Kubernetes object goes away.
    Retain,
    /// Delete it only once nothing is queued, in flight or deferred; until then the
    /// deletion waits (condition `DeletionBlocked`, a Warning event) and is retried.
    DeleteIfEmpty,
}

/// Whether `name` is a valid NSQ topic/channel name (pattern and 1..=64 bytes).
pub fn is_valid_nsq_name(name: &str) -> bool {
    nsq_protocol::names::is_valid_name(name)
}

/// An NSQ name given in the spec, else the object's own name; `None` when the one that
/// applies is not a valid NSQ name.
pub fn nsq_name_or(spec_name: Option<&str>, object_name: &str) -> Option<String> {
    let name = spec_name.unwrap_or(object_name);
    is_valid_nsq_name(name).then(|| name.to_string())
}

/// Builds a condition, keeping `lastTransitionTime` from `previous` when the status did not
/// change (so the time says when the condition last flipped, as Kubernetes expects).
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time,
    }
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of type `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsq_names_follow_the_protocol_rule() {
        assert!(is_valid_nsq_name("orders"));
        assert!(is_valid_nsq_name("a.b_c-D#ephemeral"));
        assert!(!is_valid_nsq_name(""));
        assert!(!is_valid_nsq_name("has space"));
        assert!(!is_valid_nsq_name(&"x".repeat(65)));
        assert!(is_valid_nsq_name(&"x".repeat(64)));
        assert_eq!(nsq_name_or(None, "orders").as_deref(), Some("orders"));
        assert_eq!(nsq_name_or(Some("o_2"), "orders").as_deref(), Some("o_2"));
        assert_eq!(nsq_name_or(Some("bad name"), "orders"), None);
        assert_eq!(nsq_name_or(None, &"x".repeat(65)), None);
    }

    #[test]
    fn condition_keeps_transition_time_while_status_is_unchanged() {
        let old = Time(Timestamp::from_second(1_000).expect("valid"));
        let previous = vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "A".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: old.clone(),
        }];
        let same = condition(&previous, "Ready", true, "B", "m", Some(2));
        assert_eq!(same.last_transition_time, old);
        assert_eq!(same.reason, "B");
        assert_eq!(same.observed_generation, Some(2));
        let flipped = condition(&previous, "Ready", false, "C", "m", Some(2));
        assert_ne!(flipped.last_transition_time, old);
        assert!(!is_condition_true(&[flipped], "Ready"));
    }
}
