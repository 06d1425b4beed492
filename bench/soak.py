"""Soak: a steady stream through a local 3-broker Kafka cluster under faults, then a checker.

What runs (all real processes on 127.0.0.1, under a temporary data dir):

* a KRaft cluster of 3 brokers and a controller (``vtforge.kafka.LocalCluster``), topics with
  replication 3 and ``min.insync.replicas`` 2;
* ``--producers`` producer processes, each emitting ~1 KB rollout events through ``KafkaSink``
  (acks=all, idempotent) in batches; a batch is *acknowledged* when ``flush`` returns, and its
  event ids are appended to the producer's ``acked`` file; a batch whose flush raised
  ``SinkError`` is *unacknowledged* (its ids go to ``unacked``: the sink reported them, they may
  or may not land, and they are never re-sent);
* ``--ingestors`` ingestor processes (``python -m vtforge.ingest``) in one consumer group;
* a bounded schedule of ``--faults`` faults, evenly spaced, cycling through: SIGKILL of a broker
  (restarted 10 s later), SIGKILL of an ingestor (another one started), a network pause of a
  broker (SIGSTOP, SIGCONT 8 s later), a clean restart of a broker.

At the end the producers stop, the ingestors are stopped and one more drains the topics
(``--once``). The checker compares every acknowledged event id with the landing zone (lost: never
landed; duplicates: landed more than once) and with the warehouse after ``refresh`` (its
``events`` table). It prints events/s, the group's lag p95 (sampled every 2 s), acknowledged,
unacknowledged, landed, lost and duplicates, and ends with ``ratio: <landed / acknowledged>``.

    python bench/soak.py --minutes 10            # the recorded run (≥ 1M events, ≥ 10 faults)
    python bench/soak.py --minutes 2 --faults 4  # a quick one
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import rollout  # noqa: E402  (bench/ingest.py's ~1 KB rollout event)

from vtforge.config import Config, load_config  # noqa: E402

BATCH = 500  # events per flush: one acknowledgement unit


# --- the producer process --------------------------------------------------------------------------
def produce(root: Path, name: str, rate: float, stop_file: Path) -> None:
    """Emit batches at about ``rate`` events/s until ``stop_file`` exists; record every outcome."""
    from vtforge.transport import SinkError, sink_from_config

    config = load_config(root / "vtcode.toml", cwd=root, env={})
    acked = (root / f"acked-{name}.txt").open("a")
    unacked = (root / f"unacked-{name}.txt").open("a")
    sink = sink_from_config(config, producer=f"bench.soak.{name}")
    started, sent, i = time.monotonic(), 0, 0
    while not stop_file.exists():
        batch = [rollout(i + k, f"{name}") for k in range(BATCH)]
        i += BATCH
        ids = [e["envelope"]["event_id"] for e in batch]
        try:
            for event in batch:
                sink.emit(event)
            sink.flush()
        except SinkError as exc:
            unacked.write("\n".join(ids) + "\n")
            unacked.flush()
            print(f"producer {name}: {str(exc)[:160]}", file=sys.stderr, flush=True)
            time.sleep(0.5)
            continue
        acked.write("\n".join(ids) + "\n")
        acked.flush()
        sent += BATCH
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    with contextlib.suppress(SinkError):  # the last batch was recorded already
        sink.close()


# --- the orchestrator ------------------------------------------------------------------------------
def write_config(root: Path, ports: list[int], tag: str) -> Config:
    servers = ",".join(f"127.0.0.1:{p}" for p in ports)
    (root / "vtcode.toml").write_text(
        f"""[forge.events]
sink = "kafka"
bootstrap_servers = "{servers}"
topic_prefix = "{tag}."
dead_letter_topic = "{tag}.dead-letter"
flush_max_events = 20000
flush_interval_s = 1.0

[forge.events.kafka]
brokers = {len(ports)}
replication_factor = 3
min_insync_replicas = 2
consumer_group = "{tag}-ingest"
broker_heap_mb = 384
linger_ms = 5

