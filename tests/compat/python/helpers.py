"""Thin test helpers around pynsq's Writer and Reader (tornado 6 / asyncio).

Each test runs one asyncio event loop (`run`). pynsq objects must be created
inside it (they bind to tornado's IOLoop.current()).
"""

import asyncio
import time

import nsq


def run(coro, timeout):
    """Run one test coroutine on a fresh event loop, bounded by `timeout` seconds."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Writer(nsq.Writer):
    """pynsq Writer that records connection errors and can be awaited."""

    def __init__(self, address, **kwargs):
        self.errors = []
        super().__init__([address], reconnect_interval=60.0, **kwargs)

    def _on_connection_error(self, conn, error, **kwargs):
        self.errors.append(error)
        super()._on_connection_error(conn, error, **kwargs)

    async def ready(self, timeout=5):
        await wait_for(lambda: any(c.connected() for c in self.conns.values()),
                       timeout, "the Writer to connect")
        return self

    async def call(self, method, *args):
        """Issue one publish command and wait for nsqd's response."""
        fut = asyncio.get_running_loop().create_future()

        def done(conn, data):
            if not fut.done():
                fut.set_result(data)

        getattr(self, method)(*args, callback=done)
        data = await fut
        if isinstance(data, Exception):
            raise AssertionError(f"{method} failed: {data!r}")
        assert data == b"OK", f"{method}: unexpected response {data!r}"
        return data

    async def publish_many(self, method, argss, window=256):
        """Pipeline many publish commands, at most `window` unanswered at a time."""
        loop = asyncio.get_running_loop()
        pending = set()
        failures = []

        for args in argss:
            fut = loop.create_future()

            def done(conn, data, fut=fut):
                if not fut.done():
                    fut.set_result(data)

            getattr(self, method)(*args, callback=done)
            pending.add(fut)
            if len(pending) >= window:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failures += [f.result() for f in finished if f.result() != b"OK"]
        if pending:
            finished, _ = await asyncio.wait(pending)
            failures += [f.result() for f in finished if f.result() != b"OK"]
        assert not failures, f"{method}: {len(failures)} failed, first: {failures[0]!r}"

    def close(self):
        for conn in list(self.conns.values()):
            conn.close()


class Reader(nsq.Reader):
    """pynsq Reader that records errors and knows when its SUB was acknowledged.

    `handler(reader, message)` is called for every message with async handling
    enabled: the handler must finish/requeue/touch explicitly (or not at all).
    """

    def __init__(self, address, topic, channel, handler, **kwargs):
        self.errors = []
        self.subscribed = False
        self._handler = handler
        kwargs.setdefault("max_in_flight", 1)
        super().__init__(topic=topic, channel=channel, nsqd_tcp_addresses=[address],
                         message_handler=self._on_msg, **kwargs)

    def _on_msg(self, message):
        message.enable_async()
        self._handler(self, message)

    def _on_connection_ready(self, conn, **kwargs):
        # The next plain response after IDENTIFY (and upgrades) is SUB's OK.
        conn.on("response", self._on_response)
        super()._on_connection_ready(conn, **kwargs)

    def _on_response(self, conn, data, **kwargs):
        if data == b"OK":
            self.subscribed = True
        elif data != b"CLOSE_WAIT":
            self.errors.append(f"unexpected response {data!r}")

    def _on_connection_error(self, conn, error, **kwargs):
        self.errors.append(error)
        super()._on_connection_error(conn, error, **kwargs)

    async def ready(self, timeout=5):
        await wait_for(lambda: self.subscribed, timeout, f"{self.name} to subscribe")
        return self
