#!/usr/bin/env bash
# End-to-end suite on kind: the whole stack on a real Kubernetes cluster.
#
#   tests/e2e/run.sh            run the suite
#   tests/e2e/run.sh --check    only check the prerequisites (prints `ready` or `skipped: ...`)
#
# What it does, in order (each step prints `---- <step>: ok|FAILED`):
#   1. create a kind cluster;
#   2. build the images (Dockerfile targets nsqd, nsqlookupd, nsq-operator, nsq, and the
#      go-nsq examples in examples/go) and `kind load` them;
#   3. `helm install` charts/nsq-operator (two operator replicas, leader election) and check
#      that exactly one replica holds the Lease;
#   4. apply the repository's examples/*.yaml in their own namespace and wait for every
#      NsqCluster, NsqTopic and NsqChannel there to be Ready, then delete them;
#   5. create the suite's own NsqCluster (tests/e2e/manifests/cluster.yaml), wait Ready;
#   6. run the go-nsq producer and consumer (examples/go) as Jobs through the nsqd and
#      lookupd Services and require every message to arrive;
#   7. scale nsqd up: the new pod gets the declared topic and channel (read from its /stats
#      through the API server's pod proxy, no exec) and registers them in nsqlookupd;
#   8. scale nsqd down with messages queued on the pod that goes away, in a channel with
#      consumers and in one without: the operator's drain Job (nsq drain, image nsq) moves
#      them to the remaining pods, marks the removed pod's claim drained and goes away;
#      every message of the consumed channel is then consumed from a survivor, and the
#      unconsumed channel's messages are queued on the survivors (ARCHITECTURE: scale-down
#      never strands messages on a removed pod's disk);
#   9. delete an nsqd pod holding queued messages: they survive on its volume and are
#      consumed after the restart;
#  10. delete an NsqTopic (deletionPolicy Delete): the topic leaves every nsqd and
#      nsqlookupd; a DeleteIfEmpty topic with messages is held back until emptied;
#  11. delete the custom resources, `helm uninstall`, and check nothing is left behind.
#
# Prerequisites: docker (with a reachable daemon), kind, helm, kubectl, python3. When one
# is missing the suite prints `skipped: <what is missing>` and exits 0 without running
# anything — unless E2E_REQUIRE=1 (CI), which turns a skip into a failure (exit 1).
#
# Environment:
#   E2E_REQUIRE=1         a missing prerequisite is an error, not a skip
#   E2E_CLUSTER=name      kind cluster name (default nsq-e2e)
#   E2E_REUSE_CLUSTER=1   use an existing kind cluster of that name; never delete it
#   E2E_KEEP=1            keep the kind cluster afterwards (for debugging)
#   E2E_SKIP_BUILD=1      images are already built with the tags below (CI builds them first)
#   E2E_IMAGE_TAG=tag     tag of the images built/loaded (default e2e)
#   E2E_IMAGE_REGISTRY=r  image repository prefix (default ghcr.io/rustnsq)
#   E2E_MESSAGES=n        messages per producer run (default 2000)
#   KIND_NODE_IMAGE=img   kind node image (default: kind's own default)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/e2e"
cd "$ROOT"

CLUSTER="${E2E_CLUSTER:-nsq-e2e}"
TAG="${E2E_IMAGE_TAG:-e2e}"
REGISTRY="${E2E_IMAGE_REGISTRY:-ghcr.io/rustnsq}"
MESSAGES="${E2E_MESSAGES:-2000}"
OP_NS=nsq-system
EX_NS=nsq-examples
NS=nsq-e2e
NSQ=e2e                                # the suite's NsqCluster (tests/e2e/manifests/cluster.yaml)
RELEASE=nsq-operator
GO_IMAGE="nsq-go-examples:$TAG"
IMG_NSQD="$REGISTRY/nsqd:$TAG"
IMG_LOOKUPD="$REGISTRY/nsqlookupd:$TAG"
IMG_OPERATOR="$REGISTRY/nsq-operator:$TAG"
IMG_CLI="$REGISTRY/nsq:$TAG"

# ------------------------------------------------------------------ prerequisites

# Prints `ready`, or `skipped: <reasons>`; returns 1 when something is missing.
check_prerequisites() {
    local missing=() t
    for t in docker kind helm kubectl python3; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t not found on PATH")
    done
    if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
        missing+=("Docker daemon not reachable (docker info failed)")
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        local joined="" m
        for m in "${missing[@]}"; do joined+="${joined:+; }$m"; done
        echo "skipped: $joined"
        return 1
    fi
    echo "ready"
}

