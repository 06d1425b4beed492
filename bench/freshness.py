"""Freshness: how soon an emitted event can be queried, through each path, at a steady event rate.

Events from the synthetic generator (``vtforge.fixtures.events``: every event type, joined the way
real producers join them) are emitted at ``--rate`` events/s for ``--seconds`` through the
configured sink, built the way every producer builds it (``sink_from_config``), with the config's
own levers (``forge.events.flush_interval_s`` …; ``--flush-interval-s`` overrides it to show the
trade-off). For every event the emit time is recorded; pollers ask the read paths which event ids
they can see, and an event's latency is the start of the first poll that returned it minus its
emit time (resolution: one poll interval; never-seen events count as infinitely late).

1. **landing path** — ``LandingSink`` writes a Parquet file per event type when its batch closes
   (``flush_interval_s``, ``flush_max_events``). Visibility is polled the way ``vtforge sql`` reads
   raw events: the landing views of ``vtforge.warehouse.reader.create_landing_views`` (what
   ``open_reader`` and ``.refresh`` build), ``SELECT event_id FROM landing.events``, in this
   process. Target: p95 ≤ 2 s.
2. **curated tables** — during the same stream a child process refreshes the warehouse in a loop
   (``vtforge.warehouse.refresh.refresh(config, exports=False)``, started whenever the landing
   fingerprint the Dagster ``landing_sensor`` uses has changed, back to back with a short pause so
   readers get the lock, or at most every ``--refresh-every-s``), and a poller reads
   ``rollouts.rollout_id`` and ``executions.execution_id`` through ``open_reader`` (a snapshot of
   the warehouse, as ``vtforge sql`` and the trainers read it). Compared with
   ``forge.warehouse.freshness_target_s``. The real sensor ticks every 30 s and a Dagster run adds
   its launch, so production adds up to ~30 s plus that; back to back is the warehouse's floor.
3. **Kafka path** (``--skip-kafka`` to leave out) — ``KafkaSink`` to a real local KRaft broker
   (``vtforge.kafka.LocalBroker``, what ``vtforge kafka start`` runs) and ``vtforge ingest`` as a
   separate process (the exactly-once ingestor, cutting batches per partition at the same
   levers), then the same landing poll. Target: p95 ≤ 5 s.

Baseline, measured in the same run on the same events: the curated-table path, i.e. waiting for
a warehouse refresh before an event can be queried (what a reader of the warehouse tables alone
would see). The ratio is curated p95 / landing-view p95 over the events both measure (rollouts
and executions): how many times sooner ``vtforge sql`` shows an event through the landing views.
The baseline is favoured by default: back-to-back refreshes instead of the sensor's 30-s tick
(``--refresh-every-s 30`` measures that cadence), and a small, fast-to-rebuild warehouse.

    .venv/bin/python bench/freshness.py [--rate 200] [--seconds 25] [--skip-kafka]
    .venv/bin/python bench/freshness.py --flush-interval-s 5     # the earlier default, for comparison

Ends with ``ratio: <curated p95 / landing p95> …`` (higher is better).
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from vtforge.config import Config, load_config  # noqa: E402
from vtforge.fixtures.events import generate_events  # noqa: E402
from vtforge.transport import sink_from_config  # noqa: E402
from vtforge.transport.landing import landing_files  # noqa: E402
from vtforge.warehouse.reader import create_landing_views, open_reader  # noqa: E402

LANDING_TARGET_S = 2.0  # issue 17: an event is queryable through the landing views within 2 s (p95)
KAFKA_TARGET_S = 5.0  # … and within 5 s when it travels through Kafka and the ingestor
# curated tables measured by id: event type → (table, id column), the same id in the event
CURATED: dict[str, tuple[str, str]] = {
    "rollout": ("rollouts", "rollout_id"),
    "execution_result": ("executions", "execution_id"),
}

Poll = Callable[[], tuple[float, Iterable[str]]]  # → (observed at, ids visible then)


@dataclass
class Watch:
    """Emit times of the events one read path should show, and when each was first seen."""

    emitted: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    event_ids: dict[str, str] = field(default_factory=dict)  # id watched → the event that carried it
    polls: int = 0
    poll_s: float = 0.0

    def latencies(self, ids: Iterable[str] | None = None) -> list[float]:
        """Seconds from emit to first sight per event (``inf`` for an event never seen)."""
        chosen = self.emitted if ids is None else ids
        return [max(0.0, self.seen[i] - self.emitted[i]) if i in self.seen else math.inf for i in chosen]

    @property
    def complete(self) -> bool:
        return len(self.seen) >= len(self.emitted)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation, so an unseen event's ``inf`` is never averaged away)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class Poller(threading.Thread):
    """Polls one read path every ``interval_s`` and stamps the ids it sees for the first time."""

    def __init__(self, name: str, poll: Poll, watch: Watch, interval_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self.poll = poll
        self.watch = watch
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                observed, ids = self.poll()
            except (duckdb.Error, OSError, TimeoutError) as exc:  # nothing to read yet, a busy writer
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                observed, ids = started, ()
            for event_id in ids:
                if event_id in self.watch.emitted and event_id not in self.watch.seen:
                    self.watch.seen[event_id] = observed
            self.watch.polls += 1
            self.watch.poll_s += time.monotonic() - started
            self.stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def landing_poll(config: Config) -> Poll:
    """``vtforge sql``'s view of raw events: the landing views, rebuilt per poll (new types appear)."""
    con = duckdb.connect(":memory:")

    def poll() -> tuple[float, list[str]]:
        if not create_landing_views(con, config.landing_dir):
            return time.monotonic(), []
        observed = time.monotonic()
        return observed, [r[0] for r in con.execute("SELECT event_id FROM landing.events").fetchall()]

    return poll


