"""Reading the committed recordings of the real vtcode 0.169.2 (scripts/record_vtcode.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent / "recordings"


@dataclass(frozen=True)
class Recording:
    name: str

    @property
    def dir(self) -> Path:
        return ROOT / self.name

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.dir / "recording.json").read_text())

    @property
    def session_file(self) -> Path:
        (path,) = sorted(self.dir.glob(".vtcode/sessions/*/events.jsonl"))
        return path

    @property
    def session_id(self) -> str:
        return self.session_file.parent.name

    def stdout_lines(self) -> list[str]:
        return (self.dir / "exec-stdout.jsonl").read_text().splitlines()

    def session_lines(self) -> list[str]:
        return self.session_file.read_text().splitlines()

    def payloads(self, name: str) -> list[dict[str, Any]]:
        """Captured hook (``hooks.jsonl``) or notify (``notify.jsonl``) input, parsed."""
        rows = [json.loads(line) for line in (self.dir / name).read_text().splitlines()]
        return [json.loads(row["payload"]) for row in rows]

    def copy_vtcode_dir(self, workspace: Path) -> Path:
        """The recording's ``.vtcode`` folder placed in ``workspace`` (for the tailer)."""
        shutil.copytree(self.dir / ".vtcode", workspace / ".vtcode", dirs_exist_ok=True)
        return workspace / ".vtcode"


def all_recordings() -> list[Recording]:
    return [Recording(p.name) for p in sorted(ROOT.iterdir()) if (p / "recording.json").is_file()]
