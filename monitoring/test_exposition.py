"""`GET /metrics` of the built nsqd and nsqlookupd, read with Prometheus' own Python
parsers (classic text and OpenMetrics), checked against what the fixture did to them and
against the metrics reference in monitoring/README.md."""

import math
import re
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_classic

README = Path(__file__).resolve().parent / "README.md"

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
CLASSIC_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Labels each daemon may put on its series (besides a histogram's `le`).
NSQD_LABELS = {"topic", "channel"}
LOOKUPD_LABELS = {"producer"}
BUILD_LABELS = {"version", "implementation", "crate_version"}


def classic(daemon):
    ctype, text = daemon.metrics()
    assert ctype == CLASSIC_TYPE
    return {f.name: f for f in parse_classic(text)}


def openmetrics(daemon):
    ctype, text = daemon.metrics(accept=OPENMETRICS)
    assert ctype == OPENMETRICS_TYPE
    assert text.endswith("# EOF\n")
    return {f.name: f for f in parse_openmetrics(text)}


def exposed_name(family):
    """The name as written in the classic format (what the reference table lists)."""
    if family.type == "counter":
        return family.name + "_total"
    if family.type == "info":
        return family.name + "_info"
    return family.name


def value(families, family, **labels):
    matches = [s.value for s in families[family].samples if s.labels == labels]
    assert len(matches) == 1, (family, labels, families[family].samples)
    return matches[0]


def check_labels(families, allowed):
    for f in families.values():
        for s in f.samples:
            assert s.name.startswith(("nsq_", "process_")), s.name
            names = set(s.labels) - {"le"}
            if f.name in ("nsq_build_info", "nsq_build", "nsq_lookupd_build_info", "nsq_lookupd_build"):
                assert names == BUILD_LABELS, s
            else:
                assert names <= allowed, s
            assert not math.isnan(s.value), s


def samples(families):
    """(name, labels, value) of every nsq_* sample, `le` as a number."""
    out = set()
    for f in families.values():
        for s in f.samples:
            if s.name.startswith("process_") or s.name.endswith("_age_seconds"):
                continue
            labels = dict(s.labels)
            if "le" in labels:
                labels["le"] = float(labels["le"])
            out.add((s.name, tuple(sorted(labels.items())), s.value))
    return out


# ---------------------------------------------------------------- nsqd

def test_nsqd_classic_format(cluster):
    fams = classic(cluster["nsqd"])
    check_labels(fams, NSQD_LABELS)
    types = {exposed_name(f): f.type for f in fams.values()}
    assert types["nsq_topic_messages_total"] == "counter"
    assert types["nsq_channel_depth"] == "gauge"
    assert types["nsq_channel_e2e_processing_latency_seconds"] == "histogram"
    assert types["nsq_build_info"] == "gauge"
    assert types["process_cpu_seconds_total"] == "counter"

    # What the fixture did.
    assert value(fams, "nsq_topic_messages", topic="orders") == 5
    assert value(fams, "nsq_topic_depth", topic="loose") == 5
    assert value(fams, "nsq_topic_backend_depth", topic="loose") == 3
    assert value(fams, "nsq_topic_channels", topic="orders") == 2
    assert value(fams, "nsq_channel_paused", topic="orders", channel="archive") == 1
    assert value(fams, "nsq_channel_depth", topic="orders", channel="archive") == 5
    assert value(fams, "nsq_channel_backend_depth", topic="orders", channel="archive") == 3
    assert value(fams, "nsq_channel_finishes", topic="orders", channel="billing") == 1
    latency = {
        s.name: s.value
        for s in fams["nsq_channel_e2e_processing_latency_seconds"].samples
        if s.labels.get("channel") == "billing" and s.labels.get("le") in (None, "+Inf")
    }
    assert latency["nsq_channel_e2e_processing_latency_seconds_count"] == 1
    assert latency["nsq_channel_e2e_processing_latency_seconds_bucket"] == 1
    assert 0 < latency["nsq_channel_e2e_processing_latency_seconds_sum"] < 60
    assert value(fams, "nsq_messages_published") == 10
    assert value(fams, "nsq_messages_finished") == 1
    assert value(fams, "nsq_healthy") == 1
    assert value(fams, "nsq_topics") == 2
    assert value(fams, "nsq_channels") == 2
    assert value(fams, "nsq_disk_bytes") > 0
    assert value(fams, "process_resident_memory_bytes") > 0
    assert value(fams, "process_open_fds") > 0


def test_nsqd_openmetrics_format(cluster):
    om = openmetrics(cluster["nsqd"])
    check_labels(om, NSQD_LABELS)
    assert om["nsq_topic_messages"].type == "counter"
    assert om["nsq_build"].type == "info"
    assert om["nsq_channel_e2e_processing_latency_seconds"].type == "histogram"
    # Same series and values as the classic document.
    assert samples(om) == samples(classic(cluster["nsqd"]))


# ---------------------------------------------------------------- nsqlookupd

def test_nsqlookupd_classic_format(cluster):
    fams = classic(cluster["nsqlookupd"])
    check_labels(fams, LOOKUPD_LABELS)
    assert value(fams, "nsq_lookupd_producers") == 1
    assert value(fams, "nsq_lookupd_topics") == 2
    assert value(fams, "nsq_lookupd_channels") == 2
    assert value(fams, "nsq_lookupd_tombstones") == 1
    producer = f"127.0.0.1:{cluster['nsqd'].http_port}"
    age = value(fams, "nsq_lookupd_producer_last_ping_age_seconds", producer=producer)
    assert 0 <= age < 30
    assert value(
        fams, "nsq_lookupd_build_info",
        version="1.3.0", implementation="rust", crate_version="0.1.0",
    ) == 1
    assert value(fams, "process_max_fds") >= value(fams, "process_open_fds")


def test_nsqlookupd_openmetrics_format(cluster):
    om = openmetrics(cluster["nsqlookupd"])
    check_labels(om, LOOKUPD_LABELS)
    assert om["nsq_lookupd_build"].type == "info"
    assert om["nsq_lookupd_producer_last_ping_age_seconds"].type == "gauge"
    assert samples(om) == samples(classic(cluster["nsqlookupd"]))


# ---------------------------------------------------------------- the reference table

def reference_table():
    """`| \\`name\\` | type | labels | meaning |` rows of README.md: name → (type, labels)."""
    rows = {}
    row = re.compile(r"^\|\s*`([a-z0-9_:]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|")
    for line in README.read_text().splitlines():
        m = row.match(line)
        if m:
            name, kind, labels = m.groups()
            assert name not in rows, f"{name} documented twice"
            rows[name] = (kind, set(re.findall(r"`(\w+)`", labels)))
    return rows


def test_reference_table_lists_every_metric(cluster):
    documented = reference_table()
    exported = {}
    for daemon in ("nsqd", "nsqlookupd"):
        for f in classic(cluster[daemon]).values():
            labels = {k for s in f.samples for k in s.labels} - {"le"}
            kind = f.type
            if f.name.endswith("_info") and labels == BUILD_LABELS:
                kind = "info"
            exported[exposed_name(f)] = (kind, labels)
    undocumented = sorted(set(exported) - set(documented))
    assert not undocumented, f"exported but missing from README.md: {undocumented}"
    missing = sorted(set(documented) - set(exported))
    assert not missing, f"documented in README.md but not exported: {missing}"
    for name, (kind, labels) in exported.items():
        assert documented[name] == (kind, labels), (name, documented[name], (kind, labels))


def test_series_counts_match_the_cardinality_table(cluster):
    """README.md: nsqd 6 per topic + 28 per channel + 19; nsqlookupd 1 per nsqd + 12."""
    nsqd = classic(cluster["nsqd"])
    series = sum(len(f.samples) for f in nsqd.values())
    topics, channels = value(nsqd, "nsq_topics"), value(nsqd, "nsq_channels")
    assert (topics, channels) == (2, 2)
    assert series == 6 * topics + 28 * channels + 19
    lookupd = classic(cluster["nsqlookupd"])
    series = sum(len(f.samples) for f in lookupd.values())
    assert series == value(lookupd, "nsq_lookupd_producers") + 12
