#!/usr/bin/env bash
# Apache Avro's Java tools (avro-tools, one jar from Maven Central) for the Avro interop tests
# (tests/foundation/test_avro_java.py), cached in ~/.cache/vtforge/avro-tools/<version>/.
# Java and Maven come from 30-kafka.sh. Idempotent: a no-op once the jar is cached.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$repo/.venv/bin/python"; [ -x "$py" ] || py=python3
"$py" "$repo/tests/avro_tools.py"
