"""The kind suite's prerequisite check (tests/e2e/run.sh), run here for real.

Where docker (with a daemon), kind, helm, kubectl or python3 is missing the suite must say
`skipped: <what is missing>`, say that nothing ran, and exit 0 — or exit 1 under
E2E_REQUIRE=1 (what CI's e2e workflow sets). The reasons are checked against this
machine's own state and against controlled PATHs with stub tools.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "run.sh"
TOOLS = ("docker", "kind", "helm", "kubectl", "python3")
# What run.sh itself needs from the system before it checks anything.
BASICS = ("bash", "env", "dirname", "sed", "grep", "cat", "printf")


def expected_reasons(path: str | None = None) -> list[str]:
    reasons = [f"{t} not found on PATH" for t in TOOLS if shutil.which(t, path=path) is None]
    docker = shutil.which("docker", path=path)
    if docker:
        env = {**os.environ, **({"PATH": path} if path else {})}
        ok = subprocess.run([docker, "info"], capture_output=True, timeout=60, env=env).returncode == 0
        if not ok:
            reasons.append("Docker daemon not reachable (docker info failed)")
    return reasons


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RUN), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_this_machine_is_reported_with_its_real_reasons():
    reasons = expected_reasons()
    if not reasons:
        pytest.skip("every prerequisite is present here: the suite would really run (see .github/workflows/e2e.yml)")
    proc = run(env={"E2E_REQUIRE": "0"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "skipped: " + "; ".join(reasons)
    assert "NOTHING RAN" in proc.stdout
    assert "====" not in proc.stdout, "no step may start"

    required = run(env={"E2E_REQUIRE": "1"})
    assert required.returncode == 1
    assert required.stdout.splitlines()[0] == lines[0]

    check = run("--check")
    assert check.returncode == 0 and check.stdout.strip() == lines[0]


def stub_dir(tmp_path: Path, tools: dict[str, int]) -> str:
    """A PATH with the basics plus stub tools exiting with the given status."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in BASICS:
        real = shutil.which(name)
        assert real, name
        (bin_dir / name).symlink_to(real)
    for name, status in tools.items():
        stub = bin_dir / name
        stub.write_text(f"#!/bin/sh\nexit {status}\n")
        stub.chmod(0o755)
    return str(bin_dir)


def test_missing_tools_and_daemon_are_named(tmp_path):
    path = stub_dir(tmp_path, {"docker": 1, "kubectl": 0})
    proc = run(env={"PATH": path, "E2E_REQUIRE": "0"})
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == (
        "skipped: kind not found on PATH; helm not found on PATH; python3 not found on PATH; "
        "Docker daemon not reachable (docker info failed)"
    )
    assert expected_reasons(path) == proc.stdout.splitlines()[0][len("skipped: "):].split("; ")
    assert run(env={"PATH": path, "E2E_REQUIRE": "1"}).returncode == 1


def test_all_present_is_ready(tmp_path):
    path = stub_dir(tmp_path, {t: 0 for t in TOOLS})
    proc = run("--check", env={"PATH": path})
    assert proc.returncode == 0
    assert proc.stdout.strip() == "ready"


def test_a_failing_command_inside_a_step_fails_the_suite(tmp_path):
    """With every tool present (stubs), the suite starts; `kubectl config use-context`
    failing in the middle of the first step must fail that step — even though the step's
    last command succeeds — and the suite must exit 1 after its summary."""
    path = stub_dir(tmp_path, {"docker": 0, "kind": 0, "helm": 0, "python3": 0})
    kubectl = Path(path) / "kubectl"
    kubectl.write_text('#!/bin/sh\ncase "$1" in config) exit 1;; esac\nexit 0\n')
    kubectl.chmod(0o755)
    for name in ("mktemp", "rm", "touch", "tail"):
        (Path(path) / name).symlink_to(shutil.which(name))
    proc = run(env={"PATH": path, "E2E_CLUSTER": "stub"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "---- kind: create cluster: FAILED" in proc.stdout
    assert "e2e: 0 passed, 1 failed" in proc.stdout.splitlines()
    assert "images: build" not in proc.stdout, "a failed `must` step stops the suite"
