"""Static checks of the Dockerfiles (no Docker daemon here: the images themselves are built
by .github/workflows/e2e.yml and tests/e2e/run.sh)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest

from conftest import ROOT

# image target -> (binary, ports it must EXPOSE)
TARGETS = {
    "nsqd": ("nsqd", {4150, 4151}),
    "nsqlookupd": ("nsqlookupd", {4160, 4161}),
    "nsq-operator": ("nsq-operator", {8080}),
    "nsq": ("nsq", {4150, 4151, 4160, 4161}),
}
CRATE_OF_BIN = {"nsqd": "broker", "nsqlookupd": "lookupd", "nsq-operator": "operator", "nsq": "cli"}


def instructions(path):
    """(INSTRUCTION, arguments) pairs, with continuations joined and comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(path):
    """stage name -> {"from": base, "ins": [(INSTR, args), ...]}."""
    result, current = {}, None
    for ins, args in instructions(path):
        if ins == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert m, args
            current = m.group(2) or f"#{len(result)}"
            result[current] = {"from": m.group(1), "ins": []}
        elif current:
            result[current]["ins"].append((ins, args))
    return result


def global_args(path):
    out = {}
    for ins, args in instructions(path):
        if ins == "FROM":
            break
        if ins == "ARG" and "=" in args:
            k, v = args.split("=", 1)
            out[k] = v
    return out


DOCKERFILE = ROOT / "Dockerfile"


def stage_chain(all_stages, name):
    """Instructions of a stage and of the stages it is built FROM (nearest last)."""
    chain = []
    while name in all_stages:
        chain.insert(0, all_stages[name])
        name = all_stages[name]["from"]
    return chain


def test_one_target_per_image_on_distroless_nonroot():
    all_stages = stages(DOCKERFILE)
    args = global_args(DOCKERFILE)
    assert set(TARGETS) <= set(all_stages)
    assert all_stages["runtime"]["from"] == "${RUNTIME_BASE}"
    assert args["RUNTIME_BASE"] == "gcr.io/distroless/cc-debian12:nonroot"
    pod_rs = (ROOT / "operator" / "src" / "resources" / "pod.rs").read_text()
    run_as = re.search(r"pub const RUN_AS_USER: i64 = (\d+);", pod_rs).group(1)
    assert ("USER", f"{run_as}:{run_as}") in all_stages["runtime"]["ins"], "images run as the operator's pod UID"
    for target, (binary, ports) in TARGETS.items():
        st = all_stages[target]
        assert st["from"] == "runtime", target
        ins = st["ins"]
        entry = [a for i, a in ins if i == "ENTRYPOINT"]
        assert entry and json.loads(entry[-1]) == [f"/usr/local/bin/{binary}"], f"{target}: exec-form ENTRYPOINT (no shell)"
        assert ("COPY", f"--from=builder /out/{binary} /usr/local/bin/{binary}") in ins
        exposed = {int(p) for i, a in ins if i == "EXPOSE" for p in a.split()}
        assert exposed == ports, target
        for i, a in ins:
            assert i != "RUN", f"{target}: no RUN in a shell-less runtime stage"
            if i in ("CMD",):
                json.loads(a)  # exec form
        labels = " ".join(a for s in stage_chain(all_stages, target) for i, a in s["ins"] if i == "LABEL")
        for key in ("title", "description", "source", "version", "revision", "licenses", "created"):
            assert f"org.opencontainers.image.{key}=" in labels, f"{target}: OCI label {key}"
    # The default target (last stage) is a runtime image.
    assert list(all_stages)[-1] in TARGETS


def test_binaries_and_crates_match_the_workspace():
    for binary, crate in CRATE_OF_BIN.items():
        manifest = tomllib.loads((ROOT / crate / "Cargo.toml").read_text())
        bins = {b["name"] for b in manifest.get("bin", [])} or {manifest["package"]["name"]}
        assert binary in bins, f"{crate}/Cargo.toml has no bin {binary}"
        text = DOCKERFILE.read_text()
        assert f"-p {manifest['package']['name']} --bin {binary}" in text


def test_build_is_cached_with_cargo_chef_and_locked():
    all_stages = stages(DOCKERFILE)
    runs = [a for s in all_stages.values() for i, a in s["ins"] if i == "RUN"]
    cargo_runs = [r for r in runs if re.search(r"\bcargo (build|install|chef cook)\b", r)]
    assert cargo_runs
    for r in cargo_runs:
        assert "--locked" in r, r
    assert any("cargo chef prepare" in r for r in runs)
    builder = [i for i, _ in all_stages["builder"]["ins"]]
    cook = next(n for n, (i, a) in enumerate(all_stages["builder"]["ins"]) if i == "RUN" and "chef cook" in a)
    copy_src = next(n for n, (i, a) in enumerate(all_stages["builder"]["ins"]) if i == "COPY" and a == ". .")
    build = next(n for n, (i, a) in enumerate(all_stages["builder"]["ins"]) if i == "RUN" and "cargo build" in a)
    assert cook < copy_src < build, "dependencies are cooked before the sources are copied"
    assert "RUN" in builder
    # The operator crate needs rustc >= its rust-version.
    rust = global_args(DOCKERFILE)["RUST_VERSION"]
    op = tomllib.loads((ROOT / "operator" / "Cargo.toml").read_text())["package"]["rust-version"]
    assert tuple(map(int, rust.split("."))) >= tuple(map(int, op.split("."))), (rust, op)


