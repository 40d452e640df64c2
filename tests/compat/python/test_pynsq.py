"""pynsq (Writer/Reader, tornado 6) against our nsqd, uncompressed connections.

pynsq 0.9.1's snappy/deflate streams are unreliable under tornado 6 even
against Go nsqd, so compression is proven by the nsqjs and tokio-nsq suites.
"""

import asyncio
import time

from helpers import Reader, Writer, run, wait_for

N = 10_000


def bodies(n, prefix="msg"):
    return [f"{prefix}-{i:05d}".encode() for i in range(n)]


def collector(store):
    def handler(reader, message):
        store.append(message.body)
        message.finish()

    return handler


def assert_exactly_once(received, expected, who):
    assert len(received) == len(expected), (
        f"{who}: received {len(received)} messages, expected {len(expected)} "
        f"({len(set(received))} distinct)"
    )
    assert sorted(received) == sorted(expected), f"{who}: received a different set of bodies"


def test_pub_10k_all_received(nsqd):
    async def main():
        got = []
        reader = await Reader(nsqd.tcp_address, "pub_10k", "ch", collector(got),
                              max_in_flight=200).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            msgs = bodies(N)
            await writer.publish_many("pub", [("pub_10k", m) for m in msgs])
            await wait_for(lambda: len(got) >= N, 30, f"{N} messages (have {len(got)})")
            await asyncio.sleep(0.3)  # a duplicate would show up here
            assert_exactly_once(got, msgs, "reader")
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            reader.close()
            writer.close()

    run(main(), timeout=60)


def test_mpub_10k_all_received(nsqd):
    async def main():
        got = []
        writer = await Writer(nsqd.tcp_address).ready()
        msgs = bodies(N)
        batches = [msgs[i:i + 100] for i in range(0, N, 100)]
        reader = None
        try:
            # Published before any channel exists: the topic must hold them
            # and hand them to the first channel created.
            await writer.publish_many("mpub", [("mpub_10k", b) for b in batches], window=16)
            reader = await Reader(nsqd.tcp_address, "mpub_10k", "ch", collector(got),
                                  max_in_flight=200).ready()
            await wait_for(lambda: len(got) >= N, 30, f"{N} messages (have {len(got)})")
            await asyncio.sleep(0.3)
            assert_exactly_once(got, msgs, "reader")
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            if reader:
                reader.close()
            writer.close()

    run(main(), timeout=60)


def test_two_channels_each_receive_all(nsqd):
    async def main():
        got1, got2 = [], []
        r1 = await Reader(nsqd.tcp_address, "fanout", "ch1", collector(got1),
                          max_in_flight=200).ready()
        r2 = await Reader(nsqd.tcp_address, "fanout", "ch2", collector(got2),
                          max_in_flight=200).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            msgs = bodies(N)
            batches = [msgs[i:i + 100] for i in range(0, N, 100)]
            await writer.publish_many("mpub", [("fanout", b) for b in batches], window=16)
            await wait_for(lambda: len(got1) >= N and len(got2) >= N, 30,
                           f"both channels (have {len(got1)} and {len(got2)})")
            await asyncio.sleep(0.3)
            assert_exactly_once(got1, msgs, "channel ch1")
            assert_exactly_once(got2, msgs, "channel ch2")
            assert not (r1.errors or r2.errors or writer.errors)
        finally:
            r1.close()
            r2.close()
            writer.close()

    run(main(), timeout=60)


def test_two_consumers_share_one_channel(nsqd):
    async def main():
        got_a, got_b = [], []
        ra = await Reader(nsqd.tcp_address, "shared", "ch", collector(got_a),
                          max_in_flight=100).ready()
        rb = await Reader(nsqd.tcp_address, "shared", "ch", collector(got_b),
                          max_in_flight=100).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            msgs = bodies(N)
            await writer.publish_many("pub", [("shared", m) for m in msgs])
            await wait_for(lambda: len(got_a) + len(got_b) >= N, 30,
                           f"{N} messages (have {len(got_a)} + {len(got_b)})")
            await asyncio.sleep(0.3)
            overlap = set(got_a) & set(got_b)
            assert not overlap, f"{len(overlap)} messages delivered to both consumers"
            assert_exactly_once(got_a + got_b, msgs, "both consumers together")
            assert got_a and got_b, f"one consumer got nothing ({len(got_a)} / {len(got_b)})"
            assert not (ra.errors or rb.errors or writer.errors)
        finally:
            ra.close()
            rb.close()
            writer.close()

    run(main(), timeout=60)


