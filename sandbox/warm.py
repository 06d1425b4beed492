"""Warm test workers for the local backend: one zygote per prepared repository, one fork per run.

A cold run starts bubblewrap, a new interpreter, pytest and its plugins, and imports the project,
for every candidate. A warm run asks the prepared repository's zygote (``inside/zygote.py``) to
fork a child that gets its own user/mount/net/pid namespaces, its own overlay workspace and /tmp,
the run's rlimits and (as root) the run's own pids and memory cgroup, which we join it to here,
from its pid as the socket's credentials tell it. A zygote is a fork of its interpreter's
template (``_Template``: one bubblewrap sandbox that imported pytest once), which mounts its own
repository in namespaces of its own; or, when no template can serve it, it starts on its own in
the same bubblewrap sandbox as a cold run.

What comes back is the same ``Outcome`` a cold run gives, built into the same ``RunResult``.
``None`` means "run it cold": the request needs a fresh interpreter (its own environment
variables, a command instead of pytest), the repository's zygote could not start or refused
(importing the repository started threads), or the zygote went away mid-run.

Zygotes stop after ``idle_s`` without a run, with ``close``, and with this process: bubblewrap's
``--die-with-parent`` (spawned from one long-lived thread, because the parent-death signal follows
the thread that forked) and each child's own parent-death signal.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vtforge.sandbox import cgroups, mounts
from vtforge.sandbox.api import Limits, PreparedRepo, RunRequest
from vtforge.sandbox.layout import IN_ENV, IN_ROOT, IN_TOOLS, base_env
from vtforge.sandbox.results import Outcome, read_tail
from vtforge.sandbox.rundir import RunDir, owner_tag, remove_tree

if TYPE_CHECKING:
    from vtforge.sandbox.local import LocalSandbox

IN_WARM = "/tmp/.warm"
IN_REPOS = "/tmp/.repos"  # the template's view of every prepared checkout
IN_POOL = "/tmp/.pool"  # the template's view of the pool's folders
ZYGOTE = f"{IN_TOOLS}/zygote.py"
START_TIMEOUT_S = 120.0  # importing pytest, plugins and the repository
HELLO_TIMEOUT_S = 60.0
T = TypeVar("T")


def eligible(request: RunRequest) -> bool:
    """A pytest run with the sandbox's own environment (a new interpreter would read the rest)."""
    return request.command is None and not request.env


