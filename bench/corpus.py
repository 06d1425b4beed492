"""Corpus throughput: the whole Stage 1 pipeline vs plain tokenisation of the same documents.

A generated commit pack (``--commits`` commits of distinct Python modules with tests, a few
duplicates among them) goes through ``vtforge corpus build`` on the local executor with one task and
one worker, tokenizers pinned to one thread (``RAYON_NUM_THREADS=1``): collection from git, render,
filters, decontamination, exact and MinHash dedup, tokenise, upsample, pack, manifest. Plain
tokenisation encodes the same rendered documents with the same tokenizer (SmolLM2's), one thread, in
the same run. Both are tokens of rendered documents per second on one core.

    python bench/corpus.py [--commits N]

Ends with ``ratio: <ours/plain> …`` (the share of tokenisation speed the full pipeline keeps), and
prints the 150B-token projection docs/PERFORMANCE.md records.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers loads: one core for both paths

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtforge.config import load_config
from vtforge.corpus.build import BuildOptions, build_corpus
from vtforge.corpus.demo import MIT, build_commit_pack
from vtforge.corpus.pack import tokenizer_file

TARGET_TOKENS = 150e9


def word(*key: object) -> str:
    """A deterministic made-up identifier (letters only: datatrove's normalisation folds digits)."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("0123456789", "ghijklmnop"))


def module(seed: int, functions: int = 12) -> str:
    parts = []
    for i in range(functions):
        name, arg, kept, note = (word(seed, i, k) for k in "nakd")
        parts.append(
            f"def {name}({arg}, scale=2):\n"
            f'    """Scale each {arg} of the {note} batch and keep what passes {kept}."""\n'
            f"    {kept} = [v * scale for v in {arg} if {note}(v)]\n"
            f"    return sum({kept}) / max(1, len({kept}))\n"
        )
    return "\n\n".join(parts)


def commits(n: int) -> list:
    changes: list = [("Initial layout", {"LICENSE": MIT, "README.md": "# bench\n"})]
    for i in range(n):
        files = {
            f"pkg/mod_{i}.py": module(i),
            f"tests/test_mod_{i}.py": f"from pkg.mod_{i} import {word(i, 0, 'n')}\n\n\n"
            f"def test_{word(i, 't')}():\n    assert {word(i, 0, 'n')}([1]) >= 0\n",
        }
        message = (
            f"Add {word(i, 'm')} helpers\n\nThe {word(i, 'm')} helpers scale values and average what is kept."
        )
        changes.append((message, files if i % 10 else {**files, "pkg/dup.py": module(i % 3)}))
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vtforge-bench-corpus-") as tmp:
        root = Path(tmp)
        (root / "vtcode.toml").write_text(
            '[forge.warehouse]\ndata_dir = ".forge"\n\n[forge.corpus]\ntasks = 1\nworkers = 1\n'
        )
        cfg = load_config(root / "vtcode.toml")
        tok_file = tokenizer_file(cfg)  # converted once, cached: not part of either timing
        pack = build_commit_pack(root / "pack", commits(args.commits))
        started = time.perf_counter()
        manifest = build_corpus(
            cfg, BuildOptions(sources=[f"commit-pack:{pack}"], out=root / "out", emit_events=False)
        )
        ours_s = time.perf_counter() - started
        rendered = sum(s["rendered_tokens"] for s in manifest["sources"].values())

        from tokenizers import Tokenizer

        texts = [
            json.loads(line)["text"] for line in (root / "out" / "work" / "filtered" / "00000.jsonl").open()
        ]
        tokenizer = Tokenizer.from_file(str(tok_file))
        started = time.perf_counter()
        plain_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
        plain_s = time.perf_counter() - started
        shard_bytes = sum(p.stat().st_size for p in (root / "out" / "shards").glob("*.parquet"))
        packed = manifest["totals"]["tokens"]

    ours, plain = rendered / ours_s, plain_tokens / plain_s
    core_hours = TARGET_TOKENS / ours / 3600
    print(
        f"documents: {manifest['totals']['documents_collected']} commits, "
        f"removed {manifest['removed_by_reason']}"
    )
    print(f"pipeline: {rendered} rendered tokens in {ours_s:.2f} s = {ours:,.0f} tokens/s per core")
    print(f"plain tokenisation: {plain_tokens} tokens in {plain_s:.3f} s = {plain:,.0f} tokens/s per core")
    print(f"shards: {shard_bytes / packed:.2f} bytes per packed token (Parquet, zstd)")
    print(
        f"150B tokens: {core_hours:,.0f} core-hours; {core_hours / (16 * 64):,.1f} h on 16 nodes x 64 cores; "
        f"shards {TARGET_TOKENS * shard_bytes / packed / 1e12:.2f} TB"
    )
    print(f"ratio: {ours / plain:.3f} (pipeline tokens/s per core over plain tokenisation tokens/s per core)")


if __name__ == "__main__":
    main()
