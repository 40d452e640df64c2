"""pynsq discovering nsqd nodes through our nsqlookupd (conformance §3.11, §5).

A Reader given only the lookupd HTTP address must receive what is published to
each of three nsqd nodes, and pick up a fourth node started later within its
lookup interval.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import nsq
import pytest

from conftest import REPO_ROOT, free_port
from helpers import run, wait_for

DEFAULT_LOOKUPD_BIN = REPO_ROOT / "target" / "debug" / "nsqlookupd"
TOPIC = "discovered"


class Lookupd:
    def __init__(self, tmp_path):
        self.bin = os.environ.get("NSQLOOKUPD_BIN", str(DEFAULT_LOOKUPD_BIN))
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"nsqlookupd binary {self.bin} not found: cargo build -p nsqlookupd")
        self.log_path = tmp_path / "nsqlookupd.log"
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "--tcp-address", f"127.0.0.1:{self.tcp_port}",
             "--http-address", f"127.0.0.1:{self.http_port}",
             "--broadcast-address", "127.0.0.1"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(self.log_path.read_text(errors="replace"))
                time.sleep(0.05)

    @property
    def http_address(self):
        return f"http://127.0.0.1:{self.http_port}"

    def lookup(self, topic):
        try:
            with urllib.request.urlopen(f"{self.http_address}/lookup?topic={topic}", timeout=2) as r:
                return json.loads(r.read())
        except Exception:
            return {"producers": []}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        finally:
            self.log.close()
        return code


@pytest.fixture
def lookupd(tmp_path):
    ld = Lookupd(tmp_path)
    yield ld
    assert ld.stop() == 0, "nsqlookupd did not exit cleanly on SIGTERM"


def http_pub(nsqd, topic, body):
    req = urllib.request.Request(
        f"http://127.0.0.1:{nsqd.http_port}/pub?topic={topic}", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.read() == b"OK"


def test_reader_discovers_every_nsqd_through_lookupd(lookupd, start_nsqd):
    flags = ("--lookupd-tcp-address", f"127.0.0.1:{lookupd.tcp_port}",
             "--broadcast-address", "127.0.0.1")
    nodes = [start_nsqd(*flags) for _ in range(3)]
    expected = []
    for i, node in enumerate(nodes):
        for j in range(50):
            body = f"node{i}-{j}".encode()
            http_pub(node, TOPIC, body)
            expected.append(body)

    async def main():
        await wait_for(lambda: len(lookupd.lookup(TOPIC)["producers"]) == 3, 10,
                       "three producers in /lookup")
        got = []

        def handler(message):
            got.append(message.body)
            return True

        reader = nsq.Reader(topic=TOPIC, channel="ch", message_handler=handler,
                            lookupd_http_addresses=[lookupd.http_address],
                            lookupd_poll_interval=1, max_in_flight=300)
        try:
            await wait_for(lambda: len(got) >= len(expected), 20,
                           f"{len(expected)} messages from 3 nodes (have {len(got)})")
            assert sorted(got) == sorted(expected)
            # A fourth node with the topic joins later: found within the lookup interval.
            late = start_nsqd(*flags)
            for j in range(20):
                http_pub(late, TOPIC, f"late-{j}".encode())
            started = time.monotonic()
            await wait_for(lambda: len(got) >= len(expected) + 20, 10,
                           "the messages of the node started later")
            found_after = time.monotonic() - started
            assert sorted(b for b in got if b.startswith(b"late-")) == \
                sorted(f"late-{j}".encode() for j in range(20))
            # pynsq polls every lookupd_poll_interval (1 s) with up to 30% jitter.
            assert found_after < 5, f"late node found after {found_after:.1f}s"
            assert len(reader.conns) == 4, f"connected to {len(reader.conns)} nodes"
        finally:
            reader.close()

    run(main(), timeout=60)