class _Spawner:
    """Starts processes from one thread that lives as long as the pool (parent-death signals
    fire when the forking *thread* ends, so a worker thread of a pool must not fork zygotes)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="vtforge-warm-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, answer = job
            try:
                answer.put((True, fn()))
            except BaseException as exc:
                answer.put((False, exc))

    def call(self, fn: Callable[[], T]) -> T:
        answer: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._jobs.put((fn, answer))
        ok, value = answer.get()
        if not ok:
            raise value
        return value


@dataclass
class _Pending:
    hello: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    host_pid: int | None = None
    status: int | None = None


@dataclass
class _Spare:
    """A child forked ahead of its run and already in a run cgroup made with ``limits``."""

    id: str
    pid: int
    group: cgroups.RunCgroup
    limits: tuple[int, int]  # (memory_mb, pids) of the cgroup
    pending: _Pending  # its exit, should it die before a run takes it


class Zygote:
    """One prepared repository's warm worker and its socket."""

    def __init__(
        self,
        box: LocalSandbox,
        prepared: PreparedRepo,
        root: Path,
        spawner: _Spawner,
        template: _Template | None = None,
    ) -> None:
        self.box = box
        self.template = template
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # a zygote forked from the template, as the host sees it
        self._pidfd: int | None = None
        self.prepared = prepared
        self.root = root
        self.runs = root / "runs"
        self.last_used = time.monotonic()
        self.active = 0
        self.dead = False
        self.ready = threading.Event()
        self.info: dict[str, Any] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._group: cgroups.RunCgroup | None = None
        self._spare: _Spare | None = None
        self._making_spare = False
        self._spares = 0  # spares made so far (their ids)
        self.spares_used = 0
        self.runs.mkdir(parents=True, exist_ok=True)
        python = box._python(prepared.spec)
        # the interpreter's folders under /tmp, which a run binds into its own /tmp as well
        self.carry = [p for p in box._prefixes(python, prepared.env_dir) if p.startswith(IN_ROOT + "/")]
        self._dir = RunDir.create(root / "zygote")
        (self._dir.path / ".warm").mkdir()
        self._dir.chown()
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        host.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock = host
        try:
            if template is not None:
                with open(self.log, "wb") as log:
                    if not template.fork(prepared, self.runs, self._dir.path, inside, log):
                        self.dead = True
                        self.ready.set()
                        self.info = {"kind": "unsafe", "why": "the template is gone", "standalone": True}
            else:
                self.proc = spawner.call(lambda: self._spawn(inside))
        finally:
            inside.close()
        self._reader = threading.Thread(target=self._read, name="vtforge-warm-reader", daemon=True)
        self._reader.start()

    def _spawn(self, inside: socket.socket) -> subprocess.Popen[bytes]:
        box, prepared, limits = self.box, self.prepared, self.box.limits
        python = box._python(prepared.spec)
        argv = box.bwrap_argv(
            self._dir,
            prepared.source_dir,
            prepared.env_dir,
            python=python,
            network=limits.network,
            env_writable=False,
            inner=[python, ZYGOTE, str(inside.fileno())],
            base=prepared.source_dir,
            workspace_ro=True,
            extra_binds=[(self.runs, IN_WARM)],
        )
        self._group, proc = _start_worker(box, argv, self.log, inside)
        return proc

    # --- messages ------------------------------------------------------------------------------

    def _read(self) -> None:
        creds_size = socket.CMSG_SPACE(struct.calcsize("iII"))
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 16, creds_size)
            except OSError:
                break
            if not data:
                break
            try:
                message = json.loads(data)
            except ValueError:
                continue
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[: struct.calcsize("iII")])[0]
            kind = message.get("kind")
            if kind == "hello" and "id" not in message and self.template is not None and self.pid is None:
                why = self._adopt(pid)  # a forked zygote, before it imports the repository
                if why is None:
                    with self._lock:
                        self.sock.send(b"go")
                else:
                    self.info = {"kind": "unsafe", "why": why}
                    self.ready.set()
                continue
            if kind in ("ready", "unsafe"):
                if not self.ready.is_set():
                    self.info = message
                self.ready.set()
                continue
            with self._lock:
                pending = self._pending.get(str(message.get("id")))
            if pending is None:
                continue
            if kind == "hello":
                pending.host_pid = pid
                pending.hello.set()
            elif kind == "exit":
                pending.status = int(message["status"])
                pending.done.set()
            elif kind == "refused":  # no spare to take the run (run it cold), or one is there already
                pending.hello.set()
                pending.done.set()
        self.dead = True
        self.ready.set()
        with self._lock:
            for pending in self._pending.values():
                pending.hello.set()
                pending.done.set()

    def _adopt(self, pid: int | None) -> str | None:
        """A zygote forked from the template, which waits for our go before it imports its
        repository: held by a pidfd (it is not our child) and moved into a cgroup of its own, as a
        standalone zygote starts in one, so that what it allocates is never the template's. None
        when done, else why not."""
        if pid is None:
            return "the zygote's pid is unknown"
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError as exc:
            return f"the zygote is gone: {exc}"
        self.pid = pid
        if self.box.use_cgroups:
            limits = self.box.limits
            try:
                self._group = cgroups.open_run("warm", memory_mb=limits.memory_mb, pids=limits.pids)
                if self._group is not None:
                    self._group.add(pid)
            except OSError as exc:
                return f"cannot move the zygote into its cgroup: {exc}"
        return None

    @property
    def log(self) -> Path:
        """What the zygote printed (start-up errors, the test files its rewrite cache rewrote)."""
        return self._dir.host / "zygote.log"

    def wait_ready(self, timeout_s: float) -> str | None:
        """None when ready, else why not."""
        return _why_not_ready(self, timeout_s, "the warm worker")

    # --- one run -------------------------------------------------------------------------------

    def execute(self, run: RunDir, request: RunRequest, limits: Limits) -> Outcome | None:
        """Run ``run``'s spec in a fork; None when the zygote could not (run it cold instead)."""
        run_id = run.path.name
        pending = _Pending()
        with self._lock:
            self._pending[run_id] = pending
            self.active += 1
        group = None
        spare = self._take_spare(limits) if self.box.use_cgroups else None
        if spare is not None:
            group = spare.group
        elif self.box.use_cgroups:
            group = cgroups.open_run("run", memory_mb=limits.memory_mb, pids=limits.pids)
        go_r, go_w = os.pipe()
        stdout_path, stderr_path = run.host / "stdout.txt", run.host / "stderr.txt"
        timed_out = threading.Event()
        try:
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                message = {
                    "kind": "run",
                    "id": run_id,
                    "carry": self.carry,
                    "env": base_env(request.env),
                    "limits": _rlimits(limits, nproc=group is None),
                    "spare": spare is not None,
                }
                try:
                    with self._lock:
                        socket.send_fds(
                            self.sock, [json.dumps(message).encode()], [out.fileno(), err.fileno(), go_r]
                        )
                except OSError:
                    return None
            os.close(go_r)
            go_r = -1
            if self.box.use_cgroups:
                self._want_spare(limits)  # the next run's, made while this one executes
            if spare is not None:
                pending.host_pid = spare.pid  # in its cgroup already
            elif not pending.hello.wait(HELLO_TIMEOUT_S) or pending.host_pid is None:
                return None
            elif group is not None:
                group.add(pending.host_pid)
            os.write(go_w, b"g")
            started = time.monotonic()

            def on_timeout() -> None:
                timed_out.set()
                if group is not None:
                    group.kill_all()
                with contextlib.suppress(OSError):
                    os.kill(pending.host_pid or -1, signal.SIGKILL)

            timer = threading.Timer(limits.timeout_s, on_timeout)
            timer.daemon = True
            timer.start()
            try:
                pending.done.wait()
            finally:
                timer.cancel()
            if pending.status is None:
                return None  # the zygote went away: not the candidate's doing
            duration = time.monotonic() - started
            oom, peak, cpu = group.finish() if group is not None else (False, None, None)
            return Outcome(
                exit_code=os.waitstatus_to_exitcode(pending.status),
                timed_out=timed_out.is_set(),
                oom=oom,
                stdout=read_tail(stdout_path),
                stderr=read_tail(stderr_path),
                duration_s=duration,
                cpu_s=cpu,
                max_rss_mb=peak,
            )
        finally:
            for fd in (go_r, go_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            if group is not None:
                group.remove()
            with self._lock:
                self._pending.pop(run_id, None)
                self.active -= 1
                self.last_used = time.monotonic()

    def _take_spare(self, limits: Limits) -> _Spare | None:
        """The ready spare, when its cgroup has this run's limits and it is still alive."""
        with self._lock:
            spare, self._spare = self._spare, None
            if spare is not None:
                self._pending.pop(spare.id, None)
        if spare is None:
            return None
        if spare.pending.done.is_set() or spare.limits != (limits.memory_mb, limits.pids):
            spare.group.remove()  # dead, or made for other limits
            return None
        self.spares_used += 1
        return spare

    def _want_spare(self, limits: Limits) -> None:
        """Have a spare made (in a thread: moving it into its cgroup takes a while) unless one is."""
        with self._lock:
            if self._spare is not None or self._making_spare or self.dead:
                return
            self._making_spare = True
            self._spares += 1
            spare_id = f"spare-{self._spares}"
            pending = self._pending[spare_id] = _Pending()
        threading.Thread(
            target=self._make_spare, args=(spare_id, pending, limits), name="vtforge-warm-spare", daemon=True
        ).start()

    def _make_spare(self, spare_id: str, pending: _Pending, limits: Limits) -> None:
        group = None
        try:
            with self._lock:
                socket.send_fds(self.sock, [json.dumps({"kind": "spare", "id": spare_id}).encode()], [])
            if not pending.hello.wait(HELLO_TIMEOUT_S) or pending.host_pid is None:
                return
            group = cgroups.open_run("run", memory_mb=limits.memory_mb, pids=limits.pids)
            if group is None:
                return
            group.add(pending.host_pid)
            with self._lock:
                if not self.dead and self._spare is None:
                    key = (limits.memory_mb, limits.pids)
                    self._spare, group = _Spare(spare_id, pending.host_pid, group, key, pending), None
        except OSError:
            return
        finally:
            if group is not None:
                group.remove()  # not kept: its process (if any) dies with the zygote
            with self._lock:
                self._making_spare = False
                if self._spare is None or self._spare.id != spare_id:
                    self._pending.pop(spare_id, None)

    def close(self) -> None:
        """End the zygote (EOF on its socket ends it and its children) and remove its folders."""
        _hang_up(self.sock, self.proc)
        if self._pidfd is not None:
            _await_exit(self._pidfd, 5.0)  # the template reaps it
            os.close(self._pidfd)
            self._pidfd = None
        if self._group is not None:
            self._group.remove()
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.group.remove()
        self._dir.remove()
        remove_tree(self.root)


def _hang_up(sock: socket.socket, proc: subprocess.Popen[bytes] | None) -> None:
    """Close a worker's socket (EOF ends it) and wait for its sandbox, killed after 5 s."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    if proc is None:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _why_not_ready(worker: Zygote | _Template, timeout_s: float, name: str) -> str | None:
    """Wait for ``worker``'s first message: None when it said ready, else why not (with its log)."""
    if not worker.ready.wait(timeout_s):
        return f"{name} did not start within {timeout_s:g}s"
    if worker.dead or worker.info.get("kind") != "ready":
        why = worker.info.get("why") or f"{name} exited while starting"
        return f"{why}: {read_tail(worker.log, 1500)}"
    return None


def _start_worker(
    box: LocalSandbox, argv: list[str], log_path: Path, inside: socket.socket
) -> tuple[cgroups.RunCgroup | None, subprocess.Popen[bytes]]:
    """Start a long-lived worker's bubblewrap ``argv`` in a "warm" cgroup of its own (as root),
    under the box's rlimits (no CPU-time limit: each run sets its own), its output into
    ``log_path``, ``inside`` its socket to us."""
    limits = box.limits
    group = None
    if box.use_cgroups:
        group = cgroups.open_run("warm", memory_mb=limits.memory_mb, pids=limits.pids)
    prefix = group.exec_prefix() if group is not None else []
    rlimits = box._prlimit(limits, nproc=group is None, cpu=False)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*prefix, *rlimits, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=base_env({"PYTHONPATH": IN_TOOLS}),
            pass_fds=[inside.fileno()],
            start_new_session=True,
        )
    return group, proc


