"""Task preparation, cached: a task's repository exported at its commit and its set-up run once.

Prepared checkouts live under ``<work_dir>/repos/<key>``, keyed by repository, commit, set-up
commands, interpreter, backend and image; a lock per key lets concurrent callers share one set-up.
"""

from __future__ import annotations

import contextlib
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
            os.utime(meta_path)  # last used: the LRU bound drops the oldest first
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


def drop_prepared(work_dir: Path, key: str) -> bool:
    """Delete one prepared checkout (it is built again on the next ``prepare``)."""
    cache = work_dir / "repos" / key
    with locked(work_dir / "repos" / f"{key}.lock"):
        existed = cache.exists()
        shutil.rmtree(cache, ignore_errors=True)
    return existed


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def bound_cache(work_dir: Path, max_gb: float, *, keep: str) -> list[str]:
    """Drop prepared checkouts, least recently used first, until they take at most ``max_gb``
    (``keep``, the one just prepared, always stays). Returns the keys dropped."""
    repos = work_dir / "repos"
    if not repos.is_dir():
        return []
    entries = []
    for cache in repos.iterdir():
        meta = cache / "meta.json"
        if cache.is_dir() and meta.exists():
            entries.append((meta.stat().st_mtime, cache.name, _size(cache)))
    total = sum(size for _, _, size in entries)
    dropped = []
    for _, key, size in sorted(entries):
        if total <= max_gb * 1e9:
            break
        if key != keep and drop_prepared(work_dir, key):
            total -= size
            dropped.append(key)
    return dropped