def curated_poll(config: Config) -> Poll:
    """The curated tables as a reader sees them: ``open_reader``'s snapshot of the warehouse."""

    def poll() -> tuple[float, list[str]]:
        observed = time.monotonic()
        con = open_reader(config, timeout_s=30.0)
        ids: list[str] = []
        try:
            for table, column in CURATED.values():
                try:
                    ids += [r[0] for r in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall()]
                except duckdb.CatalogException:
                    continue  # not materialised yet
        finally:
            con.close()
        return observed, ids

    return poll


def refresh_loop(config_path: str, stop: Any, done: Any, pause_s: float, every_s: float) -> None:
    """Child process: refresh the warehouse whenever the landing fingerprint changed, like the sensor
    (which looks every 30 s; ``every_s`` 0 means as soon as the previous refresh is done)."""
    from vtforge.pipelines.sensors import landing_fingerprint
    from vtforge.warehouse.refresh import refresh

    config = load_config(config_path, cwd=Path(config_path).parent, env={})
    last: str | None = None
    while not stop.is_set():
        fingerprint = landing_fingerprint(config.landing_dir)
        if fingerprint is None or fingerprint == last:
            stop.wait(0.05)
            continue
        last = fingerprint
        started = time.perf_counter()
        refresh(config, exports=False)
        spent = time.perf_counter() - started
        done.put(spent)
        # at least a short gap, so readers can take their snapshot between two writers
        stop.wait(max(pause_s, every_s - spent))


def write_config(root: Path, args: argparse.Namespace, events: dict[str, Any] | None = None) -> Path:
    lines = ["[forge.warehouse]", 'data_dir = ".forge"', "[forge.events]"]
    if args.flush_interval_s is not None:
        lines.append(f"flush_interval_s = {args.flush_interval_s}")
    kafka = (events or {}).pop("kafka", {})
    lines += [f'{k} = "{v}"' for k, v in (events or {}).items()]
    if kafka:
        lines += ["[forge.events.kafka]", *(f'{k} = "{v}"' for k, v in kafka.items())]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "vtcode.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_events(n: int, seed: int) -> list[dict[str, Any]]:
    """The first ``n`` events of a synthetic stream (tasks, rounds of rollouts, patches, tests …)."""
    stream = generate_events(
        n // 500 + 2, seed, bugfixer_rollouts=40, testwriter_rollouts=40, policy_versions=("v0", "v1")
    )
    events = list(itertools.islice(stream, n))
    assert len(events) == n, f"the generator gave {len(events)} events, {n} wanted"
    return events


def stream(sink: Any, events: list[dict[str, Any]], rate: float, watches: list[Watch]) -> float:
    """Emit at a steady rate, recording each emit time first; returns the achieved events/s."""
    started = time.monotonic()
    for i, event in enumerate(events):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        watches[0].emitted[event["envelope"]["event_id"]] = now
        curated = CURATED.get(event["envelope"]["event_type"])
        if curated is not None and len(watches) > 1:
            key = event[curated[1]]
            watches[1].emitted.setdefault(key, now)
            watches[1].event_ids.setdefault(key, event["envelope"]["event_id"])
        sink.emit(event)
    return len(events) / (time.monotonic() - started)