if [ "${1:-}" = "--check" ]; then
    check_prerequisites || true
    exit 0
fi

if ! reason="$(check_prerequisites)"; then
    echo "$reason"
    echo "e2e: NOTHING RAN — the kind suite needs docker (with a daemon), kind, helm, kubectl and python3."
    if [ "${E2E_REQUIRE:-0}" = "1" ]; then
        echo "e2e: E2E_REQUIRE=1, so a skip is a failure" >&2
        exit 1
    fi
    exit 0
fi

# ------------------------------------------------------------------ bookkeeping

passed=()
failed=()
started=$SECONDS
# Steps run in child processes (see step), so what they must tell the parent goes here.
STATE="$(mktemp -d)"

log() { printf '[e2e %4ss] %s\n' $((SECONDS - started)) "$*"; }

# step NAME FUNC...: run one step, record the outcome in LAST_RC; always returns 0.
# Never call it (or a step function) from an `if`, `&&` or `||`: bash silently turns
# `set -e` off inside a function called there, so a failing command in the middle of a
# step would not fail it. The step runs as a background job that is waited for, so that
# its `set -e` is in force and a failure ends only that step.
LAST_RC=0
step() {
    local name=$1
    shift
    printf '\n==================== %s ====================\n' "$name"
    local t0=$SECONDS rc=0
    "$@" &
    wait $! || rc=$?
    if [ "$rc" -eq 0 ]; then
        passed+=("$name")
        printf -- '---- %s: ok (%ss)\n' "$name" $((SECONDS - t0))
    else
        failed+=("$name")
        printf -- '---- %s: FAILED (exit %s, %ss)\n' "$name" "$rc" $((SECONDS - t0))
        diagnostics "$name" || true
    fi
    LAST_RC=$rc
}

# must NAME FUNC...: a step the rest depends on; stop the suite when it fails.
must() {
    step "$@"
    if [ "$LAST_RC" -ne 0 ]; then finish; fi
}

diagnostics() {
    echo "---- diagnostics after: $1"
    kubectl get nodes -o wide || true
    kubectl get nsqclusters,nsqtopics,nsqchannels -A -o wide || true
    kubectl get pods,statefulsets,services,pvc,jobs -A -o wide | grep -v kube-system || true
    kubectl get events -A --sort-by=.lastTimestamp | tail -40 || true
    kubectl -n "$OP_NS" logs -l app.kubernetes.io/name=nsq-operator --tail=80 --prefix || true
}

finish() {
    echo
    echo "==================== e2e summary (${SECONDS}s) ===================="
    local s
    for s in "${passed[@]}"; do printf '  ok      %s\n' "$s"; done
    for s in "${failed[@]}"; do printf '  FAILED  %s\n' "$s"; done
    echo "e2e: ${#passed[@]} passed, ${#failed[@]} failed"
    if [ "${#failed[@]}" -eq 0 ]; then exit 0; else exit 1; fi
}

cleanup() {
    if [ -e "$STATE/cluster-created" ] && [ "${E2E_KEEP:-0}" != 1 ]; then
        log "deleting kind cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    elif [ -e "$STATE/cluster-created" ]; then
        log "E2E_KEEP=1: kind cluster $CLUSTER kept (kind delete cluster --name $CLUSTER)"
    fi
    rm -rf "$STATE"
}
trap cleanup EXIT

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 3 s until it succeeds.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        sleep 3
    done
    log "ok: $what"
}

# GET on an nsqd/nsqlookupd pod's HTTP port through the API server's pod proxy (no exec,
# no port-forward).
pod_get() { # NAMESPACE POD PORT PATH
    kubectl get --raw "/api/v1/namespaces/$1/pods/http:$2:$3/proxy$4"
}
pod_post() { # NAMESPACE POD PORT PATH
    kubectl create --raw "/api/v1/namespaces/$1/pods/http:$2:$3/proxy$4" -f /dev/null
}