def _await_exit(pidfd: int, timeout_s: float) -> None:
    """Wait for a process that is not our child to end, SIGKILL after ``timeout_s`` (through its
    pidfd: a pid reused meanwhile is never signalled)."""
    if not select.select([pidfd], [], [], timeout_s)[0]:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        select.select([pidfd], [], [], timeout_s)


class _Template:
    """One interpreter per task interpreter that imported pytest and its plugins once, and forks
    each prepared repository's zygote (``zygote.py --template``). Its sandbox is a zygote's, with
    every prepared checkout (read-only) and the pool's folders bound in; a forked zygote binds its
    own repository and runs' folder at the usual places and hides the rest, in a user and mount
    namespace of its own. A zygote started this way skips the interpreter's start and pytest's
    imports: about 0.3 s of the 0.4 s a standalone zygote takes."""

    def __init__(self, box: LocalSandbox, pool_root: Path, python: str, spawner: _Spawner) -> None:
        self.box = box
        self.python = python
        self.pool_root = pool_root
        self.repos = box.work_dir / "repos"
        self.last_used = time.monotonic()
        self.starting = 0  # zygotes being forked (the reaper leaves the template alone meanwhile)
        self.ready = threading.Event()
        self.info: dict[str, Any] = {}
        self.dead = False
        self._lock = threading.Lock()
        self._group: cgroups.RunCgroup | None = None
        self._dir = RunDir.create(pool_root / "template")
        for sub in (".warm", ".repos", ".pool"):
            (self._dir.path / sub).mkdir()
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = host
        try:
            self.proc = spawner.call(lambda: self._spawn(inside))
        finally:
            inside.close()
        threading.Thread(target=self._read, name="vtforge-warm-template", daemon=True).start()

    @property
    def log(self) -> Path:
        return self._dir.host / "template.log"

    def _spawn(self, inside: socket.socket) -> subprocess.Popen[bytes]:
        box, limits = self.box, self.box.limits
        argv = box.bwrap_argv(
            self._dir,
            self._dir.path / "workspace",
            self._dir.path / "env",
            python=self.python,
            network=limits.network,
            env_writable=False,
            inner=[self.python, ZYGOTE, "--template", str(inside.fileno())],
            workspace_ro=True,
            extra_binds=[(self.pool_root, IN_POOL)],
            extra_ro_binds=[(self.repos, IN_REPOS)],
        )
        self._group, proc = _start_worker(box, argv, self.log, inside)
        return proc

    def _read(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
            if data:
                self.info = json.loads(data)
                self.ready.set()
                while self.sock.recv(1 << 16):
                    pass
        except (OSError, ValueError):
            pass
        self.dead = True
        self.ready.set()

    def wait_ready(self, timeout_s: float) -> str | None:
        """None when ready, else why not."""
        return _why_not_ready(self, timeout_s, "the warm template")

    def fork(self, prepared: PreparedRepo, runs: Path, folder: Path, sock: socket.socket, log: Any) -> bool:
        """Have the template fork ``prepared``'s zygote, talking over ``sock``, with ``runs`` (its
        runs' folders) and ``folder`` (its own home and tmp); False when the template is gone."""
        try:
            message = {
                "kind": "zygote",
                "source": str(prepared.source_dir.relative_to(self.repos)),
                "env": str(prepared.env_dir.relative_to(self.repos)),
                "runs": str(runs.relative_to(self.pool_root)),
                "folder": str(folder.relative_to(self.pool_root)),
            }
        except ValueError:
            return False
        self.last_used = time.monotonic()
        try:
            with self._lock:
                socket.send_fds(self.sock, [json.dumps(message).encode()], [sock.fileno(), log.fileno()])
        except OSError:
            return False
        return True

    def close(self) -> None:
        """EOF ends the template and every zygote it forked."""
        _hang_up(self.sock, self.proc)
        if self._group is not None:
            self._group.remove()
        self._dir.remove()


def _rlimits(limits: Limits, *, nproc: bool) -> dict[str, int | None]:
    """The rlimits a cold run gets from ``prlimit``, set by the run's own process."""
    return {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": math.ceil(limits.timeout_s) + 1,
        "RLIMIT_FSIZE": limits.file_size_mb << 20,
        "RLIMIT_CORE": 0,
        "RLIMIT_NPROC": limits.pids if nproc else None,
    }


class WarmPool:
    """The zygotes of one ``LocalSandbox``, by prepared repository; idle ones are stopped."""

    def __init__(self, box: LocalSandbox, *, idle_s: float, templates: bool = True) -> None:
        self.box = box
        self.idle_s = idle_s
        self.templates = templates  # zygotes forked from a template interpreter (else each starts one)
        # swept when this process is gone (the name starts with its owner tag)
        self.root = box.work_dir / "warm" / f"{owner_tag()}-{uuid.uuid4().hex[:8]}"
        self.root.mkdir(parents=True)
        if os.geteuid() == 0:  # the runs' quota mounts, made later on the host, must reach every
            mounts.bind_shared(self.root)  # zygote: its sandbox binds a folder under this root
        self._zygotes: dict[str, Zygote] = {}
        self._refused: dict[str, str] = {}  # prepared key -> why its zygote cannot be used
        self._templates: dict[str, _Template] = {}  # by task interpreter
        self._templates_refused: dict[str, str] = {}
        self._template_lock = threading.Lock()
        self._lock = threading.Lock()
        self._starting: dict[str, threading.Lock] = {}
        self._spawner = _Spawner()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="vtforge-warm-reaper", daemon=True)
        self._reaper.start()

    def refused(self, key: str) -> str | None:
        return self._refused.get(key)

    def zygotes(self) -> dict[str, Zygote]:
        with self._lock:
            return dict(self._zygotes)

    def zygote_for(self, prepared: PreparedRepo) -> Zygote | None:
        """The repository's running zygote (started if need be); None when it cannot be used."""
        key = prepared.key
        with self._lock:
            if key in self._refused or self._closed.is_set():
                return None
            start_lock = self._starting.setdefault(key, threading.Lock())
        with start_lock:
            with self._lock:
                zygote = self._zygotes.get(key)
            if zygote is not None and not zygote.dead:
                zygote.last_used = time.monotonic()
                return zygote
            if zygote is not None:
                self._drop(key)
            zygote, why = self._start(prepared)
            if zygote is None:
                with self._lock:
                    self._refused[key] = why or "the warm worker did not start"
                return None
            with self._lock:
                self._zygotes[key] = zygote
            return zygote

    def _start(self, prepared: PreparedRepo) -> tuple[Zygote | None, str | None]:
        """A zygote forked from the interpreter's template, else one started on its own (the
        repository shadows a module the template imported, or no template can run)."""
        root = self.root / prepared.key
        template = self._template_for(prepared)  # counts this start: the reaper leaves it be
        if template is not None:
            try:
                zygote = Zygote(self.box, prepared, root, self._spawner, template=template)
                why = zygote.wait_ready(START_TIMEOUT_S)
            finally:
                with self._template_lock:
                    template.last_used = time.monotonic()  # idle from now, not from the fork
                    template.starting -= 1
            if why is None:
                return zygote, None
            zygote.close()
            if zygote.info.get("kind") == "unsafe" and not zygote.info.get("standalone"):
                return None, why
        zygote = Zygote(self.box, prepared, root, self._spawner)
        why = zygote.wait_ready(START_TIMEOUT_S)
        if why is not None:
            zygote.close()
            return None, why
        return zygote, None

    def _template_for(self, prepared: PreparedRepo) -> _Template | None:
        """The running template of the repository's interpreter (started if need be); None for an
        interpreter inside the task's environment (each task has its own) or when it cannot run."""
        python = self.box._python(prepared.spec)
        if not self.templates or not os.path.isabs(python) or python.startswith(IN_ENV + "/"):
            return None  # a bare name is looked up on PATH, which has the task's $VTFORGE_ENV/bin
        with self._template_lock:
            template = self._templates.get(python)
            if template is not None and not template.dead:
                template.starting += 1
                return template
            if template is not None:
                del self._templates[python]
                template.close()
            if python in self._templates_refused or self._closed.is_set():
                return None
            template = _Template(self.box, self.root, python, self._spawner)
            why = template.wait_ready(START_TIMEOUT_S)
            if why is not None:
                template.close()
                self._templates_refused[python] = why
                return None
            self._templates[python] = template
            template.starting += 1
            return template

    def run_dir(self, prepared: PreparedRepo, disk_mb: int | None) -> RunDir:
        return RunDir.create(self.root / prepared.key, disk_mb=disk_mb)

    def _drop(self, key: str) -> None:
        with self._lock:
            zygote = self._zygotes.pop(key, None)
        if zygote is not None:
            zygote.close()

    def drop(self, key: str) -> None:
        """Stop the zygote of a prepared repository (it restarts on the next run)."""
        self._drop(key)
        with self._lock:
            self._refused.pop(key, None)

    def _reap(self) -> None:
        while not self._closed.wait(min(1.0, max(0.05, self.idle_s / 4))):
            now = time.monotonic()
            for key, zygote in self.zygotes().items():
                if zygote.dead or (zygote.active == 0 and now - zygote.last_used >= self.idle_s):
                    self._drop(key)
            with self._template_lock:
                for python, template in list(self._templates.items()):
                    forked = any(z.template is template for z in self.zygotes().values())
                    idle = not forked and template.starting == 0 and now - template.last_used >= self.idle_s
                    if template.dead or idle:
                        del self._templates[python]
                        template.close()

    def close(self) -> None:
        self._closed.set()
        for key in list(self.zygotes()):
            self._drop(key)
        with self._template_lock:
            templates, self._templates = list(self._templates.values()), {}
        for template in templates:
            template.close()
        remove_tree(self.root)
