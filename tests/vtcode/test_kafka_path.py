"""The streaming path: tailer and hook → KafkaSink → a real broker → the ingestor → landing files.

Uses the Kafka tests' session broker (``tests.kafka.conftest.kafka_broker``: skipped locally when
Java/Maven or the broker are missing, a failure under CI=true).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.vtcode.conftest import make_tailer, raw_count, steps
from tests.vtcode.test_cli import POST_TOOL_USE, _fast_hook
from tests.vtcode.vtcode_files import SessionWriter, sample_turns
from vtforge.config import load_config
from vtforge.ingest.service import run_service
from vtforge.transport import sink_from_config
from vtforge.transport.kafka import KafkaSink
from vtforge.vtcode.deliver import spool_for
from vtforge.vtcode.queries import latest_rollouts
from vtforge.vtcode.tailer import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _kafka_workspace(ws: Path, bootstrap: str) -> str:
    tag = f"vt{uuid.uuid4().hex[:10]}"
    (ws / "vtcode.toml").write_text(
        '[agent]\nprovider = "openai"\ndefault_model = "gpt-5.4"\n\n'
        f'[forge.events]\nsink = "kafka"\nbootstrap_servers = "{bootstrap}"\n'
        f'topic_prefix = "{tag}."\ndead_letter_topic = "{tag}.dead-letter"\nflush_interval_s = 1.0\n\n'
        f'[forge.events.kafka]\nconsumer_group = "{tag}-ingest"\nlinger_ms = 5\n\n'
        '[forge.warehouse]\ndata_dir = ".forge"\n'
    )
    return tag


def test_live_session_through_kafka(ws: Path, request: pytest.FixtureRequest) -> None:
    broker: Any = request.getfixturevalue("kafka_broker")
    _kafka_workspace(ws, broker.bootstrap)
    cfg = load_config(cwd=ws)
    writer = SessionWriter(ws, "sess-kafka")
    with sink_from_config(cfg, producer="vtforge.vtcode") as sink:
        assert isinstance(sink, KafkaSink)
        tailer = make_tailer(cfg, sink)
        for turn in sample_turns("thread-kafka"):
            writer.write_turn(turn)
            stats = tailer.poll()
            assert stats.events > 0 and not stats.errors  # acknowledged by the broker per poll
    done = _fast_hook(ws, json.dumps(POST_TOOL_USE))
    assert done.returncode == 0
    assert wait_for(lambda: not spool_for(cfg).pending(), 90), (cfg.data_dir / "vtcode/drain.log").read_text()

    report = run_service(cfg, once=True)
    assert report.rejected == 0
    (rollout,) = [r for r in latest_rollouts(cfg.landing_dir) if r[1] == "sess-kafka"]
    assert rollout[2:5] == (3, 6600, 420) and rollout[7] == "true"
    assert len(steps(cfg, "envelope.session_id = 'sess-kafka'")) == 17
    assert len(steps(cfg, "kind = 'hook'")) == 1
    total, distinct = raw_count(cfg, "agent_step")
    assert total == distinct == 18