# Channel depth (queued, not in flight) of TOPIC/CHANNEL on one nsqd pod; -1 if absent.
channel_depth() { # POD TOPIC CHANNEL
    pod_get "$NS" "$1" 4151 "/stats?format=json&topic=$2" | python3 -c '
import json, sys
d = json.load(sys.stdin); d = d.get("data", d)
topic, channel = sys.argv[1], sys.argv[2]
for t in d.get("topics") or []:
    if t["topic_name"] == topic:
        for c in t.get("channels") or []:
            if c["channel_name"] == channel:
                print(c["depth"]); sys.exit(0)
print(-1)' "$2" "$3"
}

# Succeeds when POD's /stats lists TOPIC with CHANNEL.
pod_has_channel() { # POD TOPIC CHANNEL
    [ "$(channel_depth "$1" "$2" "$3")" -ge 0 ]
}

# Succeeds when POD's /stats does not list TOPIC.
pod_lacks_topic() { # POD TOPIC
    pod_get "$NS" "$1" 4151 "/stats?format=json" | python3 -c '
import json, sys
d = json.load(sys.stdin); d = d.get("data", d)
sys.exit(1 if any(t["topic_name"] == sys.argv[1] for t in d.get("topics") or []) else 0)' "$2"
}

# Succeeds when nsqlookupd pod LOOKUPD lists the nsqd pod NSQD as a producer of TOPIC.
lookupd_lists_producer() { # LOOKUPD_POD TOPIC NSQD_POD
    pod_get "$NS" "$1" 4161 "/lookup?topic=$2" | python3 -c '
import json, sys
d = json.load(sys.stdin); d = d.get("data", d)
want = sys.argv[1] + "."
sys.exit(0 if any(p["broadcast_address"].startswith(want) for p in d.get("producers") or []) else 1)' "$3"
}

lookupd_lacks_topic() { # LOOKUPD_POD TOPIC
    pod_get "$NS" "$1" 4161 "/topics" | python3 -c '
import json, sys
d = json.load(sys.stdin); d = d.get("data", d)
sys.exit(1 if sys.argv[1] in (d.get("topics") or []) else 0)' "$2"
}

# run_job NAME TIMEOUT_S PROGRAM FLAGS...: runs /usr/local/bin/PROGRAM of the go-nsq example
# image as a Job in $NS and waits for it to succeed; prints its log either way.
run_job() {
    local name=$1 timeout=$2 program=$3
    shift 3
    local args="" a
    for a in "$@"; do args+="            - \"$a\""$'\n'; done
    kubectl -n "$NS" delete job "$name" --ignore-not-found --wait=true >/dev/null
    kubectl -n "$NS" apply -f - <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $name
  labels: {app.kubernetes.io/part-of: nsq-e2e}
spec:
  backoffLimit: 0
  activeDeadlineSeconds: $timeout
  template:
    metadata:
      labels: {app.kubernetes.io/part-of: nsq-e2e}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: $program
          image: $GO_IMAGE
          imagePullPolicy: IfNotPresent
          command: ["/usr/local/bin/$program"]
          args:
$args
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
EOF
    local deadline=$((SECONDS + timeout + 30)) ok="" bad=""
    while [ "$SECONDS" -lt "$deadline" ]; do
        ok="$(kubectl -n "$NS" get job "$name" -o jsonpath='{.status.succeeded}' || true)"
        bad="$(kubectl -n "$NS" get job "$name" -o jsonpath='{.status.failed}' || true)"
        [ -n "$ok$bad" ] && break
        sleep 3
    done
    echo "---- job/$name log:"
    kubectl -n "$NS" logs "job/$name" --tail=50 || true
    if [ "${ok:-0}" = 1 ]; then
        log "job/$name succeeded"
        return 0
    fi
    log "job/$name did not succeed (succeeded=${ok:-0} failed=${bad:-0})"
    return 1
}

NSQD_SVC="$NSQ-nsqd.$NS.svc:4150"
LOOKUPD_SVC="$NSQ-lookupd.$NS.svc:4161"
nsqd_pod_addr() { echo "$NSQ-nsqd-$1.$NSQ-nsqd-headless.$NS.svc:4150"; }

produce() { # JOB RUN_ID TOPIC COUNT NSQD_ADDRESS
    run_job "$1" 180 producer "-nsqd-tcp-address=$5" "-topic=$3" "-count=$4" "-run-id=$2"
}
consume() { # JOB RUN_ID TOPIC CHANNEL COUNT TIMEOUT
    run_job "$1" "$6" consumer "-lookupd-http-address=$LOOKUPD_SVC" "-topic=$3" "-channel=$4" \
        "-count=$5" "-run-id=$2" "-timeout=${6}s"
}

