"""The Helm chart, checked with a real helm binary: lint, render with each values file in
ci/, validate every rendered object, and check that what it renders matches what the
operator's code expects (flags, images, names, RBAC)."""

from __future__ import annotations

import json
import re
import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import (
    CHART,
    MONITORING,
    ROOT,
    by_kind,
    chart_meta,
    ci_values,
    copy_chart,
    crd_schemas,
    one,
    operator_binary,
    render,
    render_notes,
    run_helm,
    validate_any,
    workspace_version,
)

OPERATOR_SRC = ROOT / "operator" / "src"


def values_id(p):
    return p.name


# ------------------------------------------------------------------ lint and render


@pytest.mark.parametrize("values", ci_values(), ids=values_id)
def test_helm_lint_strict(helm, values):
    out = run_helm(helm, "lint", str(CHART), "--strict", "-f", str(values)).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", ci_values(), ids=values_id)
def test_rendered_objects_validate(helm, values):
    """Built-in kinds against the Kubernetes 1.27 and latest schemas (strict), our custom
    resources against crds/, the CRDs themselves as CustomResourceDefinitions."""
    docs = render(helm, "-f", str(values))
    schemas = crd_schemas()
    how = [validate_any(d, schemas) for d in docs]
    assert how.count("k8s") >= 6, how
    for d in docs:
        assert d["metadata"].get("name"), d
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert d["metadata"].get("namespace"), f"{d['kind']} {d['metadata']['name']} has no namespace"


