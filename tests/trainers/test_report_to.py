"""``forge.train.report_to`` reaches TRL: a tiny SFT run writes TensorBoard event files with its loss."""

from __future__ import annotations

import pytest

from tests.trainers.conftest import write_levers
from vtforge.config import ConfigError, load_config
from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers.sft import SftOptions, run_sft


def _report_to(workspace, value: str) -> None:
    write_levers(workspace)
    toml = (workspace / "vtcode.toml").read_text()
    (workspace / "vtcode.toml").write_text(
        toml.replace("[forge.train]\n", f"[forge.train]\nreport_to = {value}\n")
    )


def test_sft_reports_its_loss_to_tensorboard(train_ws) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _report_to(train_ws, '["tensorboard"]')
    cfg = load_config(cwd=train_ws)
    assert cfg.forge.train.report_to == ["tensorboard"]
    build_warehouse(cfg.duckdb_path, sft=8)
    summary = run_sft(cfg, SftOptions(max_steps=3))
    event_files = sorted(cfg.data_dir.rglob("events.out.tfevents.*"))
    assert event_files, "no TensorBoard event file under the data directory"
    runs = {f.parent for f in event_files}
    assert len(runs) == 1
    accumulator = EventAccumulator(str(runs.pop())).Reload()
    losses = accumulator.Scalars("train/loss")
    assert [s.step for s in losses] == [1, 2, 3]
    assert losses[0].value == pytest.approx(summary["first_loss"], rel=1e-4)


def test_an_unknown_logger_is_refused_with_the_lever_named(train_ws) -> None:
    _report_to(train_ws, '["tensorbored"]')
    with pytest.raises(ConfigError, match="report_to"):
        load_config(cwd=train_ws)
