"""The Grafana dashboards and the alert rules: well formed, and querying only metrics and
labels that the daemons export (checked against a live scrape of nsqd and nsqlookupd)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families as parse_classic

HERE = Path(__file__).resolve().parent
DASHBOARDS = sorted((HERE / "dashboards").glob("*.json"))
ALERTS = HERE / "alerts" / "nsq-alerts.yaml"
RUNBOOK = HERE / "runbook.md"

# Series Prometheus itself adds, and the labels it attaches to every target.
PROMETHEUS_METRICS = {"up"}
TARGET_LABELS = {"job", "instance"}
# Grafana's own variables.
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__range", "__all"}

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "atan2",
}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


# ---------------------------------------------------------------- PromQL, roughly

def _strip(expr):
    """Removes Grafana variables, strings, ranges and numbers from a PromQL expression."""
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "", expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'", '""', e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\boffset\s+\S+", "", e)
    return re.sub(r"(?<![\w:])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", "", e)


def metric_names(expr):
    """The metric names an expression selects."""
    e = _strip(expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in NAME.finditer(e):
        if e[m.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if m.group(0) not in PROMQL_KEYWORDS:
            names.add(m.group(0))
    return names


def label_names(expr):
    """The label names an expression matches on or groups by."""
    e = _strip(expr)
    labels = set()
    for matchers in re.findall(r"\{([^}]*)\}", e):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for group in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e
    ):
        labels |= set(NAME.findall(group))
    return labels


def variable_query(query):
    """The PromQL inside a Grafana Prometheus variable query, and the label it reads."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
    if m:
        return m.group(1), m.group(2)
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
    if m:
        return m.group(1), None
    raise AssertionError(f"unsupported variable query {query!r}")


def test_promql_extraction():
    expr = (
        'histogram_quantile(0.99, sum by (channel, le) (rate('
        'nsq_channel_e2e_processing_latency_seconds_bucket{job=~"$job", topic="a b"}'
        '[$__rate_interval]))) / on (instance) group_left nsq_topics offset 5m'
        ' > 1e3 and up == 0 or vector(0)'
    )
    assert metric_names(expr) == {
        "nsq_channel_e2e_processing_latency_seconds_bucket", "nsq_topics", "up",
    }
    assert label_names(expr) == {"channel", "le", "job", "topic", "instance"}
    assert metric_names("time() - nsq_start_time_seconds{instance=~\"${node}\"}") == {
        "nsq_start_time_seconds"
    }
    assert metric_names("topk(10, sum by (topic) (nsq_bogus_metric))") == {"nsq_bogus_metric"}
    assert variable_query('label_values(nsq_topic_depth{job=~"$job"}, topic)') == (
        'nsq_topic_depth{job=~"$job"}', "topic",
    )


# ---------------------------------------------------------------- what the daemons export

@pytest.fixture(scope="module")
def exported(cluster):
    """Sample names and label names in live scrapes of both daemons."""
    names, labels = set(PROMETHEUS_METRICS), set(TARGET_LABELS)
    for daemon in cluster.values():
        for family in parse_classic(daemon.metrics()[1]):
            for s in family.samples:
                names.add(s.name)
                labels |= set(s.labels)
    return names, labels


def dashboard_queries():
    """(where, expr, label read) of every query in every dashboard."""
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for var in doc["templating"]["list"]:
            if var["type"] == "query":
                q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                expr, label = variable_query(q)
                out.append((f"{path.name} variable {var['name']}", expr, label))
        for panel in doc["panels"]:
            for t in panel.get("targets", []):
                out.append((f"{path.name} panel {panel['title']!r}", t["expr"], None))
    return out


def alert_rules():
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def test_dashboards_and_alerts_query_exported_metrics(exported):
    names, labels = exported
    queries = dashboard_queries() + [
        (f"alert {r['alert']}", r["expr"], None) for r in alert_rules()
    ]
    assert len(queries) > 50
    for where, expr, label in queries:
        used = metric_names(expr)
        assert used, f"{where}: no metric in {expr!r}"
        unknown = used - names
        assert not unknown, f"{where}: {sorted(unknown)} not exported ({expr})"
        unknown = (label_names(expr) | ({label} if label else set())) - labels
        assert not unknown, f"{where}: labels {sorted(unknown)} not exported ({expr})"


# ---------------------------------------------------------------- dashboards

@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path):
    doc = json.loads(path.read_text())
    assert doc["uid"] == path.stem and doc["title"].startswith("NSQ / ")
    assert doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    defined = set(variables) | GRAFANA_VARIABLES
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    texts = [json.dumps(v.get("query", "")) for v in variables.values()]
    for panel in doc["panels"]:
        texts.append(panel["title"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, f"{panel['title']}: no query"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{panel['title']}: refIds repeat"
        for t in targets:
            assert t["expr"].strip(), panel["title"]
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            assert t["expr"].count("{") == t["expr"].count("}"), t["expr"]
            texts.append(t["expr"])
            texts.append(t.get("legendFormat", ""))
    for text in texts:
        for var in re.findall(r"\$\{(\w+)[^}]*\}|\$(\w+)", text):
            name = var[0] or var[1]
            assert name in defined, f"{path.name}: ${name} is not a variable"
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_the_three_dashboards_exist():
    assert {p.stem for p in DASHBOARDS} == {
        "nsq-cluster-overview", "nsq-topic-channel", "nsq-node",
    }
    drill = json.loads((HERE / "dashboards" / "nsq-topic-channel.json").read_text())
    names = {v["name"] for v in drill["templating"]["list"]}
    assert {"topic", "channel", "instance", "job"} <= names


# ---------------------------------------------------------------- alerts

def runbook_sections():
    """GitHub anchors of the runbook's headings."""
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), re.M)
    }


def test_alert_rules_are_complete():
    doc = yaml.safe_load(ALERTS.read_text())
    assert set(doc) == {"groups"}
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    sections = runbook_sections()
    for r in rules:
        assert set(r) == {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert re.fullmatch(r"\d+[smh]", r["for"]), r["alert"]
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        a = r["annotations"]
        assert a["summary"] and a["description"], r["alert"]
        expr = r["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
        path, _, anchor = a["runbook"].partition("#")
        assert path == "monitoring/runbook.md", r["alert"]
        assert anchor == r["alert"].lower() and anchor in sections, (r["alert"], a["runbook"])
    # Every runbook section is some alert's.
    assert sections - {"nsq-alert-runbook"} == {n.lower() for n in names}
    # What the alerting must cover.
    exprs = {r["alert"]: r["expr"] for r in rules}
    assert "up" in metric_names(exprs["NsqdDown"])
    assert "nsq_healthy" in metric_names(exprs["NsqdUnhealthy"])
    assert "nsq_channel_consumers" in metric_names(exprs["NsqChannelNoConsumers"])
    assert "nsq_channel_depth" in metric_names(exprs["NsqChannelBacklogGrowing"])
    assert "nsq_channel_backend_depth" in metric_names(exprs["NsqDiskQueueGrowing"])
    assert "nsq_channel_requeues_total" in metric_names(exprs["NsqHighRequeueRatio"])
    assert "nsq_channel_timeouts_total" in metric_names(exprs["NsqHighTimeoutRatio"])
