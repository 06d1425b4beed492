"""The SFT export in VT Code's tool format and the exports' provenance manifests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.cli import invoke
from tests.warehouse.conftest import emit, make_workspace
from vtforge.config import Config, load_config
from vtforge.fixtures.events import generate_events
from vtforge.vtcode.patches import edits_from_tool_call
from vtforge.vtcode.render import EXEC_TOOL, PATCH_TOOL, TOOLS, VTCODE_TOOLS_VERSION
from vtforge.warehouse.export_manifest import check_manifest, manifest_path
from vtforge.warehouse.exports import FILES, GROUPS, STAMP
from vtforge.warehouse.refresh import refresh
from vtforge.warehouse.sft_vtcode import SFT_VTCODE, rollout_record


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Path]]:
    root = make_workspace(tmp_path_factory.mktemp("exports"))
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    emit(config, generate_events(6, 3, bugfixer_rollouts=2, testwriter_rollouts=2))
    refresh(config)
    yield config, config.data_dir / "exports"


def _train_examples(config: Config) -> list[dict]:
    with duckdb.connect(str(config.duckdb_path), read_only=True) as con:
        cursor = con.execute(
            "SELECT e.example_id, e.task_id, e.role, e.source, e.messages, t.fail_to_pass "
            "FROM sft_examples e LEFT JOIN tasks t USING (task_id) WHERE e.split = 'train' "
            "ORDER BY e.example_id"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_sft_vtcode_renders_every_train_example_with_an_edit(built: tuple[Config, Path]) -> None:
    config, folder = built
    examples = _train_examples(config)
    rows = pq.read_table(folder / SFT_VTCODE).to_pylist()
    with_edit = [e for e in examples if rollout_record(e) is not None]
    assert with_edit and len(with_edit) < len(examples)  # localizer answers hold no edit
    assert [r["example_id"] for r in rows] == [e["example_id"] for e in with_edit]
    for row, example in zip(rows, with_edit, strict=True):
        assert [m["role"] for m in row["messages"][:3]] == ["user", "assistant", "tool"]
        calls = [c["function"] for m in row["messages"] for c in m["tool_calls"] or []]
        patches = [c for c in calls if c["name"] == PATCH_TOOL]
        assert patches and {c["name"] for c in calls} <= {PATCH_TOOL, EXEC_TOOL}
        touched = set()
        for call in patches:
            arguments = json.loads(call["arguments"])
            assert set(arguments) == {"input"} and arguments["input"].startswith("*** Begin Patch\n")
            touched |= set(edits_from_tool_call(PATCH_TOOL, arguments).files)
        answer = edits_from_tool_call(PATCH_TOOL, {"input": example["messages"][-1]["content"]})
        expected = {b["path"] for b in rollout_record(example)["blocks"]} or set(answer.files)  # type: ignore[index]
        assert touched == expected
        runs = [json.loads(c["arguments"]) for c in calls if c["name"] == EXEC_TOOL]
        if example["role"] == "bugfixer" and example["fail_to_pass"]:
            assert [set(r) for r in runs] == [{"cmd"}] and all(
                t in runs[0]["cmd"] for t in example["fail_to_pass"]
            )
        assert {t["function"]["name"] for t in json.loads(row["tools"])} == {
            t["function"]["name"] for t in TOOLS
        }


def test_sft_vtcode_loads_as_a_conversational_dataset(built: tuple[Config, Path]) -> None:
    datasets = pytest.importorskip("datasets")
    from trl.data_utils import is_conversational

    dataset = datasets.Dataset.from_parquet(str(built[1] / SFT_VTCODE))
    assert len(dataset) > 0 and is_conversational(dataset[0])
    assert dataset[0]["messages"][1]["tool_calls"][0]["function"]["name"] == PATCH_TOOL


# a minimal tool-aware ChatML template (SmolLM2's own has no tools), rendering what TRL hands it
_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{% for t in tools %}{{ t.function.name }}:"
    "{{ t.function.parameters.properties | list | join(',') }}\n{% endfor %}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content or '' }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }} {{ c.function.arguments }}</tool_call>"
    "{% endfor %}<|im_end|>\n{% endfor %}"
)


def test_sft_vtcode_goes_through_a_chat_template_with_its_tools(built: tuple[Config, Path]) -> None:
    """What TRL's SFTTrainer does with a row: ``tools`` parsed, messages through the template."""
    transformers = pytest.importorskip("transformers")
    from vtforge.corpus.pack import tokenizer_file

    try:
        path = tokenizer_file(built[0])
    except Exception as exc:  # no SmolLM2 package here: nothing to tokenize with
        pytest.skip(f"no tokenizer: {exc}")
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    row = pq.read_table(built[1] / SFT_VTCODE).slice(0, 1).to_pylist()[0]
    text = tokenizer.apply_chat_template(
        row["messages"], tools=json.loads(row["tools"]), chat_template=_TEMPLATE, tokenize=False
    )
    assert "apply_patch:input,patch,max_output_tokens\n" in text and "exec_command:cmd,yield_time_ms," in text
    assert '<tool_call>apply_patch {"input": "*** Begin Patch' in text
    ids = tokenizer.apply_chat_template(
        row["messages"], tools=json.loads(row["tools"]), chat_template=_TEMPLATE, tokenize=True
    )
    assert tokenizer.decode(ids) == text