# Predicates for wait_until (evaluated afresh on every poll).
jsonpath_is() { # WANT KUBECTL-GET-ARGS... (the last one is -o jsonpath=...)
    local want=$1
    shift
    [ "$(kubectl "$@")" = "$want" ]
}
sts_ready_replicas_is() { jsonpath_is "$2" -n "$NS" get sts "$1" -o jsonpath='{.status.readyReplicas}'; }
sts_replicas_is() { jsonpath_is "$2" -n "$NS" get sts "$1" -o jsonpath='{.status.replicas}'; }
topic_node_count_is() { jsonpath_is "$2" -n "$NS" get nsqtopic "$1" -o jsonpath='{.status.nodeCount}'; }
lease_held() { [ -n "$(kubectl -n "$OP_NS" get lease "$RELEASE" -o jsonpath='{.spec.holderIdentity}')" ]; }

set_nsqd_replicas() {
    kubectl -n "$NS" patch nsqcluster "$NSQ" --type=merge -p "{\"spec\":{\"nsqd\":{\"replicas\":$1}}}"
}

cluster_ready() {
    kubectl -n "$NS" wait "nsqcluster/$NSQ" --for=condition=Ready --timeout=15m
}

# ------------------------------------------------------------------ steps

s_kind() {
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
        if [ "${E2E_REUSE_CLUSTER:-0}" = 1 ]; then
            log "reusing kind cluster $CLUSTER"
        else
            log "kind cluster $CLUSTER exists; set E2E_REUSE_CLUSTER=1 to reuse it or delete it"
            return 1
        fi
    else
        kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
        [ "${E2E_REUSE_CLUSTER:-0}" = 1 ] || touch "$STATE/cluster-created"
    fi
    kubectl config use-context "kind-$CLUSTER"
    kubectl get nodes -o wide
}

s_images() {
    if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
        local target
        for target in nsqd nsqlookupd nsq-operator nsq; do
            log "docker build --target $target"
            docker build --target "$target" -t "$REGISTRY/$target:$TAG" "$ROOT"
        done
        log "docker build examples/go"
        docker build -t "$GO_IMAGE" "$ROOT/examples/go"
    fi
    local img
    for img in "$IMG_NSQD" "$IMG_LOOKUPD" "$IMG_OPERATOR" "$IMG_CLI" "$GO_IMAGE"; do
        docker image inspect "$img" >/dev/null || { log "image $img is missing"; return 1; }
        # No shell in any runtime image, and not root.
        local user
        user="$(docker image inspect -f '{{.Config.User}}' "$img")"
        case "$user" in
            65532:65532 | 65532 | nonroot | nonroot:nonroot) ;;
            *) log "image $img runs as '$user', not the nonroot user 65532"; return 1 ;;
        esac
    done
    docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E ":$TAG " || true
    for img in "$IMG_NSQD" "$IMG_LOOKUPD" "$IMG_OPERATOR" "$IMG_CLI" "$GO_IMAGE"; do
        kind load docker-image --name "$CLUSTER" "$img"
    done
}

s_helm_install() {
    helm install "$RELEASE" "$ROOT/charts/nsq-operator" -n "$OP_NS" --create-namespace \
        --set image.repository="$REGISTRY/nsq-operator" --set image.tag="$TAG" \
        --set defaultImages.nsqd.repository="$REGISTRY/nsqd" --set defaultImages.nsqd.tag="$TAG" \
        --set defaultImages.nsqlookupd.repository="$REGISTRY/nsqlookupd" \
        --set defaultImages.nsqlookupd.tag="$TAG" \
        --set defaultImages.nsq.repository="$REGISTRY/nsq" --set defaultImages.nsq.tag="$TAG" \
        --set operator.logFormat=text --set operator.resyncSeconds=10 \
        --wait --timeout 5m
    kubectl -n "$OP_NS" rollout status deployment/"$RELEASE" --timeout=3m
    local ready
    ready="$(kubectl -n "$OP_NS" get deployment "$RELEASE" -o jsonpath='{.status.readyReplicas}')"
    [ "$ready" = 2 ] || { log "expected 2 ready operator replicas, got '$ready'"; return 1; }
    for crd in nsqclusters nsqtopics nsqchannels; do
        kubectl get crd "$crd.nsq.rustnsq.dev" >/dev/null
    done
    # Exactly one replica leads: the Lease names one of the two pods.
    wait_until 60 "the leader Lease is held" lease_held
    local holder
    holder="$(kubectl -n "$OP_NS" get lease "$RELEASE" -o jsonpath='{.spec.holderIdentity}')"
    kubectl -n "$OP_NS" get pods -l app.kubernetes.io/name=nsq-operator -o name | grep -qx "pod/$holder" ||
        { log "Lease holder '$holder' is not an operator pod"; return 1; }
    log "leader: $holder"
}

