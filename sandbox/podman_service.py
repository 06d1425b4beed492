"""Start podman's Docker-compatible API service once, idempotently, and say where it listens.

``podman system service --time=0 unix://SOCK`` serves the Docker Engine API; the ``docker`` SDK
talks to it like to Docker Engine. The socket sits in a 0700 folder so sandboxed code (uid 65534)
cannot reach the engine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from vtforge.sandbox.api import SandboxUnavailable


def default_socket() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    if os.geteuid() == 0 or not base.is_dir():
        base = Path("/run") if os.geteuid() == 0 else Path.home() / ".cache"
    return base / "vtforge-podman" / "podman.sock"


def _answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(str(sock))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return b"OK" in client.recv(256)
    except OSError:
        return False


def ensure_podman_service(sock: Path | None = None, *, wait_s: float = 30.0) -> str:
    """The ``unix://`` URL of a running podman API service, starting one when none answers."""
    sock = Path(sock) if sock else default_socket()
    url = f"unix://{sock}"
    if _answers(sock):
        return url
    podman = shutil.which("podman")
    if podman is None:
        raise SandboxUnavailable("podman is not installed (scripts/setup.d/10-debian.sh installs it)")
    sock.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(sock.parent, 0o700)
    log = open(sock.parent / "service.log", "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(
        [podman, "system", "service", "--time=0", url],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
        # the service outlives the caller: a working directory that is later deleted (a removed
        # checkout) makes every container start fail with "write child: broken pipe"
        cwd="/",
    )
    log.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _answers(sock):
            return url
        time.sleep(0.1)
    raise SandboxUnavailable(
        f"podman system service did not answer on {sock} (see {sock.parent}/service.log)"
    )
