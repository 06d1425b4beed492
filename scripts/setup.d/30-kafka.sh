#!/usr/bin/env bash
# The local Apache Kafka broker for `vtforge kafka start` and the Kafka tests: a Java runtime and
# Maven from Debian, then the official broker jars (org.apache.kafka:kafka_2.13 + runtime deps +
# Log4j 2) resolved from Maven Central into ~/.cache/vtforge/kafka/<version>/. Idempotent: installs
# only what is missing, and the jar step is a no-op once the cache is complete.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
py="$repo/.venv/bin/python"; [ -x "$py" ] || py=python3
cd "$repo"
PYTHONPATH="$repo" "$py" - <<'PY'
import importlib.util
import sys
import time


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jars = load("vtforge_kafka_jars", "vtforge/kafka/jars.py")  # stdlib only: works before the venv
try:
    from vtforge.config import load_config

    version = load_config().forge.events.kafka.broker_version
except Exception:
    version = load("vtforge_constants", "vtforge/constants.py").KAFKA_BROKER_VERSION
if jars.is_resolved(version):
    sys.exit(0)
started = time.monotonic()
libs = jars.resolve(version)
count = len(list(libs.glob("*.jar")))
print(f"setup: Apache Kafka {version} jars ({count}) cached in {libs} in {time.monotonic() - started:.0f}s")
PY
