"""The landing-zone sensor: a new or rewritten landing file starts one warehouse run.

The cursor is a fingerprint of the visible landing files (count, newest mtime, total size), so
a quiet landing zone asks for nothing and a burst of files asks for one run (the run queue and
the writer pool keep runs one at a time).
"""

from __future__ import annotations

import os

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from vtforge.config import load_config
from vtforge.pipelines.jobs import warehouse_job

SENSOR_INTERVAL_S = 30


def landing_fingerprint(landing: os.PathLike[str] | str) -> str | None:
    """``count:newest_mtime_ns:bytes`` of the visible landing files (None: no files)."""
    count = newest = size = 0
    for folder, _dirs, files in os.walk(landing):
        for name in files:
            if not name.endswith(".parquet") or name.startswith("."):
                continue
            try:
                stat = os.stat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            count += 1
            newest = max(newest, stat.st_mtime_ns)
            size += stat.st_size
    return f"{count}:{newest}:{size}" if count else None


@sensor(
    job=warehouse_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts a warehouse run when landing files appear or change.",
)
def landing_sensor(context: SensorEvaluationContext):
    config = load_config()
    fingerprint = landing_fingerprint(config.landing_dir)
    if fingerprint is None:
        return SkipReason(f"no landing files under {config.landing_dir}")
    if fingerprint == context.cursor:
        return SkipReason("no new landing files")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=fingerprint, tags={"vtforge/trigger": "landing"})
