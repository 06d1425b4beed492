"""Quality filters and the removal ledger, as datatrove steps.

No step here drops a document by itself: each *tags* it (``metadata["removed"] = reason``, the
first reason wins) and passes it on, so the dedup filters downstream, which address documents by
their position in a task's stream, still see every document. ``DropRemoved`` then drops the tagged
ones and writes the ledger: documents, characters and tokens per source, kept and removed by reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import PurePosixPath
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep

REMOVED = "removed"

# generated or vendored files: lock files, minified bundles, protobuf output, vendored trees
_GENERATED_NAMES = frozenset(
    {"package-lock.json", "yarn.lock", "poetry.lock", "Cargo.lock", "uv.lock", "pnpm-lock.yaml", "go.sum"}
)
_GENERATED = re.compile(r"(\.min\.(js|css)$|_pb2(_grpc)?\.py$|\.pb\.go$|\.generated\.|(^|/)generated/)")
_VENDORED_PARTS = frozenset({"vendor", "vendored", "third_party", "third-party", "node_modules", "_vendor"})


def is_generated_or_vendored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (
        PurePosixPath(path).name in _GENERATED_NAMES
        or bool(_GENERATED.search(path))
        or any(p in _VENDORED_PARTS for p in parts[:-1])
    )


def tag(doc: Any, reason: str) -> None:
    doc.metadata.setdefault(REMOVED, reason)


class QualityFilter(PipelineStep):
    """Size limits, generated or vendored files, binary diffs and the licence allow-list."""

    name = "quality filter"
    type = "vtforge"

    def __init__(
        self,
        *,
        min_chars: int,
        max_chars: int,
        max_file_bytes: int,
        licenses: Sequence[str],
        allow_unknown_license: bool,
    ) -> None:
        super().__init__()
        self.min_chars, self.max_chars, self.max_file_bytes = min_chars, max_chars, max_file_bytes
        self.licenses = frozenset(licenses)
        self.allow_unknown_license = allow_unknown_license

    def reason(self, doc: Any) -> str | None:
        meta = doc.metadata
        if meta.get("binary"):
            return "binary_diff"
        if int(meta.get("max_file_bytes") or 0) > self.max_file_bytes:
            return "too_large"
        if any(is_generated_or_vendored(p) for p in meta.get("paths") or []):
            return "generated_or_vendored"
        license_ = meta.get("license")
        if license_ is None and not self.allow_unknown_license:
            return "license"
        if license_ is not None and license_ not in self.licenses:
            return "license"
        if len(doc.text) < self.min_chars:
            return "too_short"
        if len(doc.text) > self.max_chars:
            return "too_long"
        return None

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            if REMOVED not in doc.metadata:
                reason = self.reason(doc)
                if reason is not None:
                    tag(doc, reason)
            yield doc


class DropRemoved(PipelineStep):
    """Drops tagged documents and writes ``<ledger>/<step>/<rank>.json``: per source, the documents,
    characters and tokens kept, and those removed by reason (tokens of removed documents are
    counted with the corpus tokenizer, so token counts per step add up)."""

    name = "drop removed"
    type = "vtforge"

    def __init__(self, ledger: str, step: str, tokenizer_file: str) -> None:
        super().__init__()
        self.ledger, self.step, self.tokenizer_file = ledger, step, tokenizer_file

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        from pathlib import Path

        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(self.tokenizer_file)
        kept: dict[str, Counter] = defaultdict(Counter)
        removed: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for doc in data:
            source = doc.metadata["source"]
            reason = doc.metadata.get(REMOVED)
            if reason is None:
                kept[source].update(documents=1, chars=len(doc.text))
                yield doc
                continue
            tokens = len(tokenizer.encode(doc.text, add_special_tokens=False).ids)
            removed[source][reason].update(documents=1, chars=len(doc.text), tokens=tokens)
            self.stat_update(f"removed_{reason}")
        out = Path(self.ledger) / self.step
        out.mkdir(parents=True, exist_ok=True)
        report = {
            "kept": {s: dict(c) for s, c in sorted(kept.items())},
            "removed": {s: {r: dict(c) for r, c in sorted(rs.items())} for s, rs in sorted(removed.items())},
        }
        (out / f"{rank:05d}.json").write_text(json.dumps(report, sort_keys=True))
