//! PodDisruptionBudgets: voluntary disruptions (node drains) take down at most
//! `maxUnavailable` pods of each component at once.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use super::Owner;
use crate::crd::cluster::PdbSpec;

/// The PodDisruptionBudget named `name` for `component`.
pub fn pdb(owner: &Owner, name: String, component: &str, spec: &PdbSpec) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(owner.names.namespace.clone()),
            labels: Some(labels::common(&owner.names.cluster, component)),
            owner_references: Some(vec![owner.owner_ref.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(spec.max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&owner.names.cluster, component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::labels::COMPONENT_NSQD;
    use crate::resources::test_support::cluster;

    #[test]
    fn pdb_selects_the_component() {
        let owner = Owner::of(&cluster()).expect("owner");
        let p = pdb(
            &owner,
            owner.names.nsqd(),
            COMPONENT_NSQD,
            &PdbSpec::default(),
        );
        assert_eq!(p.metadata.name.as_deref(), Some("demo-nsqd"));
        let spec = p.spec.expect("spec");
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.and_then(|s| s.match_labels).expect("labels")
                ["app.kubernetes.io/component"],
            "nsqd"
        );
        assert_eq!(p.metadata.owner_references.expect("owner")[0].name, "demo");
    }
}
