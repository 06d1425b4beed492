"""One task of the bank: SWE-bench's fields plus where it came from and how hard it is.

SWE-bench stores ``FAIL_TO_PASS``/``PASS_TO_PASS`` upper-case (JSON-encoded strings in the HF data
set); we hold them as lists and convert at the edges (``to_swebench``/``from_swebench``), so a bank
file is a valid SWE-bench JSONL with our columns added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from vtforge.sandbox.grading import test_ids

IMPORTER_VERSION = "vtforge.tasks/1"
SPLITS = ("train", "eval")
SOURCES = ("swe-bench", "swe-smith", "github", "commit-pack", "synth")

SWEBENCH_FIELDS = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "patch",
    "test_patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "hints_text",
    "version",
    "environment_setup_commit",
    "created_at",
)
OUR_FIELDS = (
    "repo_dir",
    "source",
    "provenance",
    "split",
    "difficulty_bucket",
    "baseline_success_rate",
    "contamination_flags",
)


@dataclass(frozen=True)
class Task:
    """A SWE-bench task. ``repo_dir`` is a local git repository holding ``base_commit`` ("" when
    the importer had no local copy; such a task cannot run until one is supplied)."""

    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str
    patch: str
    test_patch: str = ""
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    hints_text: str = ""
    version: str | None = None
    environment_setup_commit: str | None = None
    repo_dir: str = ""
    source: str = "swe-bench"
    provenance: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    difficulty_bucket: str | None = None
    baseline_success_rate: float | None = None
    contamination_flags: list[str] = field(default_factory=list)

    # --- SWE-bench form ---------------------------------------------------------------------

    def to_swebench(self) -> dict[str, Any]:
        """SWE-bench's instance dict (FAIL_TO_PASS/PASS_TO_PASS as JSON strings) plus our columns."""
        record: dict[str, Any] = {
            "instance_id": self.instance_id,
            "repo": self.repo,
            "base_commit": self.base_commit,
            "problem_statement": self.problem_statement,
            "patch": self.patch,
            "test_patch": self.test_patch,
            "FAIL_TO_PASS": json.dumps(list(self.fail_to_pass)),
            "PASS_TO_PASS": json.dumps(list(self.pass_to_pass)),
            "hints_text": self.hints_text,
            "version": self.version,
            "environment_setup_commit": self.environment_setup_commit,
            "created_at": self.provenance.get("created_at"),
        }
        record.update(
            repo_dir=self.repo_dir,
            source=self.source,
            provenance=dict(self.provenance),
            split=self.split,
            difficulty_bucket=self.difficulty_bucket,
            baseline_success_rate=self.baseline_success_rate,
            contamination_flags=list(self.contamination_flags),
        )
        return record

    @classmethod
    def from_swebench(cls, record: dict[str, Any], **overrides: Any) -> Task:
        """From a SWE-bench instance (its own column names; lists or JSON strings) or a bank row.

        Raises ``ValueError`` naming the field when a required one is missing or malformed.
        """
        for name in ("instance_id", "repo", "base_commit", "patch"):
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} is missing or not a non-empty string")
        statement = record.get("problem_statement")
        if not isinstance(statement, str):
            raise ValueError("problem_statement is missing or not a string")
        lists = {}
        for upper, lower in (("FAIL_TO_PASS", "fail_to_pass"), ("PASS_TO_PASS", "pass_to_pass")):
            raw = record.get(upper, record.get(lower))
            try:
                lists[lower] = test_ids(raw)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{upper} is not a JSON list of test ids: {exc}") from None
        provenance = dict(record.get("provenance") or {})
        if record.get("created_at") and "created_at" not in provenance:
            provenance["created_at"] = str(record["created_at"])
        rate = record.get("baseline_success_rate")
        values: dict[str, Any] = {
            "instance_id": record["instance_id"],
            "repo": record["repo"],
            "base_commit": record["base_commit"],
            "problem_statement": statement,
            "patch": record["patch"],
            "test_patch": record.get("test_patch") or "",
            "hints_text": record.get("hints_text") or "",
            "version": _opt_str(record.get("version")),
            "environment_setup_commit": _opt_str(record.get("environment_setup_commit")),
            "repo_dir": record.get("repo_dir") or "",
            "source": record.get("source") or "swe-bench",
            "provenance": provenance,
            "split": record.get("split") or "train",
            "difficulty_bucket": record.get("difficulty_bucket"),
            "baseline_success_rate": float(rate) if rate is not None else None,
            "contamination_flags": list(record.get("contamination_flags") or []),
            **lists,
        }
        values.update(overrides)
        return cls(**values)

    # --- helpers ----------------------------------------------------------------------------

    def replace(self, **changes: Any) -> Task:
        return dataclasses.replace(self, **changes)

    @property
    def trainable(self) -> bool:
        """May be trained on: a train-split task with no decontamination flag."""
        return self.split == "train" and not self.contamination_flags

    def content_hash(self) -> str:
        """sha256 of what defines the task (not its bookkeeping): stable across re-imports."""
        core = {
            "instance_id": self.instance_id,
            "repo": self.repo,
            "base_commit": self.base_commit,
            "problem_statement": self.problem_statement,
            "patch": self.patch,
            "test_patch": self.test_patch,
            "FAIL_TO_PASS": list(self.fail_to_pass),
            "PASS_TO_PASS": list(self.pass_to_pass),
        }
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


BUCKETS = ("easy", "medium", "hard")
UNMEASURED = "unmeasured"


def bucket_of(rate: float | None, easy_min: float, medium_min: float) -> str:
    """The curriculum bucket of a measured baseline success rate: the one rule for every layer.

    ``easy`` when ``rate >= easy_min``, ``medium`` when ``rate > medium_min``, else ``hard``;
    ``unmeasured`` when no baseline was measured (``None``). The warehouse macro ``bucket_of`` in
    ``warehouse/sql/_macros.sql`` is the same rule (a test checks they agree, boundaries included).
    """
    if rate is None:
        return UNMEASURED
    if rate >= easy_min:
        return "easy"
    return "medium" if rate > medium_min else "hard"
