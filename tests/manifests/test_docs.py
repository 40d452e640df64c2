"""docs/kubernetes.md stays true: its manifests validate, its values render with the chart,
and the names and addresses it gives are the ones the chart and the operator produce."""

from __future__ import annotations

import re

import yaml

from conftest import CHART, ROOT, by_kind, crd_schemas, one, render, validate_any

DOC = ROOT / "docs" / "kubernetes.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def test_manifests_in_the_guide_validate():
    docs = [d for b in blocks("yaml") for d in yaml.safe_load_all(b) if d and "apiVersion" in d]
    assert {d["kind"] for d in docs} == {"NsqCluster", "NsqTopic", "NsqChannel"}
    schemas = crd_schemas()
    for d in docs:
        assert validate_any(d, schemas) == "crd"


def test_values_in_the_guide_render(helm, tmp_path):
    values = next(b for b in blocks("yaml") if b.startswith("# values-demo.yaml"))
    path = tmp_path / "values-demo.yaml"
    path.write_text(values)
    docs = render(helm, "-f", str(path), release="nsq", namespace="demo")
    assert one(docs, "NsqCluster")["metadata"]["name"] == "demo"
    assert {c["metadata"]["name"] for c in by_kind(docs, "NsqChannel")} == {"orders-billing", "orders-archive"}
    schemas = crd_schemas()
    for d in docs:
        validate_any(d, schemas)


def test_names_in_the_guide_match_the_chart(helm):
    text = DOC.read_text()
    docs = render(helm, release="nsq-operator", namespace="nsq-system")
    dep = one(docs, "Deployment")
    assert "deployment/nsq-operator" in text and dep["metadata"]["name"] == "nsq-operator"
    assert "--lease-name=nsq-operator" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "Service `nsq-operator-metrics` (port 8080" in text
    assert one(docs, "Service")["metadata"]["name"] == "nsq-operator-metrics"
    for cmd in re.findall(r"helm (?:install|upgrade) \S+ (\S+)", text):
        assert (ROOT / cmd).is_dir(), cmd
    assert (CHART / "values.schema.json").exists()


def test_addresses_in_the_guide_follow_the_operator():
    text = DOC.read_text()
    names = (ROOT / "operator" / "src" / "resources" / "names.rs").read_text()
    assert '"{}.{}.svc:{LOOKUPD_HTTP_PORT}"' in names and '"{}.{}.svc:{NSQD_TCP_PORT}"' in names
    assert 'format!("{pod}.{}.{}.svc", self.nsqd_headless(), self.namespace)' in names
    for addr in ("demo-nsqd.demo.svc:4150", "demo-lookupd.demo.svc:4161",
                 "<cluster>-nsqd.<namespace>.svc:4150", "<cluster>-lookupd.<namespace>.svc:4161",
                 "demo-nsqd-0.demo-nsqd-headless.demo.svc:4150"):
        assert addr in text, addr
    pvc = (ROOT / "operator" / "src" / "resources" / "nsqd.rs").read_text()
    assert 'pub const DATA_VOLUME: &str = "data";' in pvc and "data-demo-nsqd-<n>" in text