def test_sizes_are_declared_unmeasured():
    assert "NOT MEASURED" in DOCKERFILE.read_text()


def dockerignore_patterns(path):
    return [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")]


def ignored(patterns, rel):
    """Docker's .dockerignore semantics, enough for our patterns: a pattern matches a path
    or any of its parent directories; `**/` matches at any depth; the last match wins."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    anywhere = ["/".join(parts[j:i]) for j in range(len(parts)) for i in range(j + 1, len(parts) + 1)]
    hit = False
    for p in patterns:
        neg = p.startswith("!")
        p = p.lstrip("!").lstrip("/")
        if p.startswith("**/"):
            matched = any(fnmatch.fnmatchcase(c, p[3:]) for c in anywhere)
        else:
            matched = any(fnmatch.fnmatchcase(c, p) for c in prefixes)
        if matched:
            hit = not neg
    return hit


def test_dockerignore_keeps_the_workspace_and_drops_the_rest():
    patterns = dockerignore_patterns(ROOT / ".dockerignore")
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    for member in cargo["workspace"]["members"]:
        assert not ignored(patterns, f"{member}/Cargo.toml"), member
        assert not ignored(patterns, f"{member}/src/main.rs"), member
    for kept in ("Cargo.toml", "Cargo.lock", "crds/nsqtopics.nsq.rustnsq.dev.yaml"):
        assert not ignored(patterns, kept), kept
    for dropped in ("target/debug/nsqd", "broker/target/x", ".git/HEAD", ".venv/bin/python",
                    "tests/compat/js/node_modules/x", "charts/nsq-operator/Chart.yaml"):
        assert ignored(patterns, dropped), dropped


# ------------------------------------------------------------------ go-nsq examples

GO = ROOT / "examples" / "go"


def test_go_module_requires_go_nsq_1_1_0():
    mod = (GO / "go.mod").read_text()
    assert re.search(r"^require github\.com/nsqio/go-nsq v1\.1\.0$", mod, re.M), mod
    for prog in ("producer", "consumer"):
        src = (GO / "cmd" / prog / "main.go").read_text()
        assert '"github.com/nsqio/go-nsq"' in src
        assert src.startswith("// Command " + prog)


def test_go_dockerfile_builds_both_programs_onto_distroless():
    all_stages = stages(GO / "Dockerfile")
    names = list(all_stages)
    assert all_stages[names[0]]["from"].startswith("golang:")
    assert all_stages[names[-1]]["from"] == "gcr.io/distroless/static-debian12:nonroot"
    runs = " ".join(a for i, a in all_stages[names[0]]["ins"] if i == "RUN")
    assert "go mod tidy" in runs and "go mod download" in runs and "CGO_ENABLED=0" in runs
    assert "./cmd/producer" in runs and "./cmd/consumer" in runs
    final = all_stages[names[-1]]["ins"]
    assert ("USER", "65532:65532") in final
    assert ("COPY", "--from=build /out/producer /out/consumer /usr/local/bin/") in final


def test_e2e_suite_uses_the_programs_and_flags_that_exist():
    run = (ROOT / "tests" / "e2e" / "run.sh").read_text()
    producer = (GO / "cmd" / "producer" / "main.go").read_text()
    consumer = (GO / "cmd" / "consumer" / "main.go").read_text()
    for flag in ("nsqd-tcp-address", "topic", "count", "run-id"):
        assert f'flag.String("{flag}"' in producer or f'flag.Int("{flag}"' in producer, flag
        assert f'"-{flag}=' in run
    for flag in ("lookupd-http-address", "topic", "channel", "count", "run-id", "timeout"):
        assert re.search(rf'flag\.\w+\("{flag}"', consumer), flag
        assert f'"-{flag}=' in run
    assert "/usr/local/bin/$program" in run


@pytest.mark.parametrize("prog", ["producer", "consumer"])
def test_go_sources_are_gofmt_shaped(prog):
    """No Go toolchain here (go-nsq cannot be fetched), so only what gofmt would flag
    cheaply: tabs for indentation, no trailing whitespace, a final newline."""
    src = (GO / "cmd" / prog / "main.go").read_text()
    assert src.endswith("\n")
    for n, line in enumerate(src.splitlines(), 1):
        assert line == line.rstrip(), f"{prog}:{n}: trailing whitespace"
        assert not line.startswith(" "), f"{prog}:{n}: indent with tabs"


def test_go_jobs_manifest_validates_and_uses_real_env_names():
    from conftest import k8s_validate, load_docs

    docs = load_docs(GO / "jobs.yaml")
    assert [d["kind"] for d in docs] == ["Job", "Job"]
    sources = {p: (GO / "cmd" / p / "main.go").read_text() for p in ("producer", "consumer")}
    for d in docs:
        k8s_validate(d)
        c = d["spec"]["template"]["spec"]["containers"][0]
        program = c["command"][0].rsplit("/", 1)[1]
        for e in c["env"]:
            assert f'"{e["name"]}"' in sources[program], f"{program} does not read {e['name']}"
    env = {e["name"]: e["value"] for d in docs for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NSQD_TCP_ADDRESS"] == "demo-nsqd.default.svc:4150"
    assert env["LOOKUPD_HTTP_ADDRESS"] == "demo-lookupd.default.svc:4161"
