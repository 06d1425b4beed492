"""The house rules of imports: one import name (``vtforge``), one direction (docs/ARCHITECTURE.md).

The contracts live in pyproject.toml (``[tool.importlinter]``); ``lint-imports`` checks them on the
whole package, so a back-edge (say ``vtforge.sandbox`` importing ``vtforge.trainers``) fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPINE = ("schemas", "sandbox", "pipelines", "warehouse", "trainers")


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _layer_members() -> set[str]:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    names: set[str] = set()
    for layer in layers:
        for part in layer.replace("|", ":").split(":"):
            names.add(part.strip())
    return names


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_part_of_the_package_has_a_layer() -> None:
    """A new subpackage must be placed in the layers, or it would escape the direction check."""
    package = REPO / "vtforge"
    parts = {
        f"vtforge.{p.stem}"
        for p in package.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")
    }
    missing = sorted(parts - _layer_members())
    assert not missing, f"add these to [tool.importlinter] layers in pyproject.toml: {missing}"


def test_spine_folders_are_the_vtforge_subpackages() -> None:
    """schemas/, sandbox/, ... stay at the top of the checkout and are imported as vtforge.<name>."""
    import vtforge

    for name in SPINE:
        link = REPO / "vtforge" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve(), link
        module = __import__(f"vtforge.{name}", fromlist=["_"])
        assert Path(module.__file__).resolve().parent == (REPO / name).resolve()
    assert Path(vtforge.__file__).resolve().parent == REPO / "vtforge"


@pytest.mark.parametrize("folder", ["tests", "bench", "scripts"])
def test_no_bare_spine_imports_outside_the_package(folder: str) -> None:
    """Tests, benches and scripts import what a user imports (the contracts cover vtforge itself)."""
    offenders = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names if n.split(".")[0] in SPINE
            ]
    assert not offenders, offenders


@pytest.mark.slow
def test_the_wheel_installs_one_import_name(tmp_path: Path) -> None:
    """Built from what git tracks (as a fresh clone has it): only ``vtforge`` lands in site-packages,
    with the spine folders inside it and their data files (Avro schemas, SQL models)."""
    import shutil
    import zipfile

    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    source = tmp_path / "src"
    for name in filter(None, tracked):
        origin, copy = REPO / name, source / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            copy.symlink_to(origin.readlink())
        elif origin.is_file():
            shutil.copy2(origin, copy)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("vtforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"vtforge"}
    for name in SPINE:
        assert f"vtforge/{name}/__init__.py" in names, name
    assert "vtforge/schemas/avro/envelope.avsc" in names
    assert sum(n.startswith("vtforge/warehouse/sql/") and n.endswith(".sql") for n in names) == len(
        list((REPO / "warehouse" / "sql").glob("*.sql"))
    )
    assert "vtforge/warehouse/columns.toml" in names  # the column comments
