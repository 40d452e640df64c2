//! The prometheus-operator ServiceMonitor (`monitoring.coreos.com/v1`), built as a dynamic
//! object so the operator does not depend on that CRD's Rust types.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::core::ObjectMeta;
use serde_json::json;

use super::labels::SCRAPE_LABEL;
use super::Owner;
use crate::crd::cluster::ServiceMonitorSpec;

/// The ServiceMonitor API resource.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// A ServiceMonitor scraping `/metrics` on the `http` port of every nsqd and nsqlookupd pod
/// (through the headless Services, so each pod once).
pub fn service_monitor(owner: &Owner, spec: &ServiceMonitorSpec) -> DynamicObject {
    let mut labels = crate::resources::labels::common(&owner.names.cluster, "metrics");
    labels.extend(spec.labels.clone());
    let mut obj = DynamicObject::new(&owner.names.cluster, &api_resource()).data(json!({
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": owner.names.cluster,
                    SCRAPE_LABEL: "true",
                }
            },
            "namespaceSelector": { "matchNames": [owner.names.namespace] },
            "endpoints": [{ "port": "http", "path": "/metrics", "interval": spec.interval }],
        }
    }));
    obj.metadata = ObjectMeta {
        name: Some(owner.names.cluster.clone()),
        namespace: Some(owner.names.namespace.clone()),
        labels: Some(labels),
        owner_references: Some(vec![owner.owner_ref.clone()]),
        ..ObjectMeta::default()
    };
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_support::cluster;

    #[test]
    fn service_monitor_scrapes_headless_services() {
        let owner = Owner::of(&cluster()).expect("owner");
        let spec = ServiceMonitorSpec {
            enabled: true,
            interval: "15s".into(),
            labels: [("release".to_string(), "prom".to_string())].into(),
        };
        let sm = service_monitor(&owner, &spec);
        let v = serde_json::to_value(&sm).expect("json");
        assert_eq!(v["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(v["kind"], "ServiceMonitor");
        assert_eq!(v["metadata"]["labels"]["release"], "prom");
        assert_eq!(v["spec"]["endpoints"][0]["interval"], "15s");
        assert_eq!(v["spec"]["selector"]["matchLabels"][SCRAPE_LABEL], "true");
    }
}