def test_req_with_delay_redelivers_after_delay(nsqd):
    delay_ms = 1500

    async def main():
        seen = []  # (attempts, id, body, monotonic time)
        req_sent_at = []

        def handler(reader, message):
            seen.append((message.attempts, message.id, message.body, time.monotonic()))
            if message.attempts == 1:
                req_sent_at.append(time.monotonic())
                message.requeue(time_ms=delay_ms, backoff=False)
            else:
                message.finish()

        reader = await Reader(nsqd.tcp_address, "req_delay", "ch", handler).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            await writer.call("pub", "req_delay", b"requeue-me")
            await wait_for(lambda: len(seen) >= 2, delay_ms / 1000 + 5, "the redelivery")
            await asyncio.sleep(0.3)
            assert len(seen) == 2, f"expected 2 deliveries, got {seen}"
            (a1, id1, b1, _), (a2, id2, b2, t2) = seen
            assert (a1, a2) == (1, 2), f"attempts were {a1}, {a2}"
            assert id1 == id2 and b1 == b2 == b"requeue-me"
            waited = t2 - req_sent_at[0]
            assert waited >= delay_ms / 1000, f"redelivered after {waited:.3f}s < {delay_ms}ms"
            assert waited < delay_ms / 1000 + 2, f"redelivered late: {waited:.3f}s"
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            reader.close()
            writer.close()

    run(main(), timeout=20)


class IdentifyRecordingReader(Reader):
    def _on_connection_identify_response(self, conn, data, **kwargs):
        self.identify_response = data
        super()._on_connection_identify_response(conn, data, **kwargs)


def test_msg_timeout_redelivers_with_attempts_plus_one(nsqd):
    timeout_s = 1.0

    async def main():
        seen = []

        def handler(reader, message):
            seen.append((message.attempts, message.id, time.monotonic()))
            if message.attempts >= 2:
                message.finish()
            # attempts == 1: never answered, nsqd must time it out

        reader = await IdentifyRecordingReader(nsqd.tcp_address, "msg_timeout", "ch", handler,
                                               msg_timeout=timeout_s).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            assert reader.identify_response.get("msg_timeout") == 1000, reader.identify_response
            await writer.call("pub", "msg_timeout", b"forget-me")
            await wait_for(lambda: len(seen) >= 2, timeout_s + 5, "the timed-out redelivery")
            await asyncio.sleep(0.3)
            assert len(seen) == 2, f"expected 2 deliveries, got {seen}"
            (a1, id1, t1), (a2, id2, t2) = seen
            assert (a1, a2) == (1, 2) and id1 == id2
            # Small allowance for the first delivery sitting in our receive path.
            assert t2 - t1 >= timeout_s - 0.05, f"redelivered after only {t2 - t1:.3f}s"
            assert t2 - t1 < timeout_s + 2, f"redelivered late: {t2 - t1:.3f}s"
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            reader.close()
            writer.close()

    run(main(), timeout=20)


def test_touch_keeps_message_alive_past_timeout(nsqd):
    timeout_s = 1.0
    hold_s = 2.6  # well past msg_timeout, touched every 0.3 s

    async def main():
        seen = []
        finished = []
        loop = asyncio.get_running_loop()

        def handler(reader, message):
            seen.append((message.attempts, time.monotonic()))
            if message.attempts > 1:
                message.finish()
                return

            async def hold():
                t0 = time.monotonic()
                while time.monotonic() - t0 < hold_s:
                    await asyncio.sleep(0.3)
                    message.touch()
                message.finish()
                finished.append(time.monotonic())

            loop.create_task(hold())

        reader = await Reader(nsqd.tcp_address, "touch", "ch", handler,
                              msg_timeout=timeout_s).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            await writer.call("pub", "touch", b"keep-me")
            await wait_for(lambda: finished, hold_s + 5, "the touched message to be finished")
            await asyncio.sleep(timeout_s + 0.5)  # a lost FIN/TOUCH would redeliver by now
            assert [a for a, _ in seen] == [1], f"message was redelivered despite TOUCH: {seen}"
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            reader.close()
            writer.close()

    run(main(), timeout=20)


def test_dpub_not_delivered_before_delay(nsqd):
    delay_ms = 1500

    async def main():
        seen = {}

        def handler(reader, message):
            seen[message.body] = (message.attempts, time.monotonic())
            message.finish()

        reader = await Reader(nsqd.tcp_address, "dpub", "ch", handler, max_in_flight=10).ready()
        writer = await Writer(nsqd.tcp_address).ready()
        try:
            sent_at = time.monotonic()
            await writer.call("dpub", "dpub", delay_ms, b"deferred")
            await writer.call("pub", "dpub", b"immediate")
            await wait_for(lambda: len(seen) >= 2, delay_ms / 1000 + 5, "both messages")
            a_def, t_def = seen[b"deferred"]
            _, t_imm = seen[b"immediate"]
            assert a_def == 1
            assert t_def - sent_at >= delay_ms / 1000, (
                f"DPUB {delay_ms}ms delivered after {t_def - sent_at:.3f}s")
            assert t_def - sent_at < delay_ms / 1000 + 2, f"late: {t_def - sent_at:.3f}s"
            assert t_imm < t_def, "the plain PUB should overtake the deferred one"
            assert not reader.errors and not writer.errors, (reader.errors, writer.errors)
        finally:
            reader.close()
            writer.close()

    run(main(), timeout=20)
