//! The labels every child carries; the selector subset never changes for the life of a
//! cluster (StatefulSet selectors are immutable).

use std::collections::BTreeMap;

/// `app.kubernetes.io/component` of nsqd objects.
pub const COMPONENT_NSQD: &str = "nsqd";
/// `app.kubernetes.io/component` of the Jobs (and their pods) draining removed nsqd
/// volumes: not `nsqd`, so the nsqd Services and PodDisruptionBudget never select them.
pub const COMPONENT_NSQD_DRAIN: &str = "nsqd-drain";
/// `app.kubernetes.io/component` of nsqlookupd objects.
pub const COMPONENT_LOOKUPD: &str = "nsqlookupd";
/// Marks the Services the ServiceMonitor scrapes (the headless ones, so each pod is
/// scraped once).
pub const SCRAPE_LABEL: &str = "nsq.rustnsq.dev/scrape";

/// Labels that select the pods of one component of one cluster.
pub fn selector(cluster: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "nsq".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            cluster.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
    ])
}

/// The selector plus the operator's bookkeeping labels.
pub fn common(cluster: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector(cluster, component);
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        crate::FIELD_MANAGER.to_string(),
    );
    labels.insert("app.kubernetes.io/part-of".to_string(), "nsq".to_string());
    labels
}

/// A label selector string (`k=v,k=v`) for list calls.
pub fn selector_string(cluster: &str, component: &str) -> String {
    selector(cluster, component)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Pod labels: the user's, then ours on top (so a user label cannot break the selector).
pub fn pod(
    cluster: &str,
    component: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = user.clone();
    labels.extend(common(cluster, component));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_labels_win_over_user_labels() {
        let user = BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            ("app.kubernetes.io/instance".to_string(), "evil".to_string()),
        ]);
        let l = pod("demo", COMPONENT_NSQD, &user);
        assert_eq!(l["team"], "a");
        assert_eq!(l["app.kubernetes.io/instance"], "demo");
        assert_eq!(l["app.kubernetes.io/managed-by"], "nsq-operator");
        assert_eq!(
            selector_string("demo", COMPONENT_NSQD),
            "app.kubernetes.io/component=nsqd,app.kubernetes.io/instance=demo,app.kubernetes.io/name=nsq"
        );
    }
}
