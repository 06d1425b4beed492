"""The official Apache Kafka broker jars, resolved from Maven Central with Maven and cached.

We do not download a tarball: Maven resolves ``org.apache.kafka:kafka_2.13`` and its runtime
dependencies (the same jars the binary distribution ships in ``libs/``) plus a logging backend
(Log4j 2 behind the SLF4J 1.x API Kafka uses) into ``~/.cache/vtforge/kafka/<version>/libs``,
with ``org.apache.kafka:kafka-tools`` alone (its classes — ``kafka-console-consumer``,
``kafka-consumer-groups`` — run on the broker's jars; its own dependencies are Kafka Connect's).
A ``.complete`` marker makes the step idempotent: a second call costs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

LOG4J_VERSION = "2.24.3"
CACHE_ENV = "VTFORGE_CACHE_DIR"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vtforge.local</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{version}</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# Broker log to a rolling file (the path comes from -Dkafka.logs.dir); WARN for the chatty parts.
_LOG4J2 = """status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


class JarsError(RuntimeError):
    """The broker jars could not be resolved (no Maven, no network, unknown version)."""


def cache_root() -> Path:
    """``~/.cache/vtforge/kafka`` (or ``$VTFORGE_CACHE_DIR/kafka``)."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vtforge"
    return root / "kafka"


def version_dir(version: str) -> Path:
    return cache_root() / version


def is_resolved(version: str) -> bool:
    """Resolved, with the tools jar (a cache from before the tools were added resolves again)."""
    folder = version_dir(version)
    return (folder / ".complete").is_file() and (folder / "libs" / f"kafka-tools-{version}.jar").is_file()


def log4j_config(version: str) -> Path:
    return version_dir(version) / "log4j2.properties"


def classpath(version: str) -> str:
    """The JVM class path of a resolved version (``libs/*``)."""
    return str(version_dir(version) / "libs" / "*")


def java_command(
    version: str, main: str, *args: str, heap_mb: int, logs_dir: Path, quick_compiler: bool = False
) -> list[str]:
    """The JVM command that runs ``main`` on the jars of ``version`` (what ``bin/kafka-*.sh`` runs).

    ``quick_compiler``: the C1 compiler only, for JVMs that share the cores or live briefly (cluster
    nodes restart ~30 % sooner, a tool starts sooner)."""
    return [
        "java",
        f"-Xmx{heap_mb}m",
        f"-Xms{min(heap_mb, 256)}m",
        "-XX:+UseG1GC",
        *(["-XX:TieredStopAtLevel=1"] if quick_compiler else []),
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs_dir}",
        f"-Dlog4j2.configurationFile={log4j_config(version)}",
        "-cp",
        classpath(version),
        main,
        *args,
    ]


def resolve(version: str, *, quiet: bool = True) -> Path:
    """Resolve the jars of ``version`` once; returns the libs folder."""
    folder = version_dir(version)
    libs = folder / "libs"
    if is_resolved(version):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarsError("Maven (mvn) is not installed; run scripts/setup.sh (it installs maven)")
    if shutil.which("java") is None:
        raise JarsError("Java is not installed; run scripts/setup.sh (it installs a JDK)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(_POM.format(version=version, log4j=LOG4J_VERSION))
    staging = folder / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(folder / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise JarsError(f"mvn could not resolve org.apache.kafka:kafka_2.13:{version}: " + " | ".join(tail))
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    log4j_config(version).write_text(_LOG4J2)
    (folder / ".complete").write_text("\n".join(sorted(p.name for p in libs.glob("*.jar"))) + "\n")
    return libs
