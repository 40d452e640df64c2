//! Pod-level pieces shared by the nsqd and nsqlookupd StatefulSets: the restricted security
//! contexts, `/ping` probes, downward-API environment and scheduling options.

use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodSecurityContext,
    PodSpec, Probe, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::cluster::PodOptions;

/// UID/GID the pods run as (matches the non-root user of our images).
pub const RUN_AS_USER: i64 = 65532;

/// The Pod Security Standards "restricted" pod context, with an fsGroup so the data volume
/// is writable.
pub fn restricted_pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        fs_group: Some(RUN_AS_USER),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The "restricted" container context: non-root, read-only root filesystem, no privilege
/// escalation, every capability dropped, RuntimeDefault seccomp.
pub fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// An HTTP `GET /ping` probe on the named port.
pub fn ping_probe(
    port_name: &str,
    initial_delay: i32,
    period: i32,
    failure_threshold: i32,
) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/ping".into()),
            port: IntOrString::String(port_name.into()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// `POD_NAME` and `POD_NAMESPACE` from the downward API (args refer to `$(POD_NAME)`).
pub fn downward_env() -> Vec<EnvVar> {
    let field = |path: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector {
            field_path: path.into(),
            ..ObjectFieldSelector::default()
        }),
        ..EnvVarSource::default()
    };
    vec![
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(field("metadata.name")),
            ..EnvVar::default()
        },
        EnvVar {
            name: "POD_NAMESPACE".into(),
            value_from: Some(field("metadata.namespace")),
            ..EnvVar::default()
        },
    ]
}

/// Fills the scheduling, identity and security fields of `spec` from the user's options.
pub fn apply_pod_options(spec: &mut PodSpec, opts: &PodOptions) {
    if !opts.node_selector.is_empty() {
        spec.node_selector = Some(opts.node_selector.clone());
    }
    spec.affinity = opts.affinity.clone();
    if !opts.tolerations.is_empty() {
        spec.tolerations = Some(opts.tolerations.clone());
    }
    if !opts.topology_spread_constraints.is_empty() {
        spec.topology_spread_constraints = Some(opts.topology_spread_constraints.clone());
    }
    spec.priority_class_name = opts.priority_class_name.clone();
    spec.service_account_name = opts.service_account_name.clone();
    spec.automount_service_account_token = Some(false);
    spec.security_context = Some(
        opts.security_context
            .clone()
            .unwrap_or_else(restricted_pod_security_context),
    );
}

/// The container security context: the user's override, else the restricted one.
pub fn container_security_context(opts: &PodOptions) -> SecurityContext {
    opts.container_security_context
        .clone()
        .unwrap_or_else(restricted_container_security_context)
}

/// A pod template: the component's labels plus the user's pod labels and annotations.
pub fn pod_template(
    cluster: &str,
    component: &str,
    opts: &PodOptions,
    spec: PodSpec,
) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    k8s_openapi::api::core::v1::PodTemplateSpec {
        metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: Some(super::labels::pod(cluster, component, &opts.labels)),
            annotations: (!opts.annotations.is_empty()).then(|| opts.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Toleration;

    #[test]
    fn defaults_are_restricted() {
        let mut spec = PodSpec::default();
        apply_pod_options(&mut spec, &PodOptions::default());
        let psc = spec.security_context.expect("set");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.map(|s| s.type_).as_deref(),
            Some("RuntimeDefault")
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.node_selector, None);
        let csc = container_security_context(&PodOptions::default());
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(
            csc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
    }

    #[test]
    fn user_scheduling_and_overrides_are_applied() {
        let opts = PodOptions {
            node_selector: [("disk".to_string(), "ssd".to_string())].into(),
            tolerations: vec![Toleration {
                key: Some("dedicated".into()),
                ..Toleration::default()
            }],
            priority_class_name: Some("high".into()),
            security_context: Some(PodSecurityContext {
                run_as_user: Some(1000),
                ..PodSecurityContext::default()
            }),
            ..PodOptions::default()
        };
        let mut spec = PodSpec::default();
        apply_pod_options(&mut spec, &opts);
        assert_eq!(spec.node_selector.expect("set")["disk"], "ssd");
        assert_eq!(spec.tolerations.expect("set").len(), 1);
        assert_eq!(spec.priority_class_name.as_deref(), Some("high"));
        assert_eq!(
            spec.security_context.and_then(|s| s.run_as_user),
            Some(1000)
        );
    }

    #[test]
    fn ping_probe_targets_the_named_port() {
        let p = ping_probe("http", 1, 5, 3);
        let get = p.http_get.expect("http probe");
        assert_eq!(get.path.as_deref(), Some("/ping"));
        assert_eq!(get.port, IntOrString::String("http".into()));
        let env = downward_env();
        assert_eq!(env[0].name, "POD_NAME");
    }
}