def test_manifests_describe_the_files(built: tuple[Config, Path]) -> None:
    config, folder = built
    stamp = json.loads((folder / STAMP).read_text())
    examples = _train_examples(config)
    assert invoke("export", "check", "--folder", str(folder)).exit_code == 0
    for group in GROUPS:
        assert check_manifest(folder, group) == []
        manifest = json.loads(manifest_path(folder, group).read_text())
        assert manifest["datasets_version"] == stamp
        assert manifest["renderer"]["vtcode_tools_version"] == VTCODE_TOOLS_VERSION
        assert manifest["levers"]["synthetic_upsample"] == str(config.forge.datasets.synthetic_upsample)
        assert {f"{group}/{name}" for name in manifest["files"]} == {f for f in FILES if f.startswith(group)}
        for name, entry in manifest["files"].items():
            assert entry["rows"] == pq.read_metadata(folder / group / name).num_rows
            for counts in entry["by"].values():
                assert sum(counts.values()) == entry["rows"]
    trl = json.loads(manifest_path(folder, "trl").read_text())["files"]
    assert trl["sft_messages.parquet"]["rows"] == len(examples)
    vtcode = trl["sft_vtcode.parquet"]
    assert vtcode["rows"] + sum(vtcode["dropped"].values()) == len(examples)
    assert vtcode["tasks"]["count"] == len({e["task_id"] for e in examples if rollout_record(e) is not None})


