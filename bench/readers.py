"""Reader throughput: DuckDB → Arrow batches → tokenized rows, against HF ``datasets`` over Parquet.

Both sides read the same ``sft_examples`` rows (the baseline from the table exported to Parquet,
loaded with ``datasets.Dataset.from_parquet`` as TRL users usually do) and apply the same per-row
work: the context-budget check and the answer-only tokenization. Printed: rows/s and tokens/s of
reading alone and of reading + tokenizing, for both; the last line is the ratio of the full
pipelines (ours / baseline, higher is better).

    .venv/bin/python bench/readers.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import duckdb

from vtforge.fixtures.warehouse import create_tables, sft_rows
from vtforge.trainers.readers import (
    ReadFilter,
    TruncationLog,
    WarehouseReader,
    iter_sft_examples,
    tokenize_sft_row,
)
from vtforge.trainers.tiny import train_tokenizer

BUDGET = 4096
POLICY = "drop_oldest_context"


def build(folder: Path, rows: int) -> tuple[Path, Path]:
    db = folder / "w.duckdb"
    con = duckdb.connect(str(db))
    create_tables(con)
    con.executemany(
        "INSERT INTO sft_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", sft_rows(rows, context_words=120)
    )
    parquet = folder / "sft_examples.parquet"
    con.execute(f"COPY sft_examples TO '{parquet}' (FORMAT parquet)")
    con.close()
    return db, parquet


def ours_read(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    reader = WarehouseReader(con)
    n = sum(b.num_rows for b in reader.batches("sft_examples", ReadFilter(split="train")))
    con.close()
    return n


def ours_full(db: Path, tok) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    reader = WarehouseReader(con)
    rows = tokens = 0
    for ex in iter_sft_examples(
        reader, tok, budget=BUDGET, policy=POLICY, filt=ReadFilter(split="train"), log=TruncationLog()
    ):
        rows += 1
        tokens += len(ex["input_ids"])
    con.close()
    return rows, tokens


def baseline_load(parquet: Path, cache: Path):
    from datasets import Dataset

    ds = Dataset.from_parquet(str(parquet), cache_dir=str(cache))
    return ds.filter(lambda split: split == "train", input_columns="split")


def baseline_read(parquet: Path, cache: Path) -> int:
    return sum(1 for _ in baseline_load(parquet, cache))


def baseline_full(parquet: Path, cache: Path, tok) -> tuple[int, int]:
    rows = tokens = 0
    log = TruncationLog()
    for row in baseline_load(parquet, cache):
        example = tokenize_sft_row(tok, row, budget=BUDGET, policy=POLICY, log=log)
        if example is None:
            continue
        rows += 1
        tokens += len(example["input_ids"])
    return rows, tokens


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db, parquet = build(folder, args.rows)
        tok = train_tokenizer(["Issue parse config value list index empty return raise error"])
        n_ours, t_ours_read = timed(ours_read, db)
        n_base, t_base_read = timed(baseline_read, parquet, folder / "cache1")
        (r_ours, tok_ours), t_ours = timed(ours_full, db, tok)
        (r_base, tok_base), t_base = timed(baseline_full, parquet, folder / "cache2", tok)
    assert n_ours == n_base and r_ours == r_base and tok_ours == tok_base, "both sides must see the same rows"
    print(f"rows: {args.rows} in the table, {r_ours} tokenized ({tok_ours} tokens, budget {BUDGET})")
    print(f"read only      duckdb→arrow   {n_ours / t_ours_read:12.0f} rows/s")
    print(f"read only      datasets(pq)   {n_base / t_base_read:12.0f} rows/s")
    print(f"read+tokenize  duckdb→arrow   {r_ours / t_ours:12.0f} rows/s {tok_ours / t_ours:12.0f} tokens/s")
    print(f"read+tokenize  datasets(pq)   {r_base / t_base:12.0f} rows/s {tok_base / t_base:12.0f} tokens/s")
    print(
        f"ratio: {t_base / t_ours:.2f} (read+tokenize rows/s, duckdb reader vs datasets over Parquet; "
        f"read only {t_base_read / t_ours_read:.2f})"
    )


if __name__ == "__main__":
    main()
