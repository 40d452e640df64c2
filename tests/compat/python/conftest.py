"""Fixtures for the pynsq compatibility suite.

Every test gets its own nsqd process (the binary named by NSQD_BIN, default
target/debug/nsqd of this repository) on free loopback ports with a fresh
data directory. Teardown sends SIGTERM and requires a clean exit (code 0).
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_NSQD_BIN = REPO_ROOT / "target" / "debug" / "nsqd"


def free_port():
    """Ask the kernel for a free loopback port, then release it for nsqd."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nsqd:
    def __init__(self, tmp_path, extra_args=()):
        self.bin = os.environ.get("NSQD_BIN", str(DEFAULT_NSQD_BIN))
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(
                f"nsqd binary {self.bin} not found: build it (cargo build -p nsqd) or set NSQD_BIN"
            )
        self.host = "127.0.0.1"
        self.data_path = tmp_path / "data"
        self.data_path.mkdir()
        self.log_path = tmp_path / "nsqd.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None

    @property
    def tcp_address(self):
        return f"{self.host}:{self.port}"

    def start(self, attempts=5):
        # A free port can be taken between our probe and nsqd's bind: retry.
        for _ in range(attempts):
            self.port = free_port()
            self.http_port = free_port()
            args = [
                self.bin,
                "--tcp-address", f"{self.host}:{self.port}",
                "--http-address", f"{self.host}:{self.http_port}",
                "--data-path", str(self.data_path),
                *self.extra_args,
            ]
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
            if self._wait_listening(timeout=10):
                return self
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        raise RuntimeError(f"nsqd did not start; log:\n{self.read_log()}")

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"

    def stop(self):
        """SIGTERM, then wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def start_nsqd(tmp_path):
    """Factory: start_nsqd(*extra_flags) -> running Nsqd. Stopped (and checked) at teardown."""
    started = []

    def _start(*extra_args):
        sub = tmp_path / f"nsqd{len(started)}"
        sub.mkdir()
        n = Nsqd(sub, extra_args)
        started.append(n)
        return n.start()

    yield _start

    problems = []
    for n in started:
        code = n.stop()
        if code != 0:
            problems.append(
                f"nsqd on port {n.port} did not exit cleanly on SIGTERM "
                f"(exit code {code!r}); log:\n{n.read_log()}"
            )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def nsqd(start_nsqd):
    """One nsqd with default flags."""
    return start_nsqd()
