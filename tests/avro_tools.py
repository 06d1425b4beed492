"""Apache Avro's Java command-line tools (``avro-tools``), the reference the interop tests hold
vtforge to: one jar from Maven Central, fetched with Maven once and cached in
``~/.cache/vtforge/avro-tools/<version>/`` (``$VTFORGE_CACHE_DIR`` moves it). Standard library
only, so ``scripts/setup.d/35-avro-tools.sh`` runs it before the venv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "1.12.0"  # the release issue 18 was tried with


def jar_path(version: str = VERSION) -> Path:
    base = os.environ.get("VTFORGE_CACHE_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vtforge"
    return root / "avro-tools" / version / f"avro-tools-{version}.jar"


def resolve(version: str = VERSION) -> Path:
    """The cached jar, fetched with ``mvn dependency:copy`` when missing; raises when it cannot be."""
    jar = jar_path(version)
    if jar.is_file():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is not installed; run scripts/setup.sh")
    staging = jar.parent / "partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-B",
        "-q",
        "dependency:copy",
        f"-Dartifact=org.apache.avro:avro-tools:{version}",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    fetched = staging / jar.name
    if result.returncode != 0 or not fetched.is_file():
        tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"mvn could not fetch org.apache.avro:avro-tools:{version}: {tail}")
    fetched.replace(jar)  # whole or absent: the cache never holds half a jar
    shutil.rmtree(staging, ignore_errors=True)
    return jar


if __name__ == "__main__":
    if jar_path().is_file():
        sys.exit(0)
    try:
        print(f"setup: avro-tools {VERSION} cached at {resolve()}")
    except RuntimeError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        sys.exit(1)
