#!/usr/bin/env bash
# Copies into the Helm chart the files it ships from elsewhere in the repository:
#   crds/*.yaml                          -> charts/nsq-operator/crds/        (byte for byte)
#   monitoring/**/*.json (dashboards)    -> charts/nsq-operator/files/dashboards/
#   monitoring/**/*.y*ml with `groups:`  -> charts/nsq-operator/files/prometheus/*.yaml
# Run it after changing any of those; tests/manifests checks that the copies are current.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHART="$ROOT/charts/nsq-operator"

rm -f "$CHART"/crds/*.yaml
cp "$ROOT"/crds/*.yaml "$CHART/crds/"
echo "crds: $(ls "$CHART/crds" | tr '\n' ' ')"

mkdir -p "$CHART/files/dashboards" "$CHART/files/prometheus"
rm -f "$CHART"/files/dashboards/*.json "$CHART"/files/prometheus/*.yaml
if [ -d "$ROOT/monitoring" ]; then
    while IFS= read -r -d '' f; do
        cp "$f" "$CHART/files/dashboards/"
    done < <(find "$ROOT/monitoring" -name '*.json' -type f -print0)
    while IFS= read -r -d '' f; do
        if grep -q '^groups:' "$f"; then
            base="$(basename "$f")"
            cp "$f" "$CHART/files/prometheus/${base%.*}.yaml"
        fi
    done < <(find "$ROOT/monitoring" \( -name '*.yaml' -o -name '*.yml' \) -type f -print0)
    echo "dashboards: $(ls "$CHART/files/dashboards" | tr '\n' ' ')"
    echo "alert rules: $(ls "$CHART/files/prometheus" | tr '\n' ' ')"
else
    echo "monitoring/ does not exist: no dashboards or alert rules copied"
fi
