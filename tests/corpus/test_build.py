"""`vtforge corpus build` end to end on the local executor: removals counted per reason, packing
deterministic and lossless, upsampling, events, and the Dagster check over the shards."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.cli import invoke
from vtforge.config import Config
from vtforge.corpus.build import BuildOptions, build_corpus
from vtforge.corpus.demo import MIT, build_commit_pack
from vtforge.corpus.manifest import check_shards

EVAL_PROBLEM = (
    "The invoice total ignores the discount code when the basket holds more than ten distinct "
    "items and the customer pays with a gift card"
)


def _module(name: str, lines: int, changed: int | None = None) -> str:
    body = [
        f"def {name}_{i}(value):\n    return value * {i} + {i * 7} - len(str(value))\n" for i in range(lines)
    ]
    if changed is not None:  # one constant differs: a near duplicate, not an exact one
        body[changed] = body[changed].replace(f"+ {changed * 7} -", f"+ {changed * 7 + 1} -")
    return "\n\n".join(body)


def planted_pack(folder: Path) -> Path:
    """Distinct commits, one exact duplicate, one near duplicate, a copy of an eval problem and a
    binary change."""
    return build_commit_pack(
        folder,
        [
            ("Initial layout", {"LICENSE": MIT, "README.md": "# shop\n"}),
            ("Add pricing helpers for the shop", {"shop/pricing.py": _module("price", 30)}),
            ("Remove pricing helpers again", {"shop/pricing.py": None}),
            ("Add pricing helpers for the shop", {"shop/pricing.py": _module("price", 30)}),  # exact copy
            (
                "Add pricing helpers for the shop",
                {"shop/pricing2.py": _module("price", 30, changed=3)},
            ),  # near
            ("Add stock counting", {"shop/stock.py": _module("stock", 12)}),
            (
                "Add shipping rules",
                {"shop/ship.py": "\n".join(f"ZONE_{i} = {i * 3}" for i in range(40)) + "\n"},
            ),
            (EVAL_PROBLEM, {"shop/invoice.py": _module("invoice", 8)}),
            ("Add the logo", {"shop/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256))}),
        ],
    )


def eval_file(folder: Path) -> Path:
    path = folder / "suite.jsonl"
    row = {
        "instance_id": "acme__shop-1",
        "repo": "acme/shop",
        "base_commit": "0" * 40,
        "patch": "diff --git a/x b/x\n",
        "problem_statement": EVAL_PROBLEM + ".\n",
    }
    path.write_text(json.dumps(row) + "\n")
    return path


def _build(cfg: Config, pack: Path, out: Path, evals: Path) -> dict:
    return build_corpus(
        cfg, BuildOptions(sources=[f"commit-pack:{pack}"], out=out, eval_files=[evals], emit_events=False)
    )


def test_removals_are_counted_and_packing_is_deterministic_and_lossless(
    corpus_cfg: Config, tmp_path: Path
) -> None:
    pack, evals = planted_pack(tmp_path / "shop"), eval_file(tmp_path)
    first = _build(corpus_cfg, pack, tmp_path / "a", evals)
    removed = first["removed_by_reason"]
    assert removed == {
        "exact:exact_duplicate": 1,
        "filter:binary_diff": 1,
        "filter:decontaminated": 1,
        "near:near_duplicate": 1,
    }, removed
    steps = first["sources"]["commit-pack"]["steps"]
    assert steps["collected"]["documents"] == 8
    assert steps["near_deduplicated"]["documents"] == 4  # pricing (one copy), stock, ship, remove
    assert steps["packed"]["tokens"] == steps["near_deduplicated"]["tokens"]  # weight 1
    assert (
        steps["filtered"]["tokens"]
        > steps["exact_deduplicated"]["tokens"]
        > steps["near_deduplicated"]["tokens"]
    )

    # lossless: the shards' real tokens are the documents' tokens, one EOS after each document
    shards = sorted((tmp_path / "a" / "shards").glob("*.parquet"))
    assert len(shards) == first["totals"]["shards"] >= 2
    tokens = []
    for shard in shards:
        table = pq.read_table(shard)
        for ids, length in zip(
            table.column("input_ids").to_pylist(), table.column("length").to_pylist(), strict=True
        ):
            assert len(ids) == 128
            tokens += ids[:length]
    assert len(tokens) == first["totals"]["tokens"] == steps["packed"]["tokens"]
    assert tokens.count(0) == steps["packed"]["documents"] == 4  # <|endoftext|> is id 0 in SmolLM2

    # deterministic: a rebuild elsewhere gives byte-identical shards and the same content hash
    second = _build(corpus_cfg, pack, tmp_path / "b", evals)
    assert second["content_sha256"] == first["content_sha256"]
    for shard in shards:
        assert (tmp_path / "b" / "shards" / shard.name).read_bytes() == shard.read_bytes()
    assert check_shards(tmp_path / "a").passed


def test_synthetic_documents_are_upsampled_by_their_weight(corpus_cfg: Config, tmp_path: Path) -> None:
    from vtforge.tasks.bank import save_slice
    from vtforge.tasks.model import Task

    diff = (
        "diff --git a/lib/calc.py b/lib/calc.py\n--- a/lib/calc.py\n+++ b/lib/calc.py\n@@ -1,3 +1,3 @@\n"
        " def total(values):\n-    acc = 1\n+    acc = 0\n     return acc + sum(values)\n"
    )
    task = Task(
        instance_id="calc__synth-1",
        repo="pypi/calc",
        base_commit="1" * 40,
        problem_statement="total() of a list is one too high: total([1, 2]) returns 4 instead of 3.",
        patch=diff,
        fail_to_pass=["tests/test_calc.py::test_total"],
        source="synth",
        provenance={"license": "MIT", "origin": "pypi:calc==1.0"},
    )
    save_slice(corpus_cfg, "synthbits", [task])
    manifest = build_corpus(
        corpus_cfg, BuildOptions(sources=["bank:synthbits"], out=tmp_path / "c", emit_events=False)
    )
    bank = manifest["sources"]["bank"]["steps"]
    assert bank["near_deduplicated"]["documents"] == 1
    assert bank["packed"]["documents"] == 4
    assert bank["packed"]["tokens"] == 4 * bank["near_deduplicated"]["tokens"] == manifest["totals"]["tokens"]


def test_cli_builds_the_demo_writes_events_and_a_manifest(corpus_cfg: Config, workspace: Path) -> None:
    docs = workspace / "docs" / "research" / "datasets"
    result = invoke("corpus", "build", "--sources", "demo", "--out", "demo-corpus", "--docs", str(docs))
    assert result.exit_code == 0, result
    manifest = json.loads((workspace / "demo-corpus" / "manifest.json").read_text())
    assert manifest["totals"]["tokens"] > 0 and set(manifest["sources"]) == {"commit-pack", "github"}
    assert (docs / "corpus-demo-corpus.md").read_text().startswith("# Corpus `demo-corpus`")
    landed = list((corpus_cfg.landing_dir / "corpus_shard_written").rglob("*.parquet"))
    rows = [r for f in landed for r in pq.read_table(f).to_pylist()]
    assert sorted(r["shard"] for r in rows) == sorted(s["shard"] for s in manifest["shards"])
    assert sum(r["tokens"] for r in rows) == manifest["totals"]["tokens"]
    assert invoke("corpus", "check", "demo-corpus").exit_code == 0


def test_dagster_check_catches_a_tampered_shard(corpus_cfg: Config, workspace: Path) -> None:
    from dagster import materialize

    from vtforge.pipelines.corpus import corpus, corpus_shards_match_manifest
    from vtforge.pipelines.resources import WarehouseResource

    resource = WarehouseResource(config_path=str(workspace / "vtcode.toml"))
    result = materialize(
        [corpus, corpus_shards_match_manifest], partition_key="demo", resources={"warehouse": resource}
    )
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    shard = sorted((corpus_cfg.data_dir / "corpus" / "demo" / "shards").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, table.num_rows - 1) if table.num_rows > 1 else table.slice(0, 0), shard)
    outcome = corpus_shards_match_manifest(warehouse=resource)
    assert not outcome.passed and "demo" in (outcome.description or "")
