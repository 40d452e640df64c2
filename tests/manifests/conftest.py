"""Shared helpers of the static manifest checks (run by scripts/test inside .venv).

Everything here runs without a cluster: YAML parsing, Kubernetes schema validation with
the schemas bundled in `kubernetes-validate`, CRD schema validation of custom resources
with `jsonschema`, and a real `helm` binary (from a PyPI wheel, see tools.py) for
`helm lint` / `helm template`.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHART = ROOT / "charts" / "nsq-operator"
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"
MONITORING = ROOT / "monitoring"

sys.path.insert(0, str(HERE))
import tools  # noqa: E402

# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest whose
# schemas kubernetes-validate bundles.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())

# Kinds from CRDs that are not ours: no schema here, checked structurally by the tests.
FOREIGN_CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}


def workspace_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return cargo["workspace"]["package"]["version"]


def chart_meta() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def load_docs(path: Path) -> list[dict]:
    """Every non-empty document of a YAML file."""
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version in crds/."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in load_docs(path):
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if v.get("served"):
                    out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def validate_against_crd(doc: dict, schemas: dict | None = None) -> None:
    """Raises jsonschema.ValidationError unless `doc` satisfies its CRD's schema."""
    schemas = schemas if schemas is not None else crd_schemas()
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in schemas:
        raise KeyError(f"no CRD in crds/ serves {key}")
    meta = doc.get("metadata") or {}
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise jsonschema.ValidationError(f"{key}: metadata.name is missing")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", meta["name"]) or len(meta["name"]) > 253:
        raise jsonschema.ValidationError(f"{key}: metadata.name {meta['name']!r} is not a DNS subdomain")
    jsonschema.Draft7Validator(schemas[key]).validate(doc)


def k8s_validate(doc: dict) -> None:
    """Validates a built-in Kubernetes object (strict: unknown fields are errors) against
    every version in K8S_VERSIONS."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)


def validate_any(doc: dict, schemas: dict) -> str:
    """Validates one rendered/example object by the right means; returns how."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in schemas:
        validate_against_crd(doc, schemas)
        return "crd"
    if key in FOREIGN_CRD_KINDS:
        return "foreign"
    k8s_validate(doc)
    return "k8s"


# ------------------------------------------------------------------ helm


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return tools.helm_binary()
    except tools.Unavailable as e:
        pytest.skip(f"no helm binary: {e}")


def run_helm(helm: Path, *args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(helm), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "HELM_CACHE_HOME": str(Path(sys.prefix) / "share" / "nsq-tests" / "helm-cache"),
             "HELM_CONFIG_HOME": str(Path(sys.prefix) / "share" / "nsq-tests" / "helm-config"),
             "HELM_DATA_HOME": str(Path(sys.prefix) / "share" / "nsq-tests" / "helm-data")},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def render(helm: Path, *args: str, chart: Path = CHART, release: str = "nsq", namespace: str = "nsq-system") -> list[dict]:
    """`helm template` → the rendered documents (CRDs from crds/ included)."""
    out = run_helm(helm, "template", release, str(chart), "--namespace", namespace, "--include-crds", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


def copy_chart(dest: Path) -> Path:
    target = dest / "nsq-operator"
    shutil.copytree(CHART, target)
    return target


def render_notes(helm: Path, tmp_path: Path, *args: str, namespace: str = "nsq-system") -> str:
    """NOTES.txt as `helm install` would print it (helm template skips NOTES, so a copy of
    the chart wraps it in a ConfigMap)."""
    chart = copy_chart(tmp_path)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "zz-notes-check.yaml").write_text(
        '{{- define "zz.notes" }}' + notes + "{{- end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-check\n"
        'data:\n  notes: {{ include "zz.notes" . | toJson }}\n'
    )
    docs = render(helm, "--show-only", "templates/zz-notes-check.yaml", *args, chart=chart, namespace=namespace)
    return docs[0]["data"]["notes"]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def ci_values() -> list[Path]:
    return sorted((CHART / "ci").glob("*.yaml"))


def operator_binary() -> Path | None:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for p in (os.environ.get("NSQ_OPERATOR_BIN"), target / "debug" / "nsq-operator", target / "release" / "nsq-operator"):
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return Path(p)
    return None
