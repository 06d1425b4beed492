"""The docker backend's base image: Debian bookworm minbase with python3, pytest, git and patch.

Built locally because images cannot be pulled here: a debootstrap rootfs (cached as a tarball
under ~/.cache/vtforge/, so it is built once per machine) imported into the engine. The same
steps as ``scripts/setup.d/25-sandbox-image.sh``, callable from tests and ``vtforge eval``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from vtforge.sandbox.api import SandboxUnavailable

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "setup.d" / "25-sandbox-image.sh"


def image_exists(image: str) -> bool:
    done = subprocess.run(["podman", "image", "exists", image], capture_output=True)
    return done.returncode == 0


def ensure_image(image: str, *, timeout_s: float = 900.0) -> None:
    """Build (once) and import ``image`` into podman unless it is there already."""
    if image_exists(image):
        return
    if not SCRIPT.exists():
        raise SandboxUnavailable(f"image {image} is missing and {SCRIPT} is not there to build it")
    env = dict(os.environ, VTFORGE_SANDBOX_IMAGE=image)
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not image_exists(image):
        raise SandboxUnavailable(f"could not build image {image}: {(done.stdout + done.stderr)[-800:]}")