s_examples() {
    shopt -s nullglob
    local files=("$ROOT"/examples/*.yaml "$ROOT"/examples/*.yml)
    shopt -u nullglob
    if [ "${#files[@]}" -eq 0 ]; then
        log "no examples/*.yaml to apply (expected the NsqCluster/NsqTopic/NsqChannel examples)"
        return 1
    fi
    kubectl create namespace "$EX_NS" --dry-run=client -o yaml | kubectl apply -f -
    local f args=()
    for f in "${files[@]}"; do args+=(-f "$f"); done
    kubectl -n "$EX_NS" apply "${args[@]}"
    local kind
    for kind in nsqclusters nsqtopics nsqchannels; do
        if [ -n "$(kubectl -n "$EX_NS" get "$kind" -o name)" ]; then
            kubectl -n "$EX_NS" wait "$kind" --all --for=condition=Ready --timeout=15m
        fi
    done
    kubectl -n "$EX_NS" get nsqclusters,nsqtopics,nsqchannels -o wide
    # Free the nodes for the rest: topics and channels first (their finalizers need the
    # cluster), then everything else.
    kubectl -n "$EX_NS" delete nsqchannels,nsqtopics --all --wait=true --timeout=3m
    kubectl -n "$EX_NS" delete "${args[@]}" --ignore-not-found --wait=true --timeout=5m
    kubectl delete namespace "$EX_NS" --wait=true --timeout=5m
}

s_cluster() {
    kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
    kubectl -n "$NS" apply -f "$HERE/manifests/cluster.yaml"
    cluster_ready
    kubectl -n "$NS" wait nsqtopics,nsqchannels --all --for=condition=Ready --timeout=5m
    kubectl -n "$NS" get nsqclusters,nsqtopics,nsqchannels -o wide
    local addr
    addr="$(kubectl -n "$NS" get nsqcluster "$NSQ" -o jsonpath='{.status.lookupdHttpAddress} {.status.nsqdTcpAddress}')"
    [ "$addr" = "$LOOKUPD_SVC $NSQD_SVC" ] ||
        { log "status addresses '$addr' != '$LOOKUPD_SVC $NSQD_SVC'"; return 1; }
}

s_messages() {
    produce produce-basic basic orders "$MESSAGES" "$NSQD_SVC"
    consume consume-basic basic orders consumer "$MESSAGES" 180
}

s_scale_up() {
    set_nsqd_replicas 3
    wait_until 600 "nsqd StatefulSet has 3 ready pods" sts_ready_replicas_is "$NSQ-nsqd" 3
    cluster_ready
    # The operator re-applies the declared topic and channel to the new pod.
    wait_until 180 "NsqTopic orders is on 3 nodes" topic_node_count_is orders 3
    wait_until 180 "$NSQ-nsqd-2 /stats lists orders/consumer" pod_has_channel "$NSQ-nsqd-2" orders consumer
    wait_until 180 "$NSQ-nsqd-2 /stats lists orders/archive" pod_has_channel "$NSQ-nsqd-2" orders archive
    wait_until 120 "$NSQ-lookupd-0 lists $NSQ-nsqd-2 as a producer of orders" \
        lookupd_lists_producer "$NSQ-lookupd-0" orders "$NSQ-nsqd-2"
}

# Sum of the depth of TOPIC/CHANNEL over the nsqd pods given.
depth_sum() { # TOPIC CHANNEL POD...
    local topic=$1 channel=$2 total=0 d p
    shift 2
    for p in "$@"; do
        d="$(channel_depth "$p" "$topic" "$channel")"
        [ "$d" -ge 0 ] && total=$((total + d))
    done
    echo "$total"
}

# Succeeds once the drain of nsqd pod $1 is over: its claim is annotated drained (the
# suite's cluster keeps claims, whenScaled Retain), no drain Job is left, and the
# NsqCluster reports no pending drain.
drain_done() { # ORDINAL
    local claim="data-$NSQ-nsqd-$1"
    [ "$(kubectl -n "$NS" get pvc "$claim" -o jsonpath='{.metadata.annotations.nsq\.rustnsq\.dev/drained}')" = true ] &&
        ! kubectl -n "$NS" get job "$NSQ-nsqd-drain-$1" >/dev/null 2>&1 &&
        [ "$(kubectl -n "$NS" get nsqcluster "$NSQ" -o jsonpath='{.status.pendingDrains}')" = 0 ]
}

s_scale_down() {
    local n=500 gone="$NSQ-nsqd-2"
    # Messages queued on the pod that scaling down removes: orders/consumer has consumers
    # (none connected now), orders/archive never has any.
    produce produce-scaledown scaledown orders "$n" "$(nsqd_pod_addr 2)"
    local queued archived archive_before
    queued="$(channel_depth "$gone" orders consumer)"
    archived="$(channel_depth "$gone" orders archive)"
    archive_before="$(depth_sum orders archive "$NSQ-nsqd-0" "$NSQ-nsqd-1")"
    log "$gone holds $queued in orders/consumer and $archived in orders/archive before scaling down"
    [ "$queued" -ge "$n" ] || { log "expected >= $n queued in orders/consumer on $gone"; return 1; }
    [ "$archived" -ge "$n" ] || { log "expected >= $n queued in orders/archive on $gone"; return 1; }

    set_nsqd_replicas 2
    # No waiting for consumers: the StatefulSet goes down to 2 at once.
    wait_until 180 "nsqd StatefulSet is down to 2 pods" sts_replicas_is "$NSQ-nsqd" 2
    wait_until 300 "$gone is gone" bash -c "! kubectl -n $NS get pod $gone"
    wait_until 600 "the drain of $gone's volume is done (claim marked drained, Job removed)" drain_done 2
    kubectl -n "$NS" get events --field-selector reason=Drained -o name | grep -q . ||
        { log "no Drained event for the NsqCluster"; return 1; }
    kubectl -n "$NS" get pvc "data-$gone" >/dev/null ||
        { log "whenScaled Retain: the drained claim data-$gone must be kept"; return 1; }
    cluster_ready

    # The channel nobody reads: its messages now wait on the survivors.
    local archive_after
    archive_after="$(depth_sum orders archive "$NSQ-nsqd-0" "$NSQ-nsqd-1")"
    log "orders/archive on the survivors: $archive_before before, $archive_after after the drain"
    [ "$archive_after" -ge $((archive_before + archived)) ] || {
        log "orders/archive messages of $gone did not reach the survivors"
        return 1
    }
    # The consumed channel: every message reaches a consumer, from a survivor.
    consume consume-scaledown scaledown orders consumer "$n" 240 || {
        log "messages queued on $gone were not delivered after the drain"
        return 1
    }
}

s_pod_restart() {
    local n=500 pod="$NSQ-nsqd-1"
    produce produce-restart restart orders "$n" "$(nsqd_pod_addr 1)"
    local before after uid
    before="$(channel_depth "$pod" orders consumer)"
    log "$pod holds $before messages in orders/consumer"
    [ "$before" -ge "$n" ] || { log "expected >= $n queued on $pod"; return 1; }
    uid="$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.metadata.uid}')"
    kubectl -n "$NS" delete pod "$pod" --wait=true --timeout=3m
    wait_until 300 "$pod is back (new pod) and Ready" bash -c \
        "[ \"\$(kubectl -n $NS get pod $pod -o jsonpath='{.metadata.uid}')\" != '$uid' ] &&
         kubectl -n $NS wait pod/$pod --for=condition=Ready --timeout=5s"
    after="$(channel_depth "$pod" orders consumer)"
    log "$pod holds $after messages in orders/consumer after the restart"
    [ "$after" -ge "$n" ] || { log "queued messages did not survive the pod restart"; return 1; }
    consume consume-restart restart orders consumer "$n" 180
}

s_topic_delete() {
    local p
    # deletionPolicy Delete: goes even with messages queued.
    produce produce-doomed doomed doomed 50 "$NSQD_SVC"
    kubectl -n "$NS" delete nsqtopic doomed --wait=true --timeout=3m
    for p in $(kubectl -n "$NS" get pods -l app.kubernetes.io/instance="$NSQ",app.kubernetes.io/component=nsqd -o name); do
        wait_until 60 "${p#pod/} no longer has topic doomed" pod_lacks_topic "${p#pod/}" doomed
    done
    for p in $(kubectl -n "$NS" get pods -l app.kubernetes.io/instance="$NSQ",app.kubernetes.io/component=nsqlookupd -o name); do
        wait_until 60 "${p#pod/} no longer lists topic doomed" lookupd_lacks_topic "${p#pod/}" doomed
    done

    # deletionPolicy DeleteIfEmpty: held back (DeletionBlocked) while messages remain.
    produce produce-guarded guarded guarded 20 "$(nsqd_pod_addr 0)"
    kubectl -n "$NS" delete nsqtopic guarded --wait=false
    wait_until 120 "NsqTopic guarded reports DeletionBlocked" bash -c \
        "kubectl -n $NS get nsqtopic guarded -o jsonpath='{.status.conditions[?(@.type==\"DeletionBlocked\")].status}' | grep -qx True"
    sleep 10
    kubectl -n "$NS" get nsqtopic guarded >/dev/null || { log "guarded was deleted with messages queued"; return 1; }
    pod_post "$NS" "$NSQ-nsqd-0" 4151 "/topic/empty?topic=guarded" >/dev/null
    wait_until 180 "NsqTopic guarded is gone once empty" bash -c \
        "! kubectl -n $NS get nsqtopic guarded"
    wait_until 60 "$NSQ-nsqd-0 no longer has topic guarded" pod_lacks_topic "$NSQ-nsqd-0" guarded
}

s_uninstall() {
    kubectl -n "$NS" delete nsqchannels,nsqtopics --all --wait=true --timeout=3m
    kubectl -n "$NS" delete nsqcluster "$NSQ" --wait=true --timeout=5m
    wait_until 180 "the cluster's StatefulSets and Services are garbage-collected" bash -c \
        "[ -z \"\$(kubectl -n $NS get sts,svc,pdb -l app.kubernetes.io/instance=$NSQ -o name)\" ]"
    kubectl -n "$NS" delete jobs -l app.kubernetes.io/part-of=nsq-e2e --wait=true
    helm uninstall "$RELEASE" -n "$OP_NS" --wait --timeout 3m
    wait_until 120 "no operator pods left" bash -c \
        "[ -z \"\$(kubectl -n $OP_NS get pods -l app.kubernetes.io/name=nsq-operator -o name)\" ]"
    ! kubectl get clusterrole "$RELEASE" >/dev/null 2>&1 || { log "ClusterRole $RELEASE left behind"; return 1; }
    ! kubectl get clusterrolebinding "$RELEASE" >/dev/null 2>&1 || { log "ClusterRoleBinding left behind"; return 1; }
    # Helm never deletes CRDs it installed from crds/ (by design: that would delete every
    # custom resource). Nothing may be stuck on a finalizer.
    local left
    left="$(kubectl get nsqclusters,nsqtopics,nsqchannels -A -o name)"
    [ -z "$left" ] || { log "custom resources left behind: $left"; return 1; }
    kubectl delete crd nsqclusters.nsq.rustnsq.dev nsqtopics.nsq.rustnsq.dev nsqchannels.nsq.rustnsq.dev --wait=true
    kubectl delete namespace "$NS" "$OP_NS" --wait=true --timeout=5m
}

# ------------------------------------------------------------------ run

log "kind cluster $CLUSTER, images $REGISTRY/*:$TAG and $GO_IMAGE, $MESSAGES messages per run"
must "kind: create cluster" s_kind
must "images: build and kind load" s_images
must "helm install (2 replicas, leader election)" s_helm_install
step "examples: apply examples/*.yaml, all Ready, delete" s_examples
must "cluster: NsqCluster $NSQ + topics + channels Ready" s_cluster
must "messages: go-nsq producer -> nsqd Service, consumer <- lookupd Service" s_messages
step "scale up: new nsqd pod gets the declared topic and channel" s_scale_up
step "scale down: the removed pod's volume is drained into the survivors" s_scale_down
step "pod delete: queued messages survive on the volume" s_pod_restart
step "NsqTopic delete: cleanup on nodes, DeleteIfEmpty holds" s_topic_delete
step "uninstall: resources and release removed cleanly" s_uninstall
finish