def wait_for(watches: list[Watch], timeout_s: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Until every watched event was seen, the time is up, or what should show them has died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive() and not all(w.complete for w in watches):
        time.sleep(0.1)


@contextmanager
def polling(pollers: list[Poller]) -> Iterator[None]:
    for poller in pollers:
        poller.start()
    try:
        yield
    finally:
        for poller in pollers:
            poller.stop.set()
        for poller in pollers:
            poller.join(timeout=60)


def summary(label: str, watch: Watch, ids: Iterable[str] | None = None) -> tuple[float, float]:
    values = watch.latencies(ids)
    p50, p95 = percentile(values, 50), percentile(values, 95)
    unseen = sum(1 for v in values if v == math.inf)
    finite = [v for v in values if v != math.inf]
    print(
        f"  {label}: {len(values)} events, p50 {p50:.2f} s, p95 {p95:.2f} s, "
        f"max {max(finite, default=math.nan):.2f} s" + (f", {unseen} never seen" if unseen else "")
    )
    return p50, p95


def verdict(p95: float, target: float) -> str:
    return f"p95 {p95:.2f} s vs target {target:g} s: {'met' if p95 <= target else 'MISSED'}"


def landing_run(args: argparse.Namespace, root: Path) -> tuple[Watch, Watch, list[float]]:
    """Landing sink + landing poll, and the curated refresh loop + curated poll on the same stream."""
    path = write_config(root, args)
    config = load_config(path, cwd=root, env={})
    events = make_events(int(args.rate * args.seconds), seed=11)
    raw, curated = Watch(), Watch()
    ctx = mp.get_context("spawn")
    stop, done = ctx.Event(), ctx.Queue()
    refresher = ctx.Process(
        target=refresh_loop, args=(str(path), stop, done, args.refresh_pause_s, args.refresh_every_s)
    )
    refresher.start()
    pollers = [
        Poller("landing-poll", landing_poll(config), raw, args.poll_s),
        Poller("curated-poll", curated_poll(config), curated, args.curated_poll_s),
    ]
    durations: list[float] = []
    try:
        with polling(pollers):
            sink = sink_from_config(config, producer="bench.freshness")
            try:
                achieved = stream(sink, events, args.rate, [raw, curated])
                wait_for([raw], timeout_s=3 * config.forge.events.flush_interval_s + 30)
            finally:
                sink.close()
            wait_for([raw, curated], timeout_s=args.curated_timeout_s, alive=refresher.is_alive)
    finally:
        stop.set()
        refresher.join(timeout=600)
        if refresher.exitcode:
            print(f"the refresh loop failed (exit {refresher.exitcode}; its traceback is above)")
        while not done.empty():
            durations.append(done.get())
    print(
        f"landing run: {len(events)} events at {achieved:.0f}/s over {len(events) / achieved:.1f} s; "
        f"flush_interval_s = {config.forge.events.flush_interval_s:g}, "
        f"flush_max_events = {config.forge.events.flush_max_events}; "
        f"{len(landing_files(config.landing_dir))} landing files"
    )
    for poller in pollers:
        if poller.errors:
            print(f"  {poller.name}: {len(poller.errors)} polls failed, last: {poller.errors[-1]}")
    return raw, curated, durations


def kafka_run(args: argparse.Namespace, root: Path) -> Watch:
    """KafkaSink → local broker → ``vtforge ingest`` (own process) → landing, polled as above."""
    from vtforge.ingest.stats import read_members
    from vtforge.kafka import LocalBroker
    from vtforge.kafka.broker import port_open
    from vtforge.schemas import default_catalog

    tag = f"fresh{uuid.uuid4().hex[:6]}"
    path = write_config(
        root,
        args,
        {
            "sink": "kafka",
            "bootstrap_servers": f"127.0.0.1:{args.port}",
            "topic_prefix": f"{tag}.",
            "dead_letter_topic": f"{tag}.dead-letter",
            "kafka": {"consumer_group": f"{tag}-ingest"},
        },
    )
    config = load_config(path, cwd=root, env={})
    broker = LocalBroker(root / "broker" / "kafka", port=args.port)
    owned = not port_open("127.0.0.1", args.port)
    if owned:
        started = time.perf_counter()
        broker.start(wait_s=180)
        print(f"broker: Apache Kafka {broker.version} started in {time.perf_counter() - started:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTFORGE_") and k != "VTCODE_CONFIG_PATH"}
    log = (root / "ingest.log").open("w")
    ingestor = subprocess.Popen(
        [sys.executable, "-m", "vtforge", "ingest", "--config", str(path)],
        cwd=root,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    watch = Watch()
    try:
        # stream only once the ingestor owns every partition: the group join is start-up, not latency
        wanted = len(default_catalog().event_types) * config.forge.events.kafka.partitions
        members = config.data_dir / "ingest" / "members"
        deadline = time.monotonic() + 180
        while not any(
            m["live"] and len(m.get("owned", [])) >= wanted
            for m in read_members(members, config.forge.events.kafka.consumer_group)
        ):
            if ingestor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the ingestor did not join the group: {(root / 'ingest.log').read_text()}"
                )
            time.sleep(0.2)
        events = make_events(int(args.rate * args.seconds), seed=12)
        with polling([Poller("kafka-landing-poll", landing_poll(config), watch, args.poll_s)]):
            with sink_from_config(config, producer="bench.freshness") as sink:
                achieved = stream(sink, events, args.rate, [watch])
            wait_for([watch], timeout_s=3 * config.forge.events.flush_interval_s + 30)
        partitions = config.forge.events.kafka.partitions
        print(
            f"kafka run: {len(events)} events at {achieved:.0f}/s; {partitions} partitions per topic; "
            f"{len(landing_files(config.landing_dir))} landing files"
        )
    finally:
        ingestor.send_signal(signal.SIGTERM)
        try:
            ingestor.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ingestor.kill()
        log.close()
        if owned:
            broker.stop()
    return watch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each stream")
    parser.add_argument(
        "--flush-interval-s", type=float, default=None, help="override forge.events.flush_interval_s"
    )
    parser.add_argument("--poll-s", type=float, default=0.1, help="landing poll interval")
    parser.add_argument("--curated-poll-s", type=float, default=0.5, help="curated-table poll interval")
    parser.add_argument("--refresh-pause-s", type=float, default=0.2, help="pause after each refresh")
    parser.add_argument(
        "--refresh-every-s",
        type=float,
        default=0.0,
        help="least time between refresh starts (0: back to back; the Dagster sensor: 30)",
    )
    parser.add_argument("--curated-timeout-s", type=float, default=180.0)
    parser.add_argument("--port", type=int, default=39592, help="the local broker's port")
    parser.add_argument("--skip-kafka", action="store_true", help="leave out the Kafka path")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vtforge-bench-fresh-") as tmp:
        root = Path(tmp)
        raw, curated, refreshes = landing_run(args, root / "landing")
        kafka = None if args.skip_kafka else kafka_run(args, root / "kafka")
        target = load_config(root / "landing" / "vtcode.toml", cwd=root / "landing", env={})
        target_s = target.forge.warehouse.freshness_target_s

    print(
        f"machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after (1 min)"
    )
    print(f"landing path (LandingSink → landing views, polled every {args.poll_s:g} s):")
    _, landing_p95 = summary("all events", raw)
    _, landing_same = summary("rollouts + executions", raw, curated.event_ids.values())
    print(f"  {verdict(landing_p95, LANDING_TARGET_S)}; mean poll {raw.poll_s / max(raw.polls, 1):.3f} s")
    if kafka is not None:
        print(f"kafka path (KafkaSink → broker → vtforge ingest → landing views, every {args.poll_s:g} s):")
        _, kafka_p95 = summary("all events", kafka)
        print(f"  {verdict(kafka_p95, KAFKA_TARGET_S)}; mean poll {kafka.poll_s / max(kafka.polls, 1):.3f} s")
    print(
        f"curated tables (refresh loop, exports off; rollouts/executions via open_reader every "
        f"{args.curated_poll_s:g} s):"
    )
    _, curated_p95 = summary("rollouts + executions", curated)
    mean_refresh = sum(refreshes) / max(len(refreshes), 1)
    longest = max(refreshes, default=math.nan)
    print(
        f"  {verdict(curated_p95, target_s)} (forge.warehouse.freshness_target_s); "
        f"{len(refreshes)} refreshes, mean {mean_refresh:.2f} s, max {longest:.2f} s; "
        f"mean poll {curated.poll_s / max(curated.polls, 1):.3f} s"
    )
    cadence = f"every {args.refresh_every_s:g} s" if args.refresh_every_s > 0 else "back to back"
    print(
        f"ratio: {curated_p95 / landing_same:.2f} (p95 event → visible: curated tables, refreshed {cadence}, "
        f"{curated_p95:.2f} s / landing views {landing_same:.2f} s, same events)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
