"""Cold-start SFT on a tiny model: the loss falls, every step is an event, runs resume."""

from __future__ import annotations

import duckdb

from vtforge.fixtures.warehouse import build_warehouse
from vtforge.trainers import runs
from vtforge.trainers.sft import SftOptions, run_sft


def _steps(cfg) -> list[tuple]:
    glob = str(cfg.landing_dir / "training_step" / "*" / "*.parquet")
    return duckdb.sql(
        f"SELECT step, loss, learning_rate, grad_norm, tokens_per_s, policy_version, checkpoint_path, "
        f"envelope.event_type, envelope.stage FROM '{glob}' ORDER BY step"
    ).fetchall()


def test_sft_loss_falls_and_each_step_is_an_event(cfg) -> None:
    build_warehouse(cfg.duckdb_path, sft=24)
    summary = run_sft(cfg, SftOptions(max_steps=8))
    assert summary["steps"] == 8 and summary["rows"] == 24
    assert summary["last_loss"] < summary["first_loss"] - 0.2
    steps = _steps(cfg)
    assert [s[0] for s in steps] == list(range(1, 9))
    version = summary["policy_version"]
    assert all(s[5] == version and s[7] == "training_step" and s[8] == "agentless" for s in steps)
    assert all(s[1] is not None and s[2] is not None and s[3] is not None and s[4] > 0 for s in steps)
    saved = {s[0]: s[6] for s in steps if s[6]}
    assert sorted(saved) == [2, 4, 6, 8]  # save_steps = 2 in the test levers
    assert saved[8].endswith(f"{version}/checkpoint-8")
    assert (runs.existing_run(cfg.data_dir, version).final / "config.json").is_file()
    assert runs.read_latest(cfg.data_dir)["sft"]["policy_version"] == version


def test_sft_resumes_from_its_last_checkpoint(cfg) -> None:
    build_warehouse(cfg.duckdb_path, sft=12)
    first = run_sft(cfg, SftOptions(max_steps=2))
    resumed = run_sft(cfg, SftOptions(max_steps=4, resume=first["policy_version"]))
    assert resumed["policy_version"] == first["policy_version"]
    assert resumed["steps"] == 4 and resumed["events"] == 2  # steps 3 and 4 only
    steps = _steps(cfg)
    assert [s[0] for s in steps] == [1, 2, 3, 4]


def test_sft_trains_only_on_the_selected_slice(cfg) -> None:
    build_warehouse(cfg.duckdb_path, sft=12)
    summary = run_sft(cfg, SftOptions(max_steps=1, slice={"role": "localizer"}, emit_events=False))
    assert summary["rows"] == 4
    assert not cfg.landing_dir.exists()