[forge.warehouse]
data_dir = ".forge"
"""
    )
    return load_config(root / "vtcode.toml", cwd=root, env={})


def spawn(root: Path, *args: str, log: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = (root / log).open("ab")
    return subprocess.Popen([sys.executable, *args], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)


def read_ids(root: Path, pattern: str) -> list[str]:
    ids: list[str] = []
    for path in sorted(root.glob(pattern)):
        ids.extend(line for line in path.read_text().splitlines() if line)
    return ids


class Faults:
    """The fault schedule: evenly spaced, cycling through four kinds."""

    KINDS = ("kill_broker", "kill_ingestor", "pause_broker", "restart_broker")

    def __init__(self, cluster, root: Path, ingestors: list[subprocess.Popen[bytes]]) -> None:
        self.cluster, self.root, self.ingestors = cluster, root, ingestors
        self.done: list[dict[str, object]] = []
        self._pending: list[tuple[float, str, int]] = []  # (when, action, node)
        self._spawned = 0

    def inject(self, n: int) -> None:
        kind = self.KINDS[n % len(self.KINDS)]
        node = 1 + (n // len(self.KINDS)) % len(self.cluster.brokers)
        now = time.monotonic()
        if kind == "kill_broker":
            self.cluster.kill_node(node)
            self._pending.append((now + 10, "start", node))
        elif kind == "kill_ingestor":
            victim = self.ingestors.pop(0)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self._spawned += 1
            self.ingestors.append(
                spawn(self.root, "-m", "vtforge.ingest", log=f"ingest-new{self._spawned}.log")
            )
        elif kind == "pause_broker":
            pid = self.cluster.node(node).status().pid
            if pid:
                os.kill(pid, signal.SIGSTOP)
                self._pending.append((now + 8, "cont", pid))
        else:
            self.cluster.stop_node(node)
            self.cluster.start_node(node)
        self.done.append({"at_s": round(now - START, 1), "fault": kind, "node": node})
        print(f"  {now - START:6.1f}s fault {n + 1}: {kind} (broker {node})", flush=True)

    def tick(self) -> None:
        now = time.monotonic()
        for item in [p for p in self._pending if p[0] <= now]:
            self._pending.remove(item)
            _, action, target = item
            if action == "start":
                self.cluster.start_node(target)
            else:
                os.kill(target, signal.SIGCONT)

    def settle(self) -> None:
        while self._pending:
            self.tick()
            time.sleep(0.2)


def sample_lag(config: Config, lags: list[int], done: threading.Event) -> None:
    """The group's total lag on the rollout topic every 2 s (a sample that fails is skipped)."""
    from vtforge.ingest.status import topic_lags

    rollouts = [config.forge.events.topic("rollout")]
    while not done.wait(2.0):
        with contextlib.suppress(Exception):
            lags.append(sum(p.lag for p in topic_lags(config, rollouts)))


START = time.monotonic()


