"""A PyPI sdist, downloaded once (``pip download``), turned into a git repository.

The repository lives at ``<data_dir>/repos/<name>-<version>/``; its first commit is the sdist as
published (tagged ``vtforge/pristine``). For a ``src/`` layout one more commit adds a root
``conftest.py`` that puts ``src`` on ``sys.path``, so the package's own tests import the checkout
(sandbox runs use ``python -m pytest`` in the checkout and install nothing).
"""

from __future__ import annotations

import email.parser
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vtforge import gitrepo

SDIST_CACHE = Path.home() / ".cache" / "vtforge" / "sdists"
PRISTINE_TAG = "vtforge/pristine"
SRC_CONFTEST = '''"""Added by vtforge: the tests import the package from src/ in this checkout."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
'''


class SdistError(RuntimeError):
    pass


@dataclass(frozen=True)
class PackageRepo:
    name: str
    version: str
    path: Path
    pristine: str  # the commit tasks start from (sdist, plus the src/ harness if any)
    sdist: Path
    sdist_sha256: str
    license: str | None
    summary: str | None


def parse_requirement(spec: str) -> tuple[str, str]:
    """``NAME==VERSION`` (exact pins only: a task must name the code it was built from)."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*", spec)
    if not match:
        raise ValueError(f"--package must be NAME==VERSION, got {spec!r}")
    return match.group(1), match.group(2)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_cached(name: str, version: str, cache: Path = SDIST_CACHE) -> Path | None:
    if not cache.is_dir():
        return None
    want = _normal(f"{name}-{version}")
    for path in sorted(cache.iterdir()):
        for suffix in (".tar.gz", ".zip", ".tar.bz2"):
            if path.name.endswith(suffix) and _normal(path.name[: -len(suffix)]) == want:
                return path
    return None


def download_sdist(name: str, version: str, cache: Path = SDIST_CACHE) -> Path:
    """The sdist file, from the cache or from PyPI through pip."""
    found = find_cached(name, version, cache)
    if found:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vtforge-sdist-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-build-isolation",
            "-q",
            "-d",
            tmp,
            f"{name}=={version}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        files = sorted(Path(tmp).iterdir())
        if not files:  # metadata preparation may fail without build isolation: try with it
            cmd.remove("--no-build-isolation")
            done = subprocess.run(cmd, capture_output=True, text=True)
            files = sorted(Path(tmp).iterdir())
        if not files:
            raise SdistError(f"pip download {name}=={version} failed: {done.stderr.strip()[-800:]}")
        target = cache / files[0].name
        shutil.move(str(files[0]), target)
        return target


def _extract(sdist: Path, dest: Path) -> Path:
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as archive:
            archive.extractall(dest)
    else:
        with tarfile.open(sdist) as archive:
            archive.extractall(dest, filter="data")
    tops = [p for p in dest.iterdir()]
    return tops[0] if len(tops) == 1 and tops[0].is_dir() else dest


def _metadata(root: Path) -> tuple[str | None, str | None]:
    pkg_info = root / "PKG-INFO"
    if not pkg_info.exists():
        return None, None
    msg = email.parser.Parser().parsestr(pkg_info.read_text(encoding="utf-8", errors="replace"))
    license_ = msg.get("License-Expression") or msg.get("License")
    if not license_ or license_.strip().upper() in ("UNKNOWN", ""):
        classifiers = [c for c in msg.get_all("Classifier") or [] if c.startswith("License ::")]
        license_ = classifiers[0].split("::")[-1].strip() if classifiers else None
    if license_ and len(license_) > 200:  # some put the whole licence text here
        license_ = license_.splitlines()[0][:200]
    return license_, msg.get("Summary")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_repo(name: str, version: str, repos_root: Path, cache: Path = SDIST_CACHE) -> PackageRepo:
    """Download (cached) and turn into a git repository (once; later calls reuse it)."""
    sdist = download_sdist(name, version, cache)
    path = repos_root / f"{_normal(name)}-{version}"
    with tempfile.TemporaryDirectory(prefix="vtforge-unpack-") as tmp:
        root = _extract(sdist, Path(tmp))
        license_, summary = _metadata(root)
        if not (path.exists() and gitrepo.has_commit(path, PRISTINE_TAG)):
            shutil.rmtree(path, ignore_errors=True)
            staging = path.with_name(path.name + ".building")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(root, staging, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", ".git"))
            gitrepo.init_repo(staging)
            gitrepo.commit_all(staging, f"{name} {version}: the sdist as published on PyPI\n\n{sdist.name}")
            if (staging / "src").is_dir() and not (staging / "conftest.py").exists():
                (staging / "conftest.py").write_text(SRC_CONFTEST)
                gitrepo.commit_all(staging, "vtforge: tests import the package from src/")
            gitrepo.tag(staging, PRISTINE_TAG, "HEAD")
            staging.rename(path)
    pristine = gitrepo.git(path, "rev-parse", f"{PRISTINE_TAG}^{{commit}}").strip()
    return PackageRepo(
        name=name,
        version=version,
        path=path,
        pristine=pristine,
        sdist=sdist,
        sdist_sha256=sha256_of(sdist),
        license=license_,
        summary=summary,
    )
