"""Exact and MinHash near-duplicate removal: datatrove's own stages, wrapped so removals are tagged.

datatrove's dedup filters find a document by its position in a task's stream (the signature stage
and the filter stage must see the same documents in the same order). ``Tagged`` runs such a filter
over the whole stream and, instead of losing what it drops, tags it with a reason and passes it on:
so the exact and the near-duplicate filter can run one after the other on the same positions, and
``filters.DropRemoved`` counts both. Signatures are taken over ``metadata["plain"]``, the
transcript's words without the JSON escapes (``Tagged(view="plain")``), for MinHash; exact
deduplication hashes the rendered text itself.

No ``from __future__ import annotations`` here: ``ExactDedupSignature`` reads ``text_of``'s return
annotation at run time to pick its hash function.
"""

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.word_tokenizers import WordTokenizer

from vtforge.corpus.filters import tag


class CodeWords(WordTokenizer):
    """Words of text that datatrove's ``simplify_text`` already lower-cased and stripped of
    punctuation: a split on whitespace (the language tokenizers datatrove ships are for prose, and
    need nltk or spaCy)."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, start = [], 0
        for line in text.splitlines(keepends=True):
            spans.append((start, start + len(line)))
            start += len(line)
        return spans


WORDS = CodeWords()


def text_of(doc: Document) -> str:
    return doc.text


class Tagged(PipelineStep):
    """Runs ``inner`` (a filter) over every document; what it drops is tagged ``reason`` and kept in
    the stream, in order. ``view="plain"`` shows the filter ``metadata["plain"]`` as the text."""

    name = "tagged filter"
    type = "vtforge"

    def __init__(self, inner: PipelineStep, reason: str, view: str | None = None) -> None:
        super().__init__()
        self.inner, self.reason, self.view = inner, reason, view

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        pending: deque[tuple[Document, str]] = deque()

        def feed() -> Iterator[Document]:
            for doc in data:
                pending.append((doc, doc.text))
                if self.view:
                    doc.text = doc.metadata.get(self.view) or doc.text
                yield doc

        def release(doc: Document, text: str, dropped: bool) -> Document:
            doc.text = text
            if dropped:
                tag(doc, self.reason)
            return doc

        for kept in self.inner.run(feed(), rank, world_size):
            while pending and pending[0][0] is not kept:
                yield release(*pending.popleft(), dropped=True)
            if pending:
                yield release(*pending.popleft(), dropped=False)
        while pending:
            yield release(*pending.popleft(), dropped=True)


def exact_config() -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=text_of)


def minhash_config(ngrams: int, buckets: int, hashes_per_bucket: int, seed: int) -> MinhashConfig:
    return MinhashConfig(n_grams=ngrams, num_buckets=buckets, hashes_per_bucket=hashes_per_bucket, seed=seed)


class PlainView(PipelineStep):
    """Documents with ``metadata["plain"]`` as their text, for a signature step that ends a stage."""

    name = "plain view"
    type = "vtforge"

    def run(self, data: Iterable[Document], rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            yield Document(text=doc.metadata.get("plain") or doc.text, id=doc.id, metadata={})


def exact_signatures(work: str) -> list[Any]:
    """Ends stage 1: exact signatures of the rendered text (positions of the written file)."""
    return [ExactDedupSignature(f"{work}/exact/sigs", exact_config(), finder_workers=1)]


def find_exact(work: str) -> list[Any]:
    return [ExactFindDedups(f"{work}/exact/sigs", f"{work}/exact/dups", config=exact_config())]


def exact_filter(work: str) -> list[Any]:
    return [Tagged(ExactDedupFilter(f"{work}/exact/dups", config=exact_config()), "exact_duplicate")]


def minhash_signatures(work: str, config: MinhashConfig) -> list[Any]:
    """Ends stage 3: MinHash signatures of the plain view of the exact-deduplicated documents."""
    return [PlainView(), MinhashDedupSignature(f"{work}/minhash/sigs", config=config, language=WORDS)]  # type: ignore[arg-type]


def minhash_buckets(work: str, config: MinhashConfig) -> list[Any]:
    return [MinhashDedupBuckets(f"{work}/minhash/sigs", f"{work}/minhash/buckets", config=config)]


def minhash_cluster(work: str, config: MinhashConfig) -> list[Any]:
    return [MinhashDedupCluster(f"{work}/minhash/buckets", f"{work}/minhash/remove", config=config)]


def near_filter(work: str) -> list[Any]:
    return [Tagged(MinhashDedupFilter(f"{work}/minhash/remove"), "near_duplicate")]
