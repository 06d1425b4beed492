"""The HTML report draws policy versions as categories, in version order, and never a ``None`` policy."""

from __future__ import annotations

from pathlib import Path

import duckdb

from vtforge.warehouse.report import build_report, by_version


def _telemetry() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE telemetry_patches AS SELECT * FROM (VALUES
            ('selfplay', 'v10', 2, 0.75, 0.5),
            ('selfplay', 'v2', 1, 0.25, NULL),
            ('selfplay', NULL, NULL, 1.0, 1.0),       -- gold runs: no policy
            ('agentic', 'v2', 1, 0.5, 0.5)
        ) t(stage, policy_version, version_index, acceptance, resolve_rate)"""
    )
    return con


def test_measures_are_shaped_per_version_in_version_order() -> None:
    frame = by_version(_telemetry(), "telemetry_patches", ["acceptance", "resolve_rate"], ["stage"])
    assert frame["policy_version"].unique(maintain_order=True).to_list() == ["v2", "v10"]  # not text order
    assert None not in frame["policy_version"].to_list()
    rows = {(r["policy_version"], r["series"]): r["value"] for r in frame.to_dicts()}
    assert rows == {
        ("v2", "agentic acceptance"): 0.5,
        ("v2", "agentic resolve_rate"): 0.5,
        ("v2", "selfplay acceptance"): 0.25,  # its NULL resolve_rate is no bar, not a zero
        ("v10", "selfplay acceptance"): 0.75,
        ("v10", "selfplay resolve_rate"): 0.5,
    }


def test_the_report_draws_version_plots_as_bars(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    drawn: list[tuple[str, list[str], int, int]] = []
    real_savefig = plt.Figure.savefig

    def record(fig, path, *args, **kwargs):  # the axes as they are written
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_xticklabels()]
        drawn.append((ax.get_title(), labels, len(ax.patches), len(ax.lines)))
        return real_savefig(fig, path, *args, **kwargs)

    plt.Figure.savefig = record
    try:
        report = build_report(_telemetry(), tmp_path / "report")
    finally:
        plt.Figure.savefig = real_savefig
    assert report.index.is_file() and (tmp_path / "report" / "patch_acceptance.png").is_file()
    ((title, labels, bars, lines),) = drawn
    assert title == "Patch acceptance"
    assert labels == ["v2", "v10"]  # categories; no "None"
    assert bars == 5 and lines == 0  # one bar per (version, series) with a value; nothing joins versions
