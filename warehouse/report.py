"""A static HTML report of the telemetry: plots over policy versions and training steps, as PNG files
next to an ``index.html`` that shows them with the gate and dataset tables. No server needed.

The per-version measures are shaped with polars (long frames: version, series, value) and drawn with
matplotlib."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl


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
# Two kinds: a measure per policy version is drawn as grouped bars, one group per version (versions
# are categories: nothing lies between two policies, so no line joins them); a measure over
# training steps is a curve.


def _step_plot(
    path: Path, title: str, ylabel: str, series: dict[str, list[tuple[Any, float | None]]], *, xlabel: str
) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[tuple[Any, float]]]
    curves = {k: [(x, y) for x, y in v if y is not None] for k, v in series.items()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    for label, points in sorted(curves.items()):
        ax.plot([x for x, _ in points], [float(y) for _, y in points], marker=".", label=label)
    _finish(fig, ax, path, title, xlabel, ylabel)
    return path


def _version_plot(path: Path, title: str, ylabel: str, frame: pl.DataFrame) -> Path | None:
    """Grouped bars: x = policy versions in their order, one bar per series within each version."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if frame.is_empty():
        return None
    versions = frame["policy_version"].unique(maintain_order=True).to_list()
    names = sorted(frame["series"].unique().to_list())
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    for i, name in enumerate(names):
        rows = frame.filter(pl.col("series") == name)
        xs = [versions.index(v) - 0.4 + width * (i + 0.5) for v in rows["policy_version"].to_list()]
        ax.bar(xs, rows["value"].to_list(), width=width, label=name)
    ax.set_xticks(range(len(versions)), [str(v) for v in versions])
    _finish(fig, ax, path, title, "policy version", ylabel)
    return path


def _finish(fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def by_version(
    con: duckdb.DuckDBPyConnection,
    table: str,
    value_columns: list[str],
    label_columns: list[str],
    *,
    name_measure: bool = True,
) -> pl.DataFrame:
    """One row per (policy version, series) with a value: ``policy_version``, ``series``, ``value``,
    in version order (``version_index``). A series is named by the label columns (and the measure);
    rows without a policy version (gold or engine runs) belong to no version and are left out."""
    cols = ", ".join(f'"{c}"' for c in [*label_columns, *value_columns])
    wide = con.sql(
        f'SELECT policy_version, version_index, {cols} FROM "{table}" WHERE policy_version IS NOT NULL'
    ).pl()
    long = wide.with_columns(pl.col(value_columns).cast(pl.Float64)).unpivot(
        on=value_columns, index=["policy_version", "version_index", *label_columns], variable_name="measure"
    )
    parts = [pl.col(c).cast(pl.String) for c in label_columns] + ([pl.col("measure")] if name_measure else [])
    return (
        long.drop_nulls("value")
        .with_columns(series=pl.concat_str(parts, separator=" ") if parts else pl.lit(""))
        .sort(["version_index", "policy_version", "series"], nulls_last=True)
        .select("policy_version", "series", "value")
    )


def _plots(con: duckdb.DuckDBPyConnection, folder: Path) -> list[tuple[str, Path]]:
    made: list[tuple[str, Path]] = []

    def add(name: str, title: str, ylabel: str, frame: pl.DataFrame) -> None:
        path = _version_plot(folder / f"{name}.png", title, ylabel, frame)
        if path is not None:
            made.append((title, path))

    def add_steps(
        name: str, title: str, ylabel: str, series: dict[str, list[tuple[Any, float | None]]]
    ) -> None:
        path = _step_plot(folder / f"{name}.png", title, ylabel, series, xlabel="step")
        if path is not None:
            made.append((title, path))

    if _has(con, "telemetry_localization"):
        add(
            "localization_recall",
            "Localization recall@k",
            "recall",
            by_version(
                con,
                "telemetry_localization",
                ["recall_at_k"],
                ["stage", "file_kind", "k"],
                name_measure=False,
            ),
        )
    if _has(con, "telemetry_patches"):
        add(
            "patch_acceptance",
            "Patch acceptance",
            "rate",
            by_version(con, "telemetry_patches", ["acceptance", "resolve_rate"], ["stage"]),
        )
    if _has(con, "telemetry_tests"):
        add(
            "test_quality",
            "Generated-test quality",
            "rate",
            by_version(
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
        )
    if _has(con, "telemetry_rewards"):
        add(
            "reward_mean",
            "Reward mean and std per role",
            "reward",
            by_version(con, "telemetry_rewards", ["reward_mean", "reward_std"], ["stage", "role"]),
        )
        add(
            "groups_solved",
            "Groups solved by all / some / none of the samples",
            "share of groups",
            by_version(con, "telemetry_rewards", ["solved_all", "solved_some", "solved_none"], ["role"]),
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
        add_steps("training_loss", "Training loss", "loss", loss)
        add_steps("training_reward", "Training reward mean", "reward", reward)
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
