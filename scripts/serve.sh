#!/usr/bin/env bash
# Serve a bundle, building the default one first (shipped weights + shipped sample) when it is absent, or when
# it is bundles/default and the shipped weights are newer than it (a pull brought new weights).
#   scripts/serve.sh [VENV] [BUNDLE] [PORT]
set -euo pipefail
venv="${1:-.venv}"
bundle="${2:-bundles/default}"
port="${3:-8000}"
weights="weights/unihpr_default.pt"
if [ ! -f "$bundle/manifest.json" ]; then
  echo "building $bundle from the shipped weights and sample (about a minute)"
  "$venv/bin/unihpr-build" index --sample --out "$bundle"
elif [ "$bundle" = "bundles/default" ] && [ "$weights" -nt "$bundle/manifest.json" ]; then
  echo "$weights is newer than $bundle: rebuilding it (about a minute; the old one is replaced when done)"
  "$venv/bin/unihpr-build" index --sample --out "$bundle"
fi
exec "$venv/bin/unihpr-serve" --host "${UNIHPR_HOST:-127.0.0.1}" --port "$port" --bundle "$bundle"
