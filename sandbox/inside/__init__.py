"""Files that run INSIDE the sandbox (stdlib only, any Python >= 3.8): mounted read-only there."""

from pathlib import Path

INSIDE_DIR = Path(__file__).resolve().parent