def test_a_tampered_export_no_longer_matches_its_manifest(built: tuple[Config, Path], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "exports"
    shutil.copytree(built[1], folder)
    table = pq.read_table(folder / SFT_VTCODE)
    pq.write_table(table.slice(1), folder / SFT_VTCODE)  # one example fewer
    problems = check_manifest(folder, "trl")
    assert any("sft_vtcode.parquet: sha256" in p for p in problems)
    assert any("sft_vtcode.parquet: " in p and "rows, manifest" in p for p in problems)
    pq.write_table(pq.read_table(folder / "verl" / "rl_train.parquet"), folder / "verl" / "extra.parquet")
    assert check_manifest(folder, "verl") == ["verl/extra.parquet: not in the manifest"]
    result = invoke("export", "check", "--folder", str(folder))
    assert result.exit_code == 1 and "verl/extra.parquet: not in the manifest" in result.stdout
    (folder / "trl.manifest.json").unlink()
    assert check_manifest(folder, "trl") == ["trl.manifest.json is missing"]


def test_an_unchanged_warehouse_does_not_render_again(built: tuple[Config, Path]) -> None:
    config, folder = built
    watched = [folder / SFT_VTCODE, *(manifest_path(folder, g) for g in GROUPS)]
    before = [p.stat().st_mtime_ns for p in watched]
    rows = refresh(config)
    assert [p.stat().st_mtime_ns for p in watched] == before
    assert rows[f"exports/{SFT_VTCODE}"] == pq.read_metadata(folder / SFT_VTCODE).num_rows


def test_sft_vtcode_renders_only_inputs_it_has_not_rendered_before(tmp_path: Path) -> None:
    """A second export after more events renders only the new examples' distinct inputs (the render
    cache), and writes the same file as an export that renders everything afresh."""
    from vtforge.warehouse.connection import writer
    from vtforge.warehouse.sft_vtcode import CACHE_DIR, write_sft_vtcode

    root = make_workspace(tmp_path / "w")
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    events = list(generate_events(8, 3, bugfixer_rollouts=2, testwriter_rollouts=2))
    tasks = sorted({e["envelope"]["task_id"] for e in events if e["envelope"]["task_id"]})
    early = set(tasks[:5])
    first = [e for e in events if e["envelope"]["task_id"] in early]
    emit(config, first)
    refresh(config, exports=False)
    target = tmp_path / "out" / "trl" / "sft_vtcode.parquet"
    with writer(config.duckdb_path) as con:
        before = write_sft_vtcode(con, target)
        again = write_sft_vtcode(con, target)
    assert before.rendered > 0 and again.rendered == 0 and again.rows == before.rows

    emit(config, [e for e in events if e["envelope"]["task_id"] not in early])
    refresh(config, exports=False)
    with writer(config.duckdb_path) as con:
        later = write_sft_vtcode(con, target)
        fresh_target = tmp_path / "fresh" / "trl" / "sft_vtcode.parquet"
        fresh = write_sft_vtcode(con, fresh_target)
    assert 0 < later.rendered < fresh.rendered  # only what the new tasks added
    assert later.rows == fresh.rows > before.rows and later.dropped == fresh.dropped
    assert pq.read_table(target).equals(pq.read_table(fresh_target))
    assert (tmp_path / "out" / CACHE_DIR).is_dir()


def test_the_dagster_check_fails_on_an_export_that_differs_from_its_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vtforge.pipelines.checks import exports_match_manifests
    from vtforge.pipelines.resources import WarehouseResource

    root = make_workspace(tmp_path / "w")
    monkeypatch.chdir(root)  # where Dagster's code location runs
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    emit(config, generate_events(3, 2, bugfixer_rollouts=2, testwriter_rollouts=1))
    refresh(config)
    resource = WarehouseResource(config_path=str(config.files[-1]))
    assert exports_match_manifests(resource).passed
    target = config.data_dir / "exports" / "verl" / "rl_train.parquet"
    target.write_bytes(target.read_bytes() + b"\0")
    failed = exports_match_manifests(resource)
    assert not failed.passed and "verl/rl_train.parquet" in (failed.description or "")


def test_sft_vtcode_can_be_left_out_and_its_file_goes(tmp_path: Path) -> None:
    """forge.datasets.sft_vtcode = false: the SQL exports only; a file written before is removed,
    and the manifests still match the folder."""
    from vtforge.warehouse.connection import writer
    from vtforge.warehouse.exports import export_datasets

    root = make_workspace(tmp_path / "w")
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    emit(config, generate_events(3, 2, bugfixer_rollouts=2, testwriter_rollouts=1))
    refresh(config, exports=False)
    folder = tmp_path / "exports"
    with writer(config.duckdb_path) as con:
        assert SFT_VTCODE in export_datasets(con, folder)
        assert (folder / SFT_VTCODE).is_file()
        written = export_datasets(con, folder, vtcode=False)
    assert SFT_VTCODE not in written and set(written) == set(FILES) - {SFT_VTCODE}
    assert not (folder / SFT_VTCODE).exists()
    assert all(check_manifest(folder, group) == [] for group in GROUPS)


def test_a_warehouse_without_sft_examples_exports_empty_files(tmp_path: Path) -> None:
    """No chat to render (only evaluations landed): the render cache gets an empty part, and
    sft_vtcode.parquet is written with no rows, as the SQL exports are."""
    from vtforge.warehouse.connection import writer
    from vtforge.warehouse.exports import export_datasets

    root = make_workspace(tmp_path / "w")
    config = load_config(root / "vtcode.toml", cwd=root, env={})
    refresh(config, exports=False)
    folder = tmp_path / "exports"
    with writer(config.duckdb_path) as con:
        written = export_datasets(con, folder)
    assert written[SFT_VTCODE] == 0 and pq.read_table(folder / SFT_VTCODE).num_rows == 0
    assert all(check_manifest(folder, group) == [] for group in GROUPS)