def main() -> None:
    global START
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--faults", type=int, default=12)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s per producer")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--ingestors", type=int, default=2)
    parser.add_argument("--port", type=int, default=39400, help="first broker port")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (printed)")
    parser.add_argument("--role", default="soak", help=argparse.SUPPRESS)
    parser.add_argument("--root", default="", help=argparse.SUPPRESS)
    parser.add_argument("--name", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "producer":
        root = Path(args.root)
        produce(root, args.name, args.rate, root / "stop")
        return

    from vtforge.kafka import LocalCluster
    from vtforge.warehouse.refresh import refresh

    root = Path(tempfile.mkdtemp(prefix="vtforge-soak-"))
    tag = f"soak{uuid.uuid4().hex[:6]}"
    config = write_config(root, [args.port, args.port + 1, args.port + 2], tag)
    cluster = LocalCluster.from_config(config)
    print(
        f"soak: {args.minutes} min, {args.producers}×{args.rate:.0f} ev/s, {args.faults} faults; data {root}"
    )
    cluster.start(wait_s=180)
    try:
        START = time.monotonic()
        producers = [
            spawn(
                root,
                str(Path(__file__).resolve()),
                "--role=producer",
                f"--root={root}",
                f"--name=p{n}",
                f"--rate={args.rate}",
                log=f"producer-{n}.log",
            )
            for n in range(args.producers)
        ]
        ingestors = [
            spawn(root, "-m", "vtforge.ingest", log=f"ingest-{n}.log") for n in range(args.ingestors)
        ]
        faults = Faults(cluster, root, ingestors)
        duration = args.minutes * 60
        every = duration / (args.faults + 1)
        lags: list[int] = []
        sampling = threading.Event()
        sampler = threading.Thread(target=sample_lag, args=(config, lags, sampling), daemon=True)
        sampler.start()  # apart: a sample can block for seconds on a paused broker
        next_fault, n = every, 0
        while (elapsed := time.monotonic() - START) < duration or n < args.faults:
            faults.tick()
            if n < args.faults and elapsed >= next_fault:
                faults.inject(n)
                n += 1
                next_fault += every
            time.sleep(0.2)
        sampling.set()
        faults.settle()
        (root / "stop").write_text("")
        for p in producers:
            p.wait(timeout=300)
        produced_s = time.monotonic() - START
        for p in faults.ingestors:
            p.send_signal(signal.SIGTERM)
        for p in faults.ingestors:
            p.wait(timeout=120)
        drain = spawn(root, "-m", "vtforge.ingest", "--once", log="ingest-drain.log")
        drain.wait(timeout=600)

        # --- the checker ---------------------------------------------------------------------
        acked = read_ids(root, "acked-*.txt")
        unacked = read_ids(root, "unacked-*.txt")
        files = [str(p) for p in sorted((config.landing_dir / "rollout").rglob("*.parquet"))]
        con = duckdb.connect()
        acked_ids = pa.table({"event_id": pa.array(acked, pa.string())})
        con.register("acked", acked_ids)
        con.execute(
            "CREATE TABLE landed AS SELECT envelope.event_id AS event_id FROM read_parquet(?)", [files]
        )
        landed_rows, landed = con.execute("SELECT count(*), count(DISTINCT event_id) FROM landed").fetchall()[
            0
        ]
        lost = con.execute("SELECT count(*) FROM acked ANTI JOIN landed USING (event_id)").fetchall()[0][0]
        landed_acked = len(acked) - lost
        refresh(config, exports=False)
        wh = duckdb.connect(str(config.duckdb_path), read_only=True)
        wh_ids = wh.sql("SELECT event_id FROM events WHERE event_type = 'rollout'").to_arrow_table()
        wh.close()
        con.register("wh_ids", wh_ids)
        wh_lost = con.execute("SELECT count(*) FROM acked ANTI JOIN wh_ids USING (event_id)").fetchall()[0][0]
        report = {
            "minutes": args.minutes,
            "faults": faults.done,
            "acknowledged": len(acked),
            "unacknowledged": len(unacked),
            "landed": landed,
            "landed_rows": landed_rows,
            "lost": lost,
            "lost_in_warehouse": wh_lost,
            "duplicates_in_landing": landed_rows - landed,
            "events_per_s": round(len(acked) / produced_s, 1),
            "lag_p95": statistics.quantiles(lags, n=20)[18] if len(lags) >= 20 else max(lags, default=0),
            "lag_max": max(lags, default=0),
        }
        (root / "report.json").write_text(json.dumps(report, indent=2))
        print(
            f"acknowledged {len(acked):,} ({report['events_per_s']:,} events/s over {produced_s:.0f}s), "
            f"unacknowledged {len(unacked):,} (reported by the sink), landed {landed:,}"
        )
        print(
            f"lost {lost} (warehouse: {wh_lost}), duplicates in landing {landed_rows - landed}, "
            f"lag p95 {report['lag_p95']:,.0f} events (max {report['lag_max']:,}), faults {len(faults.done)}"
        )
        print(f"ratio: {landed_acked / max(1, len(acked)):.6f} (acknowledged events landed / acknowledged)")
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
