"""Task preparation, cached: a task's repository exported at its commit and its set-up run once.

Prepared checkouts live under ``<work_dir>/repos/<key>``, keyed by repository, commit, set-up
commands, interpreter, backend and image; a lock per key lets concurrent callers share one set-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vtforge.gitrepo import GitError, export_commit, resolve_commit
from vtforge.locks import locked
from vtforge.sandbox.api import PreparedRepo, RepoSpec
from vtforge.sandbox.layout import chown_tree, sandbox_owner
from vtforge.sandbox.results import tail
from vtforge.schemas import stable_id

SetupRunner = Callable[[Path, Path, RepoSpec, float], tuple[bool, str]]


def prepare_cached(
    spec: RepoSpec,
    work_dir: Path,
    *,
    backend: str,
    image: str | None,
    image_digest: str | None,
    timeout_s: float,
    run_setup: SetupRunner,
) -> PreparedRepo:
    """Export ``spec`` at its commit and run its set-up once; later calls reuse the cache."""
    try:
        commit = resolve_commit(spec.repo_dir, spec.base_commit)
    except GitError as exc:
        return _failed_prepare(spec, work_dir, backend, image, image_digest, str(exc))
    key = stable_id(
        "prepared",
        spec.repo_dir,
        commit,
        "\n".join(spec.setup_commands),
        spec.python,
        backend,
        image_digest or image,
    )
    cache = work_dir / "repos" / key
    meta_path = cache / "meta.json"
    owner = sandbox_owner()

    def prepared_as(setup_s: float, setup_log: str) -> PreparedRepo:
        return PreparedRepo(
            spec=spec,
            key=key,
            commit=commit,
            source_dir=cache / "source",
            cache_dir=cache,
            env_dir=cache / "env",
            backend=backend,
            image=image,
            image_digest=image_digest,
            setup_s=setup_s,
            setup_log=setup_log,
        )

    with locked(work_dir / "repos" / f"{key}.lock"):
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            return prepared_as(meta["setup_s"], meta.get("setup_log", ""))
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        os.chmod(cache, 0o755)
        started = time.monotonic()
        try:
            export_commit(spec.repo_dir, commit, cache / "source")
            (cache / "env").mkdir()
            chown_tree(cache / "source", owner)
            chown_tree(cache / "env", owner)
            ok, log = (True, "")
            if spec.setup_commands:
                ok, log = run_setup(cache / "source", cache / "env", spec, timeout_s)
        except (GitError, OSError, subprocess.SubprocessError) as exc:
            ok, log = False, str(exc)
        setup_s = time.monotonic() - started
        prepared = prepared_as(setup_s, tail(log))
        if not ok:
            shutil.rmtree(cache, ignore_errors=True)
            return replace(prepared, setup_status="infra_failure")
        meta_path.write_text(json.dumps({"commit": commit, "setup_s": setup_s, "setup_log": tail(log)}))
        return prepared


def _failed_prepare(
    spec: RepoSpec, work_dir: Path, backend: str, image: str | None, digest: str | None, log: str
) -> PreparedRepo:
    return PreparedRepo(
        spec=spec,
        key="",
        commit="",
        source_dir=work_dir / "missing",
        cache_dir=work_dir,
        env_dir=work_dir / "missing",
        backend=backend,
        image=image,
        image_digest=digest,
        setup_status="infra_failure",
        setup_log=log,
    )
