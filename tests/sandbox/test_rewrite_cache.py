"""The zygote's rewrite cache: pytest's own rewritten code, keyed by content, never a run's word.

These tests run the cache's two sides in this process over a real socket pair (the server in a
thread, as the zygote's loop would serve it); the equivalence test in ``test_warm.py`` runs it
inside the sandbox over every demo task.
"""

from __future__ import annotations

import json
import marshal
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
from _pytest.assertion import rewrite

from vtforge.sandbox.inside import INSIDE_DIR

sys.path.insert(0, str(INSIDE_DIR))
import rewrite_cache  # the sandbox-side module (stdlib and pytest only)

TEST_SOURCE = "def test_add():\n    x = 2\n    assert x + 3 == 5, 'arithmetic'\n"


def pytest_code(path: Path) -> CodeType:
    """What pytest itself compiles for ``path`` (no pass hook)."""
    return rewrite._rewrite_test(path, None)[1]  # pyright: ignore[reportArgumentType]


class Zygote:
    """A ``rewrite_cache.Server`` answering one channel from a thread."""

    def __init__(self) -> None:
        self.server = rewrite_cache.Server()
        self.mine, self.theirs = self.server.open_channel()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import select

        while not self._stop and self.mine.fileno() in self.server.channels:
            ready, _, _ = select.select([self.mine], [], [], 0.05)
            if ready:
                self.server.serve(self.mine)

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.theirs.close()
        if self.mine.fileno() in self.server.channels:
            self.server.close_channel(self.mine)


@pytest.fixture
def zygote(monkeypatch: pytest.MonkeyPatch) -> Iterator[Zygote]:
    monkeypatch.setattr(rewrite, "_rewrite_test", rewrite._rewrite_test)  # put back afterwards
    running = Zygote()
    try:
        yield running
    finally:
        running.close()


def test_the_zygote_compiles_what_pytest_compiles(tmp_path: Path) -> None:
    path = tmp_path / "test_add.py"
    path.write_text(TEST_SOURCE)
    ours = marshal.loads(rewrite_cache.rewritten(str(path), path.read_bytes()))
    assert ours == pytest_code(path)  # code objects compare bytecode, constants, names, lines
    assert ours != compile(TEST_SOURCE, str(path), "exec")  # the asserts were rewritten
    test_add = next(c for c in ours.co_consts if isinstance(c, CodeType) and c.co_name == "test_add")
    assert any(name.startswith("@py_assert") for name in test_add.co_varnames)


def test_a_run_gets_the_code_once_rewritten_by_the_zygote(zygote: Zygote, tmp_path: Path) -> None:
    path = tmp_path / "test_add.py"
    path.write_text(TEST_SOURCE)
    expected = pytest_code(path)
    assert rewrite_cache.install(zygote.theirs)
    for _ in range(3):
        source_hash, code = rewrite._rewrite_test(path, None)  # pyright: ignore[reportArgumentType]
        assert code == expected
        assert source_hash == __import__("importlib.util").util.source_hash(path.read_bytes())
    assert len(zygote.server.cache) == 1  # rewritten once, then served from the cache
    assert zygote.server.channels[zygote.mine.fileno()][1] == 1

    path.write_text(TEST_SOURCE.replace("== 5", "!= 5"))  # same path, a candidate's other content
    code = rewrite._rewrite_test(path, None)[1]  # pyright: ignore[reportArgumentType]
    assert code == pytest_code(path) != expected
    assert len(zygote.server.cache) == 2


def test_a_reply_that_does_not_match_the_request_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another process's answer on the same channel (or a lying peer): pytest's own rewrite."""
    monkeypatch.setattr(rewrite, "_rewrite_test", rewrite._rewrite_test)
    path = tmp_path / "test_add.py"
    path.write_text(TEST_SOURCE)
    planted = marshal.dumps(compile("raise SystemExit('planted')", str(path), "exec"))
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    requests: list[dict[str, Any]] = []

    def liar() -> None:
        while True:
            message, fds, _, _ = socket.recv_fds(mine, 4096, 1)
            for fd in fds:
                os.close(fd)
            if not message:
                return
            request = json.loads(message)
            requests.append(request)
            fd = os.memfd_create("planted")
            os.write(fd, planted)
            reply = {"ok": True, "path": request["path"], "nonce": "another run's", "sha256": "0" * 64}
            socket.send_fds(mine, [json.dumps(reply).encode()], [fd])
            os.close(fd)

    thread = threading.Thread(target=liar, daemon=True)
    thread.start()
    try:
        assert rewrite_cache.install(theirs)
        code = rewrite._rewrite_test(path, None)[1]  # pyright: ignore[reportArgumentType]
        assert code == pytest_code(path)
        assert requests and requests[0]["path"] == str(path)
    finally:
        theirs.close()
        thread.join(5)
        mine.close()


def test_a_syntax_error_is_pytests_own(zygote: Zygote, tmp_path: Path) -> None:
    path = tmp_path / "test_broken.py"
    path.write_text("def test_x(:\n    pass\n")
    assert rewrite_cache.install(zygote.theirs)
    with pytest.raises(SyntaxError):
        rewrite._rewrite_test(path, None)  # pyright: ignore[reportArgumentType]
    assert not zygote.server.cache


def test_the_assertion_pass_hook_is_left_to_pytest(zygote: Zygote, tmp_path: Path) -> None:
    """The cache compiles without the pass hook; a run that configures it rewrites by itself."""
    path = tmp_path / "test_add.py"
    path.write_text(TEST_SOURCE)

    class HookConfig:
        def getini(self, name: str) -> bool:
            return name == "enable_assertion_pass_hook"

    assert rewrite_cache.install(zygote.theirs)
    rewrite._rewrite_test(path, HookConfig())  # pyright: ignore[reportArgumentType]
    assert not zygote.server.cache


def test_a_closed_channel_falls_back_and_is_dropped(zygote: Zygote, tmp_path: Path) -> None:
    path = tmp_path / "test_add.py"
    path.write_text(TEST_SOURCE)
    assert rewrite_cache.install(zygote.theirs)
    zygote.theirs.close()  # the run ended, or closed it
    code = rewrite._rewrite_test(path, None)[1]  # pyright: ignore[reportArgumentType]
    assert code == pytest_code(path)
    zygote._thread.join(5)
    assert zygote.mine.fileno() == -1 or zygote.mine.fileno() not in zygote.server.channels
