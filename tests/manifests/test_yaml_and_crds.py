"""Every YAML file we ship parses; the CRDs are valid apiextensions.k8s.io/v1 objects; the
chart carries exactly the repository's CRDs; the example custom resources satisfy their
CRD's schema."""

from __future__ import annotations

import copy

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import (
    CHART,
    CRDS,
    EXAMPLES,
    ROOT,
    crd_schemas,
    k8s_validate,
    load_docs,
    validate_against_crd,
    validate_any,
)


def yaml_files() -> list:
    roots = [CRDS, EXAMPLES, CHART, ROOT / "tests" / "e2e", ROOT / ".github" / "workflows"]
    files = []
    for r in roots:
        if r.exists():
            files += [p for p in r.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    # Chart templates are Go templates, not YAML: they are checked by rendering.
    return sorted(p for p in files if (CHART / "templates") not in p.parents)


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path):
    with open(path, encoding="utf-8") as fh:
        list(yaml.safe_load_all(fh))


def test_there_are_three_crds():
    kinds = sorted(d["spec"]["names"]["kind"] for p in CRDS.glob("*.yaml") for d in load_docs(p))
    assert kinds == ["NsqChannel", "NsqCluster", "NsqTopic"]


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_crd_is_a_valid_v1_crd(path):
    docs = load_docs(path)
    assert len(docs) == 1, "one CRD per file"
    crd = docs[0]
    assert (crd["apiVersion"], crd["kind"]) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crd["spec"]["group"] == "nsq.rustnsq.dev"
    assert path.name == f"{crd['metadata']['name']}.yaml"
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
    k8s_validate(crd)


def test_crd_validation_rejects_a_broken_crd():
    """The validator bites: a CRD with a misspelt field and a wrong type fails."""
    crd = load_docs(next(CRDS.glob("nsqtopics*.yaml")))[0]
    broken = copy.deepcopy(crd)
    broken["spec"]["scopee"] = broken["spec"].pop("scope")
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(broken)
    broken = copy.deepcopy(crd)
    broken["spec"]["versions"][0]["served"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_validate(broken)


def test_chart_crds_equal_repository_crds_byte_for_byte():
    repo = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir() if p.is_file()}
    assert sorted(chart) == sorted(repo), "charts/nsq-operator/crds/ must hold exactly crds/*.yaml (run charts/sync-files.sh)"
    for name, content in repo.items():
        assert chart[name] == content, f"charts/nsq-operator/crds/{name} differs from crds/{name} (run charts/sync-files.sh)"


def example_docs() -> list:
    files = sorted(list(EXAMPLES.glob("*.yaml")) + list(EXAMPLES.glob("*.yml"))) if EXAMPLES.exists() else []
    return [(f"{p.name}#{i}", d) for p in files for i, d in enumerate(load_docs(p))]


def test_examples_exist():
    if not example_docs():
        pytest.skip("examples/*.yaml does not exist yet (owned by the operator engineer)")
    kinds = {d["kind"] for _, d in example_docs()}
    assert {"NsqCluster", "NsqTopic", "NsqChannel"} <= kinds, f"examples/ lacks some kinds: {kinds}"


@pytest.mark.parametrize("doc", [d for _, d in example_docs()] or [None], ids=[i for i, _ in example_docs()] or ["none"])
def test_example_validates(doc):
    """Custom resources against their CRD's openAPIV3Schema; anything else against the
    bundled Kubernetes schemas."""
    if doc is None:
        pytest.skip("examples/*.yaml does not exist yet")
    validate_any(doc, crd_schemas())


def test_example_references_resolve():
    """Every clusterRef names an NsqCluster of the examples; every NsqChannel's topic is
    declared by an NsqTopic of the examples."""
    docs = [d for _, d in example_docs()]
    if not docs:
        pytest.skip("examples/*.yaml does not exist yet")
    clusters = {d["metadata"]["name"] for d in docs if d["kind"] == "NsqCluster"}
    topics = {(d["spec"]["clusterRef"]["name"], d["spec"].get("topicName") or d["metadata"]["name"])
              for d in docs if d["kind"] == "NsqTopic"}
    for d in docs:
        if d["kind"] in ("NsqTopic", "NsqChannel"):
            assert d["spec"]["clusterRef"]["name"] in clusters, f"{d['kind']} {d['metadata']['name']}: unknown cluster"
        if d["kind"] == "NsqChannel":
            assert (d["spec"]["clusterRef"]["name"], d["spec"]["topicName"]) in topics, (
                f"NsqChannel {d['metadata']['name']}: topic {d['spec']['topicName']} has no NsqTopic in examples/")


def test_crd_schema_validation_bites():
    """A custom resource breaking its CRD schema is rejected (so passing means something)."""
    schemas = crd_schemas()
    good = {"apiVersion": "nsq.rustnsq.dev/v1alpha1", "kind": "NsqTopic", "metadata": {"name": "orders"},
            "spec": {"clusterRef": {"name": "demo"}, "deletionPolicy": "DeleteIfEmpty"}}
    validate_against_crd(good, schemas)
    for bad_spec in (
        {"clusterRef": {"name": "demo"}, "deletionPolicy": "Sometimes"},
        {"clusterRef": {}},
        {"clusterRef": {"name": "demo"}, "topicName": "has space"},
        {"topicName": "orders"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_against_crd({**good, "spec": bad_spec}, schemas)
    cluster = {"apiVersion": "nsq.rustnsq.dev/v1alpha1", "kind": "NsqCluster", "metadata": {"name": "demo"},
               "spec": {"nsqd": {"replicas": 3, "storage": {"size": "10Gi"}}}}
    validate_against_crd(cluster, schemas)
    with pytest.raises(jsonschema.ValidationError):
        validate_against_crd({**cluster, "spec": {"nsqd": {"replicas": -1}}}, schemas)
    with pytest.raises(jsonschema.ValidationError):
        validate_against_crd({**cluster, "spec": {"nsqd": {"storage": {"size": "lots"}}}}, schemas)


def test_e2e_fixture_validates():
    schemas = crd_schemas()
    docs = load_docs(ROOT / "tests" / "e2e" / "manifests" / "cluster.yaml")
    assert {d["kind"] for d in docs} == {"NsqCluster", "NsqTopic", "NsqChannel"}
    for d in docs:
        validate_against_crd(d, schemas)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    # tests/e2e/run.sh relies on these names.
    for needed in [("NsqCluster", "e2e"), ("NsqTopic", "orders"), ("NsqTopic", "doomed"), ("NsqTopic", "guarded")]:
        assert needed in names
    channels = {d["spec"]["channelName"] for d in docs if d["kind"] == "NsqChannel"}
    assert {"consumer", "archive"} <= channels
