"""Provenance manifests: ``docs/research/datasets/<slice>.md`` and ``.json``.

A manifest lists what a slice holds and where each part came from (sources, origins, licences,
importer versions, sdist hashes), with content hashes that do not depend on the machine (local
repository paths are left out), so rebuilding a slice and writing its manifest again gives the
same file, byte for byte. Nothing time-dependent goes in.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from vtforge.config import Config
from vtforge.tasks.bank import load_slice
from vtforge.tasks.decontam import DecontamReport
from vtforge.tasks.model import Task

MANIFEST_DIR = Path("docs") / "research" / "datasets"
MANIFEST_VERSION = 1


def portable_record(task: Task) -> dict[str, Any]:
    """The task as stored, minus what differs between machines (the local repository path)."""
    record = task.to_swebench()
    record.pop("repo_dir", None)
    return record


def slice_hash(tasks: list[Task]) -> str:
    digest = hashlib.sha256()
    for task in sorted(tasks, key=lambda t: t.instance_id):
        digest.update(json.dumps(portable_record(task), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _rebuild(slice_name: str, tasks: list[Task]) -> list[str]:
    commands: list[str] = []
    if slice_name == "demo":
        commands.append("vtforge tasks demo")
    packages: dict[str, int] = Counter()
    for task in tasks:
        prov = task.provenance
        if task.source == "synth":
            packages[prov["origin"].removeprefix("pypi:")] += 1
    for package, count in sorted(packages.items()):
        commands.append(
            f"vtforge tasks synth --package {package} --max {count} --seed 0 --slice {slice_name}"
        )
    inputs = sorted({(t.source, t.provenance.get("input_file") or "") for t in tasks if t.source != "synth"})
    for source, input_file in inputs:
        commands.append(f"vtforge tasks import {source} {input_file or 'PATH'} --slice {slice_name}")
    return commands


def build_manifest(slice_name: str, tasks: list[Task]) -> dict[str, Any]:
    tasks = sorted(tasks, key=lambda t: t.instance_id)
    decontam = DecontamReport(total=len(tasks))
    for task in tasks:
        if task.split == "eval":
            decontam.eval_tasks += 1
        elif task.contamination_flags:
            decontam.flagged += 1
            decontam.by_flag.update(f.split(":", 1)[0] for f in task.contamination_flags)
    origins: dict[str, dict[str, Any]] = {}
    for task in tasks:
        prov = task.provenance
        origin = str(prov.get("origin") or task.repo)
        key = origin.split("@")[0] if task.source == "commit-pack" else origin
        if task.source == "github" or task.source == "swe-bench":
            key = f"https://github.com/{task.repo}"
        entry = origins.setdefault(key, {"source": task.source, "tasks": 0, "license": prov.get("license")})
        entry["tasks"] += 1
        for field in ("sdist", "sdist_sha256", "input_file", "input_sha256"):
            if prov.get(field):
                entry[field] = prov[field]
        if task.source == "synth":
            entry["commit"] = prov.get("commit")
    validated = sum(1 for t in tasks if (t.provenance.get("validation") or {}).get("gold_resolved"))
    return {
        "manifest_version": MANIFEST_VERSION,
        "slice": slice_name,
        "tasks": len(tasks),
        "slice_sha256": slice_hash(tasks),
        "counts": {
            "by_source": dict(sorted(Counter(t.source for t in tasks).items())),
            "by_split": dict(sorted(Counter(t.split for t in tasks).items())),
            "by_repo": dict(sorted(Counter(t.repo for t in tasks).items())),
            "by_difficulty": dict(
                sorted(Counter(t.difficulty_bucket or "unmeasured" for t in tasks).items())
            ),
            "by_mutation": dict(
                sorted(
                    Counter((t.provenance.get("mutation") or {}).get("kind", "n/a") for t in tasks).items()
                )
            ),
            "validated_in_sandbox": validated,
        },
        "licenses": dict(sorted(Counter(str(t.provenance.get("license")) for t in tasks).items())),
        "importer_versions": sorted({str(t.provenance.get("importer_version")) for t in tasks}),
        "decontamination": decontam.to_dict(),
        "origins": dict(sorted(origins.items())),
        "rebuild": _rebuild(slice_name, tasks),
        "instances": [
            {**instance_record(t), "split": t.split, "contamination_flags": list(t.contamination_flags)}
            for t in tasks
        ],
    }


def instance_record(t: Task) -> dict[str, Any]:
    """One task in a manifest: what identifies it (its content hash included) and its test counts."""
    return {
        "instance_id": t.instance_id,
        "repo": t.repo,
        "base_commit": t.base_commit,
        "content_hash": t.content_hash(),
        "source": t.source,
        "fail_to_pass": len(t.fail_to_pass),
        "pass_to_pass": len(t.pass_to_pass),
    }


def render_markdown(manifest: dict[str, Any]) -> str:
    c = manifest["counts"]
    lines = [
        f"# Task slice `{manifest['slice']}`",
        "",
        "Generated by `vtforge tasks manifest`; do not edit. The hashes are machine-independent: "
        "rebuilding the slice with the commands below gives the same `slice_sha256`.",
        "",
        f"- tasks: **{manifest['tasks']}** (validated in the sandbox: {c['validated_in_sandbox']})",
        f"- slice_sha256: `{manifest['slice_sha256']}`",
        f"- importer versions: {', '.join(manifest['importer_versions'])}",
        f"- by source: {_inline(c['by_source'])}",
        f"- by split: {_inline(c['by_split'])}",
        f"- by difficulty: {_inline(c['by_difficulty'])}",
        f"- by mutation kind: {_inline(c['by_mutation'])}",
        f"- licences: {_inline(manifest['licenses'])}",
        f"- decontamination: {_inline(manifest['decontamination'])}",
        "",
        "## Origins",
        "",
        "| origin | source | tasks | licence | hash |",
        "|---|---|---|---|---|",
    ]
    for origin, entry in manifest["origins"].items():
        digest = entry.get("sdist_sha256") or entry.get("input_sha256") or ""
        lines.append(
            f"| {origin} | {entry['source']} | {entry['tasks']} | {entry.get('license')} | `{digest[:16]}` |"
        )
    lines += [
        "",
        "## Rebuild",
        "",
        "```",
        *manifest["rebuild"],
        "```",
        "",
        *task_table(manifest["instances"]),
    ]
    return "\n".join(lines) + "\n"


def task_table(instances: list[dict[str, Any]]) -> list[str]:
    """The ``## Tasks`` section of a manifest (slices and evaluation suites)."""
    lines = ["## Tasks", "", "| instance | repo | F2P | P2P | content hash |", "|---|---|---|---|---|"]
    for inst in instances:
        lines.append(
            f"| {inst['instance_id']} | {inst['repo']} | {inst['fail_to_pass']} | "
            f"{inst['pass_to_pass']} | `{inst['content_hash'][:16]}` |"
        )
    return lines


def _inline(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "none"


def write_manifest(cfg: Config, slice_name: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<slice>.json`` and ``.md`` (default ``<workspace>/docs/research/datasets``)."""
    tasks = load_slice(cfg, slice_name)
    if not tasks:
        raise ValueError(f"slice {slice_name!r} is empty or does not exist")
    folder = out_dir or (cfg.root / MANIFEST_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(slice_name, tasks)
    json_path, md_path = folder / f"{slice_name}.json", folder / f"{slice_name}.md"
    json_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    md_path.write_text(render_markdown(manifest))
    return json_path, md_path
