"""The corpus manifest: what a build read, removed, kept and packed, and a check that the shards
on disk still say so.

``manifest.json`` (in the corpus folder, and a copy in ``docs/research/datasets/corpus-<name>.json``
with a Markdown rendering beside it) holds the sources and their input hashes, the tokenizer (lever
and ``tokenizer.json`` hash), the seed and every lever, documents/characters/tokens per source at
each step (collected → filtered → exact-deduplicated → near-deduplicated → packed, with each
removal by reason), decontamination suites and their n-grams, every shard with its sha256, rows,
tokens and source mix, and ``content_sha256``: a hash of the shards' hashes in order, the
corpus's identity.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vtforge.warehouse.export_manifest import file_sha256

MANIFEST = "manifest.json"
STEPS = ("filter", "exact", "near")


def _merge_ledgers(folder: Path) -> tuple[dict[str, dict[str, Counter]], dict[str, dict[str, Counter]]]:
    kept: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    removed: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for step in STEPS:
        for path in sorted((folder / step).glob("*.json")):
            report = json.loads(path.read_text())
            for source, counts in report["kept"].items():
                kept[step][source].update(counts)
            for source, reasons in report["removed"].items():
                for reason, counts in reasons.items():
                    removed[source][f"{step}:{reason}"].update(counts)
    return kept, removed


def build_manifest(
    out: Path, *, header: dict[str, Any], collected: dict[str, int], decontam: dict[str, int]
) -> dict[str, Any]:
    """The manifest of the build in ``out`` from its ledgers and shards."""
    ledger = out / "work" / "ledger"
    kept, removed = _merge_ledgers(ledger)
    packed: dict[str, Counter] = defaultdict(Counter)
    shards: list[dict[str, Any]] = []
    for path in sorted((ledger / "pack").glob("*.json")):
        report = json.loads(path.read_text())
        for source, counts in report["sources"].items():
            packed[source].update(counts)
        shards += report["shards"]
    for shard in shards:
        shard["sha256"] = file_sha256(out / shard["shard"])
    sources = sorted(set(collected) | set(packed) | set(removed))
    per_source: dict[str, Any] = {}
    for source in sources:
        unique_tokens = int(packed[source].get("tokens", 0))
        near_removed = _tokens(removed[source], "near:")
        exact_removed = _tokens(removed[source], "exact:")
        filter_removed = _tokens(removed[source], "filter:")
        per_source[source] = {
            "steps": {
                "collected": {"documents": int(collected.get(source, 0))},
                "filtered": {
                    **{k: int(v) for k, v in kept["filter"][source].items()},
                    "tokens": unique_tokens + near_removed + exact_removed,
                },
                "exact_deduplicated": {
                    **{k: int(v) for k, v in kept["exact"][source].items()},
                    "tokens": unique_tokens + near_removed,
                },
                "near_deduplicated": {
                    **{k: int(v) for k, v in kept["near"][source].items()},
                    "tokens": unique_tokens,
                },
                "packed": {
                    "documents": int(packed[source].get("upsampled_documents", 0)),
                    "tokens": int(packed[source].get("upsampled_tokens", 0)),
                },
            },
            "rendered_tokens": unique_tokens + near_removed + exact_removed + filter_removed,
            "removed": {r: {k: int(v) for k, v in c.items()} for r, c in sorted(removed[source].items())},
        }
    reasons: Counter = Counter()
    for source in sources:
        for reason, counts in removed[source].items():
            reasons[reason] += int(counts.get("documents", 0))
    content = hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()
    return {
        **header,
        "content_sha256": content,
        "totals": {
            "shards": len(shards),
            "rows": sum(s["rows"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "documents_collected": sum(collected.values()),
        },
        "removed_by_reason": dict(sorted(reasons.items())),
        "dedup": {
            "exact_duplicates": sum(v for k, v in reasons.items() if k == "exact:exact_duplicate"),
            "near_duplicates": sum(v for k, v in reasons.items() if k == "near:near_duplicate"),
        },
        "decontamination": {
            "removed": reasons.get("filter:decontaminated", 0),
            "suites": decontam,
        },
        "sources": per_source,
        "shards": shards,
    }


def _tokens(removed: dict[str, Counter], prefix: str) -> int:
    return sum(int(c.get("tokens", 0)) for r, c in removed.items() if r.startswith(prefix))


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def render_markdown(manifest: dict[str, Any]) -> str:
    """The manifest for people (docs/research/datasets/corpus-<name>.md)."""
    lines = [
        f"# Corpus `{manifest['name']}`",
        "",
        "Generated by `vtforge corpus build`; do not edit. Rebuilding with the same sources, seed and "
        "levers gives the same `content_sha256`.",
        "",
        f"- content_sha256: `{manifest['content_sha256']}`",
        f"- tokenizer: `{manifest['tokenizer']['lever']}` (tokenizer.json sha256 "
        f"`{manifest['tokenizer']['sha256'][:16]}`), seq_len {manifest['levers']['seq_len']}",
        f"- seed: {manifest['seed']}; executor: {manifest['executor']}",
        f"- shards: {manifest['totals']['shards']}, rows: {manifest['totals']['rows']}, "
        f"tokens: {manifest['totals']['tokens']}",
        f"- exact duplicates removed: {manifest['dedup']['exact_duplicates']}; near duplicates: "
        f"{manifest['dedup']['near_duplicates']}; decontaminated: {manifest['decontamination']['removed']}",
        "",
        "## Sources",
        "",
        "| source | input | sha256 |",
        "|---|---|---|",
        *[f"| {s['kind']} | {s['arg'] or ''} | `{(s['sha256'] or '')[:16]}` |" for s in manifest["inputs"]],
        "",
        "## Tokens per source and step",
        "",
        "| source | weight | collected docs | filtered | exact-dedup | near-dedup | packed (upsampled) |",
        "|---|---|---|---|---|---|---|",
    ]
    for source, info in manifest["sources"].items():
        st = info["steps"]
        weight = manifest["levers"]["weights"].get(source, 1.0)
        lines.append(
            f"| {source} | {weight:g} | {st['collected']['documents']} | {st['filtered']['tokens']} | "
            f"{st['exact_deduplicated']['tokens']} | {st['near_deduplicated']['tokens']} | "
            f"{st['packed']['tokens']} |"
        )
    lines += ["", "## Removed, by step and reason (documents)", "", "| reason | documents |", "|---|---|"]
    lines += [f"| {r} | {n} |" for r, n in manifest["removed_by_reason"].items()]
    lines += ["", "## Rebuild", "", "```", manifest["command"], "```", ""]
    return "\n".join(lines)


@dataclass
class ShardCheck:
    passed: bool
    problems: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def check_shards(out: Path) -> ShardCheck:
    """Compare the manifest with the shards on disk: every shard present, its sha256, its rows and
    real tokens as recorded, no shard the manifest does not know, and the content hash."""
    import pyarrow.parquet as pq

    path = out / MANIFEST
    if not path.is_file():
        return ShardCheck(False, [f"{path} is missing"])
    manifest = json.loads(path.read_text())
    problems: list[str] = []
    tokens = 0
    for shard in manifest["shards"]:
        file = out / shard["shard"]
        if not file.is_file():
            problems.append(f"{shard['shard']}: missing")
            continue
        if file_sha256(file) != shard["sha256"]:
            problems.append(f"{shard['shard']}: sha256 differs from the manifest")
        try:
            table = pq.read_table(file)
        except Exception as exc:  # a shard that no longer parses is a finding, not a crash
            problems.append(f"{shard['shard']}: unreadable ({exc})")
            continue
        real = int(table.column("length").to_numpy().sum())
        tokens += real
        if table.num_rows != shard["rows"] or real != shard["tokens"]:
            problems.append(
                f"{shard['shard']}: {table.num_rows} rows / {real} tokens, "
                f"manifest {shard['rows']} / {shard['tokens']}"
            )
    known = {s["shard"] for s in manifest["shards"]}
    extra = sorted(
        str(p.relative_to(out))
        for p in (out / "shards").glob("*.parquet")
        if str(p.relative_to(out)) not in known
    )
    problems += [f"{name}: not in the manifest" for name in extra]
    content = hashlib.sha256("".join(s["sha256"] for s in manifest["shards"]).encode()).hexdigest()
    if content != manifest["content_sha256"]:
        problems.append("content_sha256 does not match the shard hashes")
    if tokens != manifest["totals"]["tokens"] and not problems:
        problems.append(f"shards hold {tokens} tokens, manifest {manifest['totals']['tokens']}")
    return ShardCheck(
        not problems,
        problems,
        {
            "shards": len(manifest["shards"]),
            "tokens": manifest["totals"]["tokens"],
            "corpus": manifest["content_sha256"],
        },
    )
