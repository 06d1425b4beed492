"""A static HTML report of the telemetry: plots over policy versions and training steps, as PNG files
next to an ``index.html`` that shows them with the gate and dataset tables. No server needed."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb


@dataclass
class Report:
    folder: Path
    pngs: list[Path] = field(default_factory=list)

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    try:
        con.execute(f'SELECT 1 FROM "{table}" LIMIT 0')
    except duckdb.Error:
        return False
    return True


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    relation = con.sql(sql)
    return list(relation.columns), relation.fetchall()


# --- plots ---------------------------------------------------------------------------------------


def _series_plot(
    path: Path, title: str, ylabel: str, series: dict[str, list[tuple[Any, float | None]]], *, xlabel: str
) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [(x, y) for x, y in v if y is not None] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    for label, points in sorted(series.items()):
        xs = [str(x) for x, _ in points]
        ax.plot(xs, [y for _, y in points], marker="o", label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _by_version(
    con: duckdb.DuckDBPyConnection, table: str, value_columns: list[str], label_columns: list[str]
) -> dict[str, list[tuple[Any, float | None]]]:
    """``{label: [(policy_version, value), …]}`` in version order; label = stage/extra columns/value."""
    cols = ", ".join(f'"{c}"' for c in [*label_columns, *value_columns])
    rows = con.execute(
        f'SELECT policy_version, {cols} FROM "{table}" ORDER BY version_index NULLS LAST, policy_version'
    ).fetchall()
    out: dict[str, list[tuple[Any, float | None]]] = defaultdict(list)
    for row in rows:
        version, labels, values = row[0], row[1 : 1 + len(label_columns)], row[1 + len(label_columns) :]
        for name, value in zip(value_columns, values, strict=True):
            key = " ".join([*(str(x) for x in labels), name])
            out[key].append((version, None if value is None else float(value)))
    return out


def _plots(con: duckdb.DuckDBPyConnection, folder: Path) -> list[tuple[str, Path]]:
    made: list[tuple[str, Path]] = []

    def add(
        name: str, title: str, ylabel: str, series: dict[str, list[tuple[Any, float | None]]], xlabel: str
    ) -> None:
        path = _series_plot(folder / f"{name}.png", title, ylabel, series, xlabel=xlabel)
        if path is not None:
            made.append((title, path))

    if _has(con, "telemetry_localization"):
        series = _by_version(con, "telemetry_localization", ["recall_at_k"], ["stage", "file_kind", "k"])
        add(
            "localization_recall",
            "Localization recall@k",
            "recall",
            {f"{k.replace(' recall_at_k', '')}": v for k, v in series.items()},
            "policy version",
        )
    if _has(con, "telemetry_patches"):
        add(
            "patch_acceptance",
            "Patch acceptance",
            "rate",
            _by_version(con, "telemetry_patches", ["acceptance", "resolve_rate"], ["stage"]),
            "policy version",
        )
    if _has(con, "telemetry_tests"):
        add(
            "test_quality",
            "Generated-test quality",
            "rate",
            _by_version(
                con,
                "telemetry_tests",
                [
                    "fail_before_fix_task_rate",
                    "fail_before_rate",
                    "fail_before_pass_after_rate",
                    "flake_rate",
                ],
                ["stage"],
            ),
            "policy version",
        )
    if _has(con, "telemetry_rewards"):
        add(
            "reward_mean",
            "Reward mean and std per role",
            "reward",
            _by_version(con, "telemetry_rewards", ["reward_mean", "reward_std"], ["stage", "role"]),
            "policy version",
        )
        add(
            "groups_solved",
            "Groups solved by all / some / none of the samples",
            "share of groups",
            _by_version(con, "telemetry_rewards", ["solved_all", "solved_some", "solved_none"], ["role"]),
            "policy version",
        )
    if _has(con, "training_steps"):
        rows = con.execute(
            "SELECT trainer || ' ' || policy_version AS run, step, loss, reward_mean FROM training_steps "
            "ORDER BY run, step"
        ).fetchall()
        loss: dict[str, list[tuple[Any, float | None]]] = defaultdict(list)
        reward: dict[str, list[tuple[Any, float | None]]] = defaultdict(list)
        for run, step, step_loss, step_reward in rows:
            loss[f"{run} loss"].append((step, step_loss))
            reward[f"{run} reward"].append((step, step_reward))
        add("training_loss", "Training loss", "loss", loss, "step")
        add("training_reward", "Training reward mean", "reward", reward, "step")
    return made


# --- tables --------------------------------------------------------------------------------------

_TABLES = {
    "Curriculum gates": "SELECT stage, policy_version, gate, comparison, threshold, value, passed "
    "FROM curriculum_gates "
    "ORDER BY stage, version_index, gate",
    "SFT examples": "SELECT role, source, synthetic, split, count(*) AS examples FROM sft_examples "
    "GROUP BY ALL ORDER BY ALL",
    "RL prompts by difficulty": "SELECT split, difficulty_bucket, count(*) AS tasks FROM rl_prompts "
    "GROUP BY ALL ORDER BY ALL",
    "Replay buffer": "SELECT policy_version, staleness, count(*) AS trajectories FROM replay_buffer "
    "GROUP BY ALL ORDER BY staleness",
    "False positives": "SELECT task_id, patch_id, counterexample_test FROM false_positives "
    "ORDER BY ALL LIMIT 50",
    "Quarantine": "SELECT source, reason, count(*) AS records FROM quarantine GROUP BY ALL ORDER BY ALL",
}


def _html_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def build_report(con: duckdb.DuckDBPyConnection, folder: Path) -> Report:
    """Write the PNGs and ``index.html`` into ``folder`` from whatever telemetry exists."""
    folder.mkdir(parents=True, exist_ok=True)
    report = Report(folder)
    plots = _plots(con, folder)
    report.pngs = [p for _, p in plots]
    sections = []
    for title, path in plots:
        sections.append(
            f'<figure><img src="{html.escape(path.name)}" alt="{html.escape(title)}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>"
        )
    tables = []
    for title, sql in _TABLES.items():
        try:
            columns, rows = _rows(con, sql)
        except duckdb.Error:
            continue
        tables.append(
            f"<h2>{html.escape(title)}</h2>" + (_html_table(columns, rows) if rows else "<p>none</p>")
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(sections) or "<p>No telemetry yet: run <code>vtforge materialize</code>.</p>"
    report.index.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vtforge report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}figure{{display:inline-block;margin:.5em}}
table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
</style></head><body>
<h1>vtforge telemetry</h1><p>Generated {stamp} from the warehouse.</p>
<h2>Telemetry over policy versions and training steps</h2>{body}
{"".join(tables)}
</body></html>
""",
        encoding="utf-8",
    )
    return report