def test_render_validation_bites(helm):
    """A rendered object with a wrong field is rejected (so the validation above means something)."""
    dep = one(render(helm), "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, "1.27.0", strict=True)
    dep = one(render(helm), "Deployment")
    dep["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, "1.27.0", strict=True)


def test_default_render(helm):
    docs = render(helm)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted([
        "CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
        "Deployment", "Service", "PodDisruptionBudget",
    ])
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    version = chart_meta()["appVersion"]
    assert c["image"] == f"ghcr.io/rustnsq/nsq-operator:{version}"
    assert "--leader-elect=true" in c["args"]
    assert not any(a.startswith("--namespace") for a in c["args"])
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    # Pod Security Standards "restricted".
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsUser"] == 65532
    # The metrics Service reaches the port the operator listens on.
    svc = one(docs, "Service")
    port = int(next(a for a in c["args"] if a.startswith("--metrics-address=")).rsplit(":", 1)[1])
    assert svc["spec"]["ports"][0]["port"] == port
    assert c["ports"][0]["containerPort"] == port
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_app_version_and_default_images_match_the_operator(helm):
    """Chart appVersion is the workspace version; the nsqd/nsqlookupd images the chart
    passes are the ones the operator defaults to (operator/src/resources/mod.rs)."""
    assert chart_meta()["appVersion"] == workspace_version()
    src = (OPERATOR_SRC / "resources" / "mod.rs").read_text()
    defaults = dict(re.findall(r'(nsqd|lookupd): format!\("([^"]+):\{\}", crate::VERSION\)', src))
    assert defaults == {"nsqd": "ghcr.io/rustnsq/nsqd", "lookupd": "ghcr.io/rustnsq/nsqlookupd"}, src
    args = one(render(helm), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    version = workspace_version()
    assert f"--nsqd-image={defaults['nsqd']}:{version}" in args
    assert f"--nsqlookupd-image={defaults['lookupd']}:{version}" in args


def test_ports_and_flags_exist_in_the_operator_source():
    main = (OPERATOR_SRC / "main.rs").read_text()
    assert 'default_value = "0.0.0.0:8080"' in main
    for field in ("namespace", "metrics_address", "log_format", "log_level", "leader_elect", "lease_name",
                  "lease_namespace", "identity", "lease_duration", "lease_renew_every", "resync_seconds",
                  "nsq_timeout", "concurrency", "nsqd_image", "nsqlookupd_image"):
        assert re.search(rf"\b{field}: ", main), f"operator flag field {field} is gone from main.rs"
    assert 'env = "POD_NAMESPACE"' in main and 'env = "POD_NAME"' in main


@pytest.mark.parametrize("values", ci_values(), ids=values_id)
def test_operator_binary_accepts_the_rendered_args(helm, values):
    """The real nsq-operator parses the rendered command line (clap validates every
    argument before reaching the trailing --help)."""
    binary = operator_binary()
    if binary is None:
        pytest.skip("no nsq-operator binary (cargo build -p nsq-operator; scripts/test builds it first)")
    c = one(render(helm, "-f", str(values)), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    proc = subprocess.run([str(binary), *c["args"], "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([str(binary), *c["args"], "--leader-elect=perhaps", "--help"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0, "the check must reject a bad argument"


# ------------------------------------------------------------------ RBAC

# What the operator's code calls (see the comment in templates/rbac.yaml for each reason).
EXPECTED_RULES = {
    ("nsq.rustnsq.dev", "nsqclusters"): {"get", "list", "watch"},
    ("nsq.rustnsq.dev", "nsqtopics"): {"get", "list", "watch", "patch"},
    ("nsq.rustnsq.dev", "nsqchannels"): {"get", "list", "watch", "patch"},
    ("nsq.rustnsq.dev", "nsqclusters/status"): {"patch"},
    ("nsq.rustnsq.dev", "nsqtopics/status"): {"patch"},
    ("nsq.rustnsq.dev", "nsqchannels/status"): {"patch"},
    ("apps", "statefulsets"): {"list", "watch", "create", "patch"},
    ("", "services"): {"list", "watch", "create", "patch"},
    ("policy", "poddisruptionbudgets"): {"list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"list"},
    # controller/drain.rs: scale-down drain Jobs and the claims they drain.
    ("batch", "jobs"): {"list", "watch", "create", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"list", "patch", "delete"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("monitoring.coreos.com", "servicemonitors"): {"create", "patch", "delete"},
}

# Rust types used with kube::Api in operator/src → the resource the RBAC must cover.
API_TYPES = {
    "StatefulSet": ("apps", "statefulsets"),
    "Service": ("", "services"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "Pod": ("", "pods"),
    "Job": ("batch", "jobs"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "Lease": ("coordination.k8s.io", "leases"),
    "NsqCluster": ("nsq.rustnsq.dev", "nsqclusters"),
    "NsqTopic": ("nsq.rustnsq.dev", "nsqtopics"),
    "NsqChannel": ("nsq.rustnsq.dev", "nsqchannels"),
    "DynamicObject": ("monitoring.coreos.com", "servicemonitors"),  # service_monitor::api_resource()
    "K": None,  # generic helpers (controller/status.rs), called with the types above
}


def rules_table(rules):
    table = {}
    for r in rules:
        assert "resourceNames" not in r or r["apiGroups"] == ["coordination.k8s.io"], r
        for g in r["apiGroups"]:
            for res in r["resources"]:
                table.setdefault((g, res), set()).update(r["verbs"])
    return table


def test_cluster_rbac_is_exactly_what_the_operator_needs(helm):
    docs = render(helm)
    table = rules_table(one(docs, "ClusterRole")["rules"])
    assert table == EXPECTED_RULES
    for r in one(docs, "ClusterRole")["rules"]:
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"]
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"]
    sa = one(docs, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "nsq-system"}]


def test_every_api_type_the_operator_uses_is_covered_by_rbac(helm):
    used = set()
    for path in OPERATOR_SRC.rglob("*.rs"):
        used |= set(re.findall(r"\b[Aa]pi(?:::)?<([A-Za-z]+)>", path.read_text()))
    unknown = used - API_TYPES.keys()
    assert not unknown, f"operator uses kube::Api with {unknown}: add RBAC rules and map them here"
    docs = render(helm)
    covered = set(rules_table(one(docs, "ClusterRole")["rules"])) | set(rules_table(by_kind(docs, "Role")[0]["rules"]))
    for t in used:
        if API_TYPES[t]:
            assert API_TYPES[t] in covered, f"{t}: {API_TYPES[t]} has no RBAC rule"
    assert "Recorder::new" in (OPERATOR_SRC / "controller" / "mod.rs").read_text()
    assert ("events.k8s.io", "events") in covered


def test_operator_readme_rbac_table_matches_the_chart():
    """operator/README.md's RBAC table lists the same rules the chart grants (the Lease
    row is the leader-election Role, checked below)."""
    readme = (ROOT / "operator" / "README.md").read_text()
    section = readme.split("| API group | Resources | Verbs |", 1)[1].split("\n\n", 1)[0]
    table = {}
    for group, resources, verbs in re.findall(r"^\| `([^`]*)` \| (.+?) \| (.+?) \|$", section, re.M):
        if group == "coordination.k8s.io":
            continue
        group = "" if group == '""' else group
        verb_set = {v.strip() for v in re.sub(r"\(.*?\)", "", verbs).split(",")}
        for res in re.findall(r"`([^`]+)`", resources):
            table[(group, res)] = verb_set
    assert table == EXPECTED_RULES


def test_leader_election_rbac_is_one_lease_in_the_release_namespace(helm):
    docs = render(helm)
    role = next(r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election"))
    assert role["metadata"]["namespace"] == "nsq-system"
    lease_name = next(a for a in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
                      if a.startswith("--lease-name=")).split("=", 1)[1]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [lease_name], "verbs": ["get", "update"]},
    ]


def test_watch_namespace_uses_a_role_and_passes_namespace(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "watch-namespace-values.yaml"))
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in by_kind(docs, "Role")}
    main = roles[("team-a", "nsq-nsq-operator")]
    assert rules_table(main["rules"]) == EXPECTED_RULES
    assert ("nsq-system", "nsq-nsq-operator-leader-election") in roles
    binding = next(b for b in by_kind(docs, "RoleBinding") if b["metadata"]["namespace"] == "team-a")
    assert binding["subjects"][0]["namespace"] == "nsq-system"
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    svc = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_leader_election_off_drops_its_role(helm):
    docs = render(helm, "--set", "leaderElection.enabled=false", "--set", "replicaCount=1")
    assert not [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect=false" in args and not any(a.startswith("--lease-name") for a in args)
    assert not by_kind(docs, "PodDisruptionBudget")


# ------------------------------------------------------------------ values schema


@pytest.mark.parametrize("bad", [
    ["--set", "replicaCont=3"],
    ["--set", "replicaCount=0"],
    ["--set", "operator.logFormat=xml"],
    ["--set", "watchNamespace=Team_A"],
    ["--set", "cluster.topics[0].name=Bad_Name"],
    ["--set", "cluster.topics[0].name=t", "--set", "cluster.topics[0].deletionPolicy=Sometimes"],
    ["--set", "cluster.topics[0].name=t", "--set", "cluster.topics[0].channels[0].name=c",
     "--set", "cluster.topics[0].channels[0].channelName=bad name"],
])
def test_values_schema_rejects_mistakes(helm, bad):
    proc = run_helm(helm, "template", "nsq", str(CHART), *bad, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ one-command install


def test_one_command_install_creates_cluster_topics_and_channels(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "cluster-values.yaml"), namespace="apps")
    schemas = crd_schemas()
    cluster = one(docs, "NsqCluster")
    assert cluster["metadata"] == {**cluster["metadata"], "name": "demo", "namespace": "apps"}
    topics = by_kind(docs, "NsqTopic")
    channels = by_kind(docs, "NsqChannel")
    assert {t["metadata"]["name"] for t in topics} == {"orders", "clicks"}
    assert {c["metadata"]["name"] for c in channels} == {"orders-billing", "orders-archive", "clicks-tail"}
    nsq_topics = {t["spec"].get("topicName", t["metadata"]["name"]) for t in topics}
    assert nsq_topics == {"orders", "clicks_v1"}
    for d in [cluster, *topics, *channels]:
        validate_against = validate_any(d, schemas)
        assert validate_against == "crd"
    for d in [*topics, *channels]:
        assert d["spec"]["clusterRef"] == {"name": "demo"}
        assert d["metadata"]["namespace"] == "apps"
    for c in channels:
        assert c["spec"]["topicName"] in nsq_topics
    assert {c["spec"]["channelName"] for c in channels} == {"billing", "archive_v2", "tail#ephemeral"}
    assert next(t for t in topics if t["metadata"]["name"] == "orders")["spec"]["deletionPolicy"] == "DeleteIfEmpty"


def test_one_command_install_cluster_name_defaults_to_release(helm):
    docs = render(helm, "--set", "cluster.enabled=true", release="queue")
    assert one(docs, "NsqCluster")["metadata"]["name"] == "queue"
    assert one(docs, "NsqCluster")["spec"] == {}


# ------------------------------------------------------------------ NOTES


def test_notes_name_the_real_service_addresses(helm, tmp_path):
    """The Service names follow operator/src/resources/names.rs."""
    names = (OPERATOR_SRC / "resources" / "names.rs").read_text()
    assert 'format!("{}-nsqd", self.cluster)' in names
    assert 'format!("{}-lookupd", self.cluster)' in names
    notes = render_notes(helm, tmp_path, "-f", str(CHART / "ci" / "cluster-values.yaml"), namespace="apps")
    assert "demo-nsqd.apps.svc:4150" in notes
    assert "demo-lookupd.apps.svc:4161" in notes
    assert "kubectl -n apps wait nsqcluster/demo --for=condition=Ready" in notes
    assert "--set cluster.enabled=false" in notes


def test_notes_say_what_to_apply_next(helm, tmp_path):
    notes = render_notes(helm, tmp_path)
    assert "kubectl apply -n <namespace> -f examples/" in notes
    # The inline example in NOTES is valid against the CRDs.
    block = notes.split("<<'YAML'\n", 1)[1].split("\n  YAML", 1)[0]
    docs = [d for d in yaml.safe_load_all("\n".join(line[2:] for line in block.splitlines())) if d]
    assert {d["kind"] for d in docs} == {"NsqCluster", "NsqTopic", "NsqChannel"}
    schemas = crd_schemas()
    for d in docs:
        validate_any(d, schemas)
    notes = render_notes(helm, tmp_path / "ns", "-f", str(CHART / "ci" / "watch-namespace-values.yaml"))
    assert "kubectl apply -n team-a -f examples/" in notes


# ------------------------------------------------------------------ monitoring files


def test_monitoring_templates_are_off_by_default_and_fail_clearly_without_files(helm):
    docs = render(helm)
    assert not by_kind(docs, "PrometheusRule") and not by_kind(docs, "ConfigMap")
    has_rules = any((CHART / "files" / "prometheus").glob("*.yaml"))
    has_dashboards = any((CHART / "files" / "dashboards").glob("*.json"))
    if not has_rules:
        proc = run_helm(helm, "template", "nsq", str(CHART), "--set", "prometheusRule.enabled=true", check=False)
        assert proc.returncode != 0 and "no alert rules" in proc.stderr
    if not has_dashboards:
        proc = run_helm(helm, "template", "nsq", str(CHART), "--set", "grafanaDashboards.enabled=true", check=False)
        assert proc.returncode != 0 and "no dashboards" in proc.stderr


def test_monitoring_templates_render_files(helm, tmp_path):
    """With rules and dashboards in files/ (as charts/sync-files.sh copies them from
    monitoring/), the PrometheusRule merges every group and each dashboard becomes a
    labelled ConfigMap."""
    chart = copy_chart(tmp_path)
    for f in [*(chart / "files" / "prometheus").glob("*"), *(chart / "files" / "dashboards").glob("*")]:
        f.unlink()
    (chart / "files" / "prometheus" / "a.yaml").write_text(yaml.safe_dump({"groups": [
        {"name": "nsq.a", "rules": [{"alert": "NsqdDown", "expr": "up{job=\"nsqd\"} == 0", "for": "5m"}]}]}))
    (chart / "files" / "prometheus" / "b.yaml").write_text(yaml.safe_dump({"groups": [
        {"name": "nsq.b", "rules": [{"record": "x", "expr": "sum(y)"}]}]}))
    (chart / "files" / "dashboards" / "nsq_overview.json").write_text(json.dumps({"title": "NSQ", "panels": []}))
    docs = render(helm, "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboards.enabled=true", chart=chart)
    rule = one(docs, "PrometheusRule")
    assert [g["name"] for g in rule["spec"]["groups"]] == ["nsq.a", "nsq.b"]
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["nsq_overview.json"]) == {"title": "NSQ", "panels": []}
    validate_any(cm, crd_schemas())


def test_chart_monitoring_files_match_monitoring_dir():
    """Once monitoring/ exists, the chart's copies (charts/sync-files.sh) equal it."""
    if not MONITORING.exists():
        pytest.skip("monitoring/ does not exist yet; the PrometheusRule and dashboard templates stay off by default")
    dashboards = {p.name: p.read_bytes() for p in MONITORING.rglob("*.json")}
    rules = {p.name: p.read_bytes() for p in MONITORING.rglob("*.y*ml")
             if isinstance(yaml.safe_load(p.read_text()), dict) and "groups" in yaml.safe_load(p.read_text())}
    chart_dash = {p.name: p.read_bytes() for p in (CHART / "files" / "dashboards").glob("*.json")}
    chart_rules = {p.name: p.read_bytes() for p in (CHART / "files" / "prometheus").glob("*.yaml")}
    assert chart_dash == dashboards, "run charts/sync-files.sh"
    assert chart_rules == {k if k.endswith(".yaml") else k.rsplit(".", 1)[0] + ".yaml": v for k, v in rules.items()}, \
        "run charts/sync-files.sh"


def test_shipped_monitoring_files_render_and_validate(helm):
    """The dashboards and alert rules actually in files/ render into valid objects."""
    rules = sorted((CHART / "files" / "prometheus").glob("*.yaml"))
    dashboards = sorted((CHART / "files" / "dashboards").glob("*.json"))
    if not rules and not dashboards:
        pytest.skip("no monitoring files in the chart yet (monitoring/ has not landed)")
    args = []
    if rules:
        args += ["--set", "prometheusRule.enabled=true"]
    if dashboards:
        args += ["--set", "grafanaDashboards.enabled=true"]
    docs = render(helm, *args)
    schemas = crd_schemas()
    for d in docs:
        validate_any(d, schemas)
    if rules:
        expected = [g["name"] for r in rules for g in yaml.safe_load(r.read_text())["groups"]]
        rule = one(docs, "PrometheusRule")
        assert [g["name"] for g in rule["spec"]["groups"]] == expected
        for g in rule["spec"]["groups"]:
            for r in g["rules"]:
                assert ("alert" in r) != ("record" in r) and r["expr"], r
    cms = by_kind(docs, "ConfigMap")
    assert len(cms) == len(dashboards)
    for cm, path in zip(sorted(cms, key=lambda c: next(iter(c["data"]))), dashboards):
        assert cm["data"] == {path.name: path.read_text().rstrip("\n")}
        assert json.loads(cm["data"][path.name])
        assert len(cm["metadata"]["name"]) <= 63
