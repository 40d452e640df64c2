"""Live daemons for the monitoring tests: the built nsqlookupd and an nsqd registered
with it, with a little traffic so that every metric family has samples.

Binaries: $NSQD_BIN and $NSQLOOKUPD_BIN, by default target/debug/nsqd and
target/debug/nsqlookupd (next to $NSQD_BIN when only that is set).
"""

import os
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def binary(env, default):
    path = os.environ.get(env)
    if path:
        return Path(path)
    nsqd = os.environ.get("NSQD_BIN")
    if nsqd and default != "nsqd":
        return Path(nsqd).parent / default
    return ROOT / "target" / "debug" / default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, accept=None):
    req = urllib.request.Request(url, data=body, method=method)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read().decode()


def wait_for(what, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Daemon:
    def __init__(self, name, args, http_port, tcp_port):
        self.name = name
        self.http_port = http_port
        self.tcp_port = tcp_port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path, accept=None):
        return http("GET", self.base + path, accept=accept)

    def post(self, path):
        return http("POST", self.base + path, body=b"")

    def metrics(self, accept=None):
        status, ctype, body = self.get("/metrics", accept=accept)
        assert status == 200
        return ctype, body

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def consume_one(port, topic, channel):
    """SUB, RDY 1, FIN the first message: one end-to-end latency observation."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"  V2" + f"SUB {topic} {channel}\n".encode())

        def frame():
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            data = recv_exact(s, size)
            return struct.unpack(">i", data[:4])[0], data[4:]

        while True:
            kind, data = frame()
            if (kind, data) == (0, b"OK"):
                break
            assert data == b"_heartbeat_", (kind, data)
        s.sendall(b"RDY 1\n")
        while True:
            kind, data = frame()
            if kind == 2:
                break
        message_id = data[10:26]
        s.sendall(b"FIN " + message_id + b"\n")
        # A NOP after FIN: the connection is then closed only once both are read.
        s.sendall(b"NOP\n")
        time.sleep(0.1)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


@pytest.fixture(scope="session")
def cluster():
    nsqd_bin = binary("NSQD_BIN", "nsqd")
    lookupd_bin = binary("NSQLOOKUPD_BIN", "nsqlookupd")
    for b in (nsqd_bin, lookupd_bin):
        if not b.is_file():
            pytest.fail(f"{b} is missing: build it first (cargo build -p nsqd -p nsqlookupd)")
    data = tempfile.TemporaryDirectory()
    l_tcp, l_http, n_tcp, n_http = (free_port() for _ in range(4))
    lookupd = Daemon("nsqlookupd", [
        str(lookupd_bin),
        f"--tcp-address=127.0.0.1:{l_tcp}",
        f"--http-address=127.0.0.1:{l_http}",
        "--broadcast-address=127.0.0.1",
    ], l_http, l_tcp)
    nsqd = Daemon("nsqd", [
        str(nsqd_bin),
        f"--tcp-address=127.0.0.1:{n_tcp}",
        f"--http-address=127.0.0.1:{n_http}",
        f"--data-path={data.name}",
        f"--lookupd-tcp-address=127.0.0.1:{l_tcp}",
        "--broadcast-address=127.0.0.1",
        "--mem-queue-size=2",
    ], n_http, n_tcp)
    try:
        wait_for("nsqlookupd /ping", lambda: lookupd.get("/ping")[0] == 200)
        wait_for("nsqd /ping", lambda: nsqd.get("/ping")[0] == 200)
        # Traffic: a consumed channel (latency histogram), a backlog spilling to disk,
        # a paused channel, a topic without channels, a tombstone on the lookupd.
        nsqd.post("/topic/create?topic=orders")
        nsqd.post("/channel/create?topic=orders&channel=billing")
        nsqd.post("/channel/create?topic=orders&channel=archive")
        nsqd.post("/channel/pause?topic=orders&channel=archive")
        for i in range(5):
            http("POST", f"{nsqd.base}/pub?topic=orders", body=f"order {i}".encode())
            http("POST", f"{nsqd.base}/pub?topic=loose", body=f"event {i}".encode())
        consume_one(n_tcp, "orders", "billing")
        wait_for("nsqd registered", lambda: "nsq_lookupd_producers 1\n" in lookupd.metrics()[1])
        wait_for("topics registered", lambda: "nsq_lookupd_topics 2\n" in lookupd.metrics()[1])
        lookupd.post(f"/topic/tombstone?topic=loose&node=127.0.0.1:{n_http}")
        yield {"nsqd": nsqd, "nsqlookupd": lookupd}
    except BaseException:
        for d in (nsqd, lookupd):
            print(f"---- {d.name} output ----\n{d.output()}")
        raise
    finally:
        nsqd.stop()
        lookupd.stop()
        data.cleanup()
