"""pytest's assertion rewriting, done once per test file by the zygote instead of once per run.

Rewriting a test module (parse, rewrite every ``assert``, compile) is most of what a warm run's
pytest session costs: 0.2 s of a 0.35 s session on a 38-test suite. The candidates of one task
all run the same test files (the prepared checkout plus the task's test patch), so the rewritten
code is the same for every one of them. A shared pyc folder would let one candidate plant
bytecode for the next; here the trusted side, the zygote, which never runs candidate code, does
the rewriting from the bytes a run sends it:

- a run's pytest process sends ``{"path", "nonce"}`` and a memfd holding the file's source;
- the zygote answers ``{"ok", "path", "sha256", "nonce"}`` and a memfd holding the marshalled
  code of ``rewrite_asserts`` over exactly those bytes, cached by ``(path, sha256)``;
- the run checks the path, hash and nonce against its request and uses that code; anything else
  (a refusal, a closed channel, a pass hook configured, another pytest) falls back to pytest's
  own rewriting. A candidate can only ever add correct entries to the cache.

Standard library and the sandbox's own pytest only, like the rest of ``inside/``.
"""

import ast
import hashlib
import inspect
import json
import marshal
import os
import socket
import stat
from collections import OrderedDict

MAX_SOURCE = 8 << 20  # bytes of one test file
MAX_CACHED = 256 << 20  # bytes of marshalled code the zygote keeps
MAX_MISSES = 256  # rewrites one run may ask for
REPLY_TIMEOUT_S = 60.0


def _read_all(fd, limit):
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        return None
    chunks, offset = [], 0
    while offset < info.st_size:
        chunk = os.pread(fd, info.st_size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _memfd(data, name):
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return fd


def rewritten(path, source):
    """What pytest's ``_rewrite_test`` compiles for ``source`` at ``path`` (no pass hook)."""
    from _pytest.assertion.rewrite import rewrite_asserts

    tree = ast.parse(source, filename=path)
    rewrite_asserts(tree, source, path, None)
    return marshal.dumps(compile(tree, path, "exec", dont_inherit=True))


# --- the zygote's side ------------------------------------------------------------------------


class Server:
    """The zygote's cache and the channels of its running children."""

    def __init__(self):
        self.cache = OrderedDict()  # (path, sha256) -> marshalled code
        self.cached_bytes = 0
        self.channels = {}  # fileno -> [socket, misses]

    def open_channel(self):
        """A new channel: the zygote keeps one end, the run's child gets the other."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        mine.setblocking(False)
        self.channels[mine.fileno()] = [mine, 0]
        return mine, theirs

    def close_channel(self, mine):
        self.channels.pop(mine.fileno(), None)
        mine.close()

    def sockets(self):
        return [entry[0] for entry in self.channels.values()]

    def serve(self, mine):
        """Answer one request on a readable channel; close it on EOF or misuse."""
        entry = self.channels.get(mine.fileno())
        if entry is None:
            return
        try:
            message, fds, _, _ = socket.recv_fds(mine, 4096, 1)
        except BlockingIOError:
            return
        except OSError:
            self.close_channel(mine)
            return
        try:
            if not message:
                self.close_channel(mine)
                return
            reply, code = self._answer(message, fds, entry)
        finally:
            for fd in fds:
                os.close(fd)
        out = _memfd(code, "vtforge-rewritten") if code is not None else None
        try:
            socket.send_fds(
                mine, [json.dumps(reply).encode()], [out] if out is not None else [], socket.MSG_DONTWAIT
            )
        except OSError:  # a run that does not read its answers loses its channel
            self.close_channel(mine)
        finally:
            if out is not None:
                os.close(out)

    def _answer(self, message, fds, entry):
        try:
            request = json.loads(message)
            path, nonce = str(request["path"]), str(request["nonce"])
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "why": "bad request"}, None
        reply = {"ok": False, "path": path, "nonce": nonce}
        source = _read_all(fds[0], MAX_SOURCE) if len(fds) == 1 else None
        if source is None:
            reply["why"] = "no source"
            return reply, None
        digest = hashlib.sha256(source).hexdigest()
        reply["sha256"] = digest
        key = (path, digest)
        code = self.cache.get(key)
        if code is None:
            if entry[1] >= MAX_MISSES:
                reply["why"] = "too many rewrites"
                return reply, None
            entry[1] += 1
            try:
                code = rewritten(path, source)
            except Exception as exc:  # a syntax error: pytest reports it from its own rewrite
                reply["why"] = f"{type(exc).__name__}"
                return reply, None
            self.cache[key] = code
            print(f"rewrite cache: rewrote {path} ({len(source)} bytes)", flush=True)
            self.cached_bytes += len(code)
            while self.cached_bytes > MAX_CACHED and len(self.cache) > 1:
                _, dropped = self.cache.popitem(last=False)
                self.cached_bytes -= len(dropped)
        else:
            self.cache.move_to_end(key)
        reply["ok"] = True
        return reply, code


# --- the run's side ---------------------------------------------------------------------------


def _fetch(channel, path, source):
    """The zygote's code for ``source`` at ``path``, or None."""
    nonce = os.urandom(8).hex()
    fd = _memfd(source, "vtforge-source")
    try:
        socket.send_fds(channel, [json.dumps({"path": path, "nonce": nonce}).encode()], [fd])
    finally:
        os.close(fd)
    message, fds, _, _ = socket.recv_fds(channel, 4096, 1)
    try:
        reply = json.loads(message) if message else {}
        expected = hashlib.sha256(source).hexdigest()
        if not (
            reply.get("ok")
            and reply.get("path") == path
            and reply.get("nonce") == nonce
            and reply.get("sha256") == expected
            and len(fds) == 1
        ):
            return None
        data = _read_all(fds[0], MAX_CACHED)
        return None if data is None else marshal.loads(data)
    finally:
        for received in fds:
            os.close(received)


def install(channel):
    """Make this pytest process ask the zygote for rewritten test modules (when it can)."""
    try:
        import importlib.util

        from _pytest.assertion import rewrite
    except ImportError:
        return False
    original = getattr(rewrite, "_rewrite_test", None)
    if original is None or not hasattr(rewrite, "rewrite_asserts"):
        return False
    signature = inspect.signature(original)
    if list(signature.parameters) != ["fn", "config"] or "bytes" not in str(signature.return_annotation):
        return False  # another pytest than the one this was written against: its own rewriting
    channel.settimeout(REPLY_TIMEOUT_S)
    state = {"alive": True}

    def cached_rewrite_test(fn, config):
        if not state["alive"] or (config is not None and config.getini("enable_assertion_pass_hook")):
            return original(fn, config)
        source = fn.read_bytes()
        try:
            code = _fetch(channel, str(fn), source)
        except (OSError, ValueError, EOFError, TypeError):
            state["alive"] = False
            code = None
        if code is None:
            return original(fn, config)
        return importlib.util.source_hash(source), code

    rewrite._rewrite_test = cached_rewrite_test
    return True
