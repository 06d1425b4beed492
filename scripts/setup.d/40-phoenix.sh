#!/usr/bin/env bash
# Arize Phoenix, a trace store users run, for the OTLP export test (tests/warehouse/test_otel.py):
# installed in a virtual environment of its own under ~/.cache/vtforge/phoenix-<version>/, since its
# ~140 packages would downgrade some of ours (python-dateutil, tenacity, graphql-core). vtforge never
# imports it; the test starts `phoenix serve` and talks OTLP and REST to it. Idempotent: a no-op
# once the stamp is there.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${PHOENIX_VERSION:-20.26.1}"
dir="$HOME/.cache/vtforge/phoenix-$version"
[ -f "$dir/.installed" ] && exit 0
uv="$repo/.venv/bin/uv"; [ -x "$uv" ] || uv=uv
rm -rf "$dir"
"$uv" venv -q --python "$repo/.venv/bin/python" "$dir"
"$uv" pip install -q --python "$dir/bin/python" "arize-phoenix==$version"
"$dir/bin/phoenix" --help >/dev/null
touch "$dir/.installed"
echo "phoenix $version: $dir"
