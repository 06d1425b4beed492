"""Decontamination against every evaluation suite and held-out slice, by n-gram overlap.

The references are every task that is not training data: bank tasks of the ``eval`` split (the
held-out slices) and the suites named in ``forge.eval.suites`` (a bank slice, or a SWE-bench file
of JSON lines), plus any ``--eval FILE``. Their problem statements, patches and test patches are
indexed as datatrove's n-gram decontamination index (``<name>.index.hashes``: the hashes of every
word n-gram of the normalised text, datatrove's ``simplify_text`` and hash function), and
datatrove's ``NGramsDecontFilter`` removes a training document that shares one n-gram with them
(the document's plain view: its words without JSON escapes). datatrove's own indexer only reads
lighteval tasks, so the index is written here with datatrove's functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.text import ngrams, simplify_text

from vtforge.config import Config
from vtforge.corpus.dedup import WORDS, Tagged
from vtforge.tasks.model import Task


def decont_config(n: int) -> NGramsDecontConfig:
    return NGramsDecontConfig(n_grams=n, find_query_ngrams=True, find_overlap_ngrams=False)


def reference_texts(task: Task) -> list[str]:
    return [t for t in (task.problem_statement, task.patch, task.test_patch) if t and t.strip()]


def _suite_file(path: Path) -> Iterator[Task]:
    text = path.read_text(encoding="utf-8")
    rows: list[Any] = (
        json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]
    )
    for row in rows:
        yield Task.from_swebench(row)


def eval_references(cfg: Config, extra: Iterable[Path] = ()) -> dict[str, list[str]]:
    """Reference texts by suite name: held-out bank slices, ``forge.eval.suites``, ``extra`` files."""
    from vtforge.tasks.bank import load_all

    refs: dict[str, list[str]] = {}
    bank = load_all(cfg)
    for slice_name, tasks in sorted(bank.items()):
        held_out = [t for t in tasks if t.split == "eval"]
        if held_out:
            refs[f"heldout-{slice_name}"] = [x for t in held_out for x in reference_texts(t)]
    for name, target in sorted(cfg.forge.eval.suites.items()):
        path = Path(target) if Path(target).is_absolute() else Path(cfg.root) / target
        if target in bank:
            refs[f"suite-{name}"] = [x for t in bank[target] for x in reference_texts(t)]
        elif path.is_file() and path.suffix in (".jsonl", ".json"):
            refs[f"suite-{name}"] = [x for t in _suite_file(path) for x in reference_texts(t)]
    for path in extra:
        refs[f"file-{path.stem}"] = [x for t in _suite_file(path) for x in reference_texts(t)]
    return refs


def build_index(references: dict[str, list[str]], folder: Path, n: int) -> dict[str, int]:
    """``folder/<suite>.index.hashes`` for each suite; returns n-grams indexed per suite."""
    config = decont_config(n)
    hash_func = cast(Callable[[str], int], create_hash_func(config.hash_config))
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for suite, texts in sorted(references.items()):
        hashes: set[int] = set()
        for text in texts:
            words = WORDS.word_tokenize(simplify_text(text, config.norm_config))
            hashes.update(hash_func(" ".join(gram)) for gram in ngrams(words, n))
        name = re.sub(r"[^\w.-]", "_", suite)
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(folder / f"{name}.index.hashes")
        counts[suite] = len(hashes)
    return counts


def decont_filter(folder: Path, n: int) -> list[Any]:
    """The stage-1 step: datatrove's n-gram filter on the plain view, removals tagged."""
    inner = NGramsDecontFilter(str(folder), config=decont_config(n), language=WORDS)  # type: ignore[arg-type]
    return [Tagged(inner, "decontaminated", view="plain")]
