"""A warm test worker: imports pytest, its plugins and the repository once, then forks per run.

Started by ``vtforge.sandbox.warm`` as the sandbox user, in one of two ways (the last argument is
the number of a SOCK_SEQPACKET socket to the host):

- ``zygote.py FD``, a **standalone** zygote, inside the same bubblewrap sandbox as a cold run (the
  prepared checkout read-only at /tmp/workspace, the task environment at /tmp/env, our tools at
  /tmp/.vtforge, the runs' folders at /tmp/.warm);
- ``zygote.py --template FD``, the **template** of one interpreter: it imports pytest and its
  plugins, then forks each repository's zygote, which takes the same places in a user and mount
  namespace of its own (``enter_repository``) before it imports its repository.

Standard library only, like the runner.

Per run the host sends ``{"kind": "run", "id", "limits", "nproc"}`` with three descriptors
(stdout, stderr, the read end of a "go" pipe). The zygote forks a child, which

1. says ``hello`` on the socket (the host reads its pid from the socket's credentials and moves it
   into the run's cgroup), then waits for the go byte;
2. unshares a user, mount, network, ipc, uts and pid namespace of its own (as an unprivileged
   process may: every mount it inherits stays locked, so nothing hidden can be uncovered);
3. mounts its run's folder at /tmp, as a cold run has it: its workspace (an overlay, the prepared
   checkout below, the run's layer above), out/home/tmp, and our tools, the environment and the
   prepared checkout bound in read-only; nothing of the zygote's /tmp stays visible. Brings
   loopback up;
4. drops every capability, forks the pid namespace's init, which forks the payload: rlimits, a
   new session, the run's stdout/stderr, then ``runner.main`` with pytest sessions forked from this
   already-warm process instead of started as new interpreters.

Each child also gets a channel back to the zygote, which rewrites the asserts of test modules
for it once per file content (``rewrite_cache``): the zygote never runs candidate code, so no
candidate can plant code for the next. What the zygote loaded is frozen out of the garbage
collector's reach, so a child's collections (pytest makes several per session) skip it.

Repository modules the zygote imported are dropped (and so imported again from the candidate's
workspace) when a patch touches anything but test files, or touches a file that was imported.
When the child ends the zygote reports ``{"kind": "exit", "id", "status"}`` (a wait status).
EOF on the socket ends the zygote and its children; every child dies with its parent.
"""

import contextlib
import ctypes
import errno
import fcntl
import gc
import importlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading

import rewrite_cache

HERE = os.path.dirname(os.path.abspath(__file__))
WORKSPACE = "/tmp/workspace"
BASE = "/tmp/base"
WARM = "/tmp/.warm"
OUT = "/tmp/out"

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(os.uname().machine, 126)
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
SKIP_DIRS = {"tests", "test", "testing", "docs", "doc", "build", "dist", "examples", "benchmarks", "bench"}
SKIP_MODULES = {"setup", "conftest", "noxfile", "fabfile", "tasks", "manage", "conf"}
_DIFF_NAMES = re.compile(r"^(?:diff --git a/(\S+) b/(\S+)|--- (?:a/)?(\S+)|\+\+\+ (?:b/)?(\S+))")

_libc = ctypes.CDLL(None, use_errno=True)
PRELOADED = {}  # module name -> file, for repository modules imported by the zygote


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source, target, fstype, flags=0, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _prctl(option, arg):
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl {option}")


def drop_capabilities():
    """No capability left in any set, bounding set emptied, no new privileges ever."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    header = struct.pack("II", 0x20080522, 0)
    data = ctypes.create_string_buffer(24)  # two zeroed __user_cap_data_struct
    hdr = ctypes.create_string_buffer(header, len(header))
    _check(_libc.syscall(SYS_CAPSET, hdr, data), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


# --- preloading -------------------------------------------------------------------------------


def preload_pytest():
    """pytest, its built-in plugins, our report plugin, every installed pytest11 plugin and the
    packages those plugins come with (hypothesis' plugin imports hypothesis at every session's end)."""
    import pytest  # noqa: F401
    from _pytest import config

    for name in config.default_plugins:
        with contextlib.suppress(ImportError):
            importlib.import_module("_pytest." + name)
    from importlib import metadata

    import session_template  # noqa: F401
    import vtforge_report  # noqa: F401

    plugins = list(metadata.entry_points().select(group="pytest11"))
    for entry in plugins:
        with contextlib.suppress(Exception):  # a broken plugin fails the same way in the run
            entry.load()
    tops = set()
    for entry in plugins:
        if entry.dist is not None:
            tops.update(top_level_names(entry.dist))
    for top in sorted(tops):
        if top.isidentifier() and not top.startswith("_"):
            with contextlib.suppress(Exception):
                importlib.import_module(top)


def top_level_names(dist):
    """The importable names a distribution installs: its top_level.txt, else its RECORD's first
    path parts (reading only the plugins' own metadata, not every installed distribution's)."""
    declared = dist.read_text("top_level.txt")
    if declared:
        return set(declared.split())
    names = set()
    for path in dist.files or ():
        parts = path.parts
        if not parts or parts[0].endswith((".dist-info", ".data", ".egg-info")) or parts[0] == "..":
            continue
        if len(parts) > 1:
            names.add(parts[0])
        elif parts[0].endswith(".py"):
            names.add(parts[0][:-3])
    return names


def _candidates(root):
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isdir(path) and name.isidentifier() and name not in SKIP_DIRS:
            if os.path.isfile(os.path.join(path, "__init__.py")):
                yield name
        elif name.endswith(".py") and name[:-3].isidentifier():
            stem = name[:-3]
            if not (stem.startswith("test_") or stem.endswith("_test") or stem in SKIP_MODULES):
                yield stem


def workspace_modules():
    """Names of the modules in sys.modules that were loaded from the workspace."""
    prefix = WORKSPACE + "/"
    found = []
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        paths = list(getattr(module, "__path__", None) or [])
        if origin.startswith(prefix) or any(str(p).startswith(prefix) for p in paths):
            found.append(name)
    return found


def preload_repository():
    """Import the repository's top-level packages and modules; all or nothing."""
    before = set(sys.modules)
    try:
        for name in _candidates(WORKSPACE):
            importlib.import_module(name)
    except BaseException:
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        evict_workspace_modules()
        return
    for name in workspace_modules():
        PRELOADED[name] = getattr(sys.modules[name], "__file__", None) or ""


def evict_workspace_modules():
    import importlib.util
    import linecache

    for name in workspace_modules():
        sys.modules.pop(name, None)
    for path in list(sys.path_importer_cache):
        if str(path).startswith(WORKSPACE):
            sys.path_importer_cache.pop(path, None)
    importlib.invalidate_caches()
    linecache.clearcache()


# --- invalidation -----------------------------------------------------------------------------


def _is_test_file(path):
    parts = path.split("/")
    base = parts[-1]
    if base == "conftest.py" or (
        base.endswith(".py") and (base.startswith("test_") or base[:-3].endswith("_test"))
    ):
        return True
    return any(p in ("tests", "test", "testing") for p in parts[:-1])


def touched_paths(spec):
    paths = set()
    for patch in spec.get("patches", []):
        with open(patch, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = _DIFF_NAMES.match(line)
                if match:
                    paths.update(os.path.normpath(n) for n in match.groups() if n and n != "/dev/null")
    for reset in (spec.get("reset_before") or {}).values():
        paths.update(os.path.normpath(p) for p in reset)
    return paths


def must_reimport(spec):
    """Whether the preloaded repository modules may differ from the candidate's files."""
    if not PRELOADED:
        return False
    imported = {os.path.relpath(f, WORKSPACE) for f in PRELOADED.values() if f}
    return any(p in imported or not _is_test_file(p) for p in touched_paths(spec))


# --- one run ----------------------------------------------------------------------------------


def forked_session(spec, channel):
    """The runner's pytest session: a fork of this warm process instead of a new interpreter,
    which asks the zygote over ``channel`` for rewritten test modules (``rewrite_cache``).

    The run's first session stays behind once collected, and the run's later sessions (reruns of
    its failures) are forked from it (``session_template``)."""
    state = {"evicted": False, "template": None}

    def session(cmd, env):
        import session_template  # imports pytest, which the zygote preloaded

        if not state["evicted"]:
            state["evicted"] = True
            if must_reimport(spec):
                evict_workspace_modules()
            importlib.invalidate_caches()
        template = state["template"]
        if template is not None:
            status = template.session(cmd)
            if status is not None:
                return os.waitstatus_to_exitcode(status)
            template.close()
            state["template"] = None
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(requests_w)
                os.close(answers_r)
                os.environ.clear()
                os.environ.update(env)
                import pytest

                rewrite_cache.install(channel)
                sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *cmd[3:]]
                plugins = [session_template.Template(requests_r, answers_w)]
                code = int(pytest.main(list(cmd[3:]), plugins=plugins))
                _finish_interpreter()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                _flush()
                os._exit(code)
        os.close(requests_r)
        os.close(answers_w)
        template = session_template.Client(pid, requests_w, answers_r)
        status = template.answer()
        if status is None:  # it ran as a plain session (its collection failed): no template
            status = template.close()
        else:
            state["template"] = template
        return os.waitstatus_to_exitcode(status)

    return session


def _finish_interpreter():
    """What interpreter shutdown would do: wait for non-daemon threads, run atexit handlers."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    import atexit

    atexit._run_exitfuncs()


def _flush():
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _setrlimits(limits):
    import resource

    for name, value in limits.items():
        if value is not None:
            resource.setrlimit(getattr(resource, name), (value, value))


def payload(req, stdout_fd, stderr_fd, channel):
    """pid 2 of the run's pid namespace: rlimits, session, output, environment, then the runner."""
    os.setsid()
    _setrlimits(req["limits"])
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    os.chdir(WORKSPACE)
    os.environ.clear()
    os.environ.update(req["env"])
    random.seed()
    import tempfile

    tempfile._name_sequence = None  # pyright: ignore[reportAttributeAccessIssue]  (reseeded per child)
    import runner

    sys.argv = [runner.__file__, f"{OUT}/spec.json"]
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    runner.SESSION = forked_session(spec, channel)
    return runner.main()


def init(req, stdout_fd, stderr_fd, channel):
    """pid 1 of the run's pid namespace: runs the payload, then ends whatever it left behind."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = payload(req, stdout_fd, stderr_fd, channel)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            _flush()
            os._exit(code)
    os.close(stdout_fd)
    os.close(stderr_fd)
    status = None
    while True:
        try:
            done, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if done == pid:
            status = st
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)  # the rest of the namespace, as its end would
    if status is None:
        return 1
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)  # as bubblewrap reports a command killed by a signal
    return os.waitstatus_to_exitcode(status)


def unshare_as_ourselves(flags):
    """A new user namespace (plus ``flags``) in which we keep our uid and gid, and may mount."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(CLONE_NEWUSER | flags), "unshare")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def enter_namespaces(req):
    """Own user/mount/net/ipc/uts/pid namespaces; the candidate's workspace and folders mounted."""
    unshare_as_ourselves(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    run = f"{WARM}/{req['id']}"
    layers = f"{WARM}/{req['id']}.host/layers"
    _mount(
        "overlay",
        f"{run}/workspace",
        "overlay",
        0,
        f"lowerdir={BASE},upperdir={layers}/upper,workdir={layers}/work",
    )
    for sub in (".vtforge", "env", "base"):
        _mount(f"/tmp/{sub}", f"{run}/{sub}", None, MS_BIND | MS_REC)
    carried = sorted(set(req.get("carry") or ()))  # an interpreter's folders under /tmp, which
    for point in carried:  # bubblewrap bound into the zygote's /tmp, as it binds them for a cold run
        if any(point.startswith(outer + "/") for outer in carried):
            continue  # comes along with the folder above it
        target = run + point[len("/tmp") :]
        os.makedirs(target, mode=0o755, exist_ok=True)
        _mount(point, target, None, MS_BIND | MS_REC)
    _mount(run, "/tmp", None, MS_BIND | MS_REC)  # the run's own /tmp, as a cold run has it
    loopback_up()


def child(req, fds, sock, channel, spare=None):
    """The zygote's child for one run (never returns); ``channel`` leads to the rewrite cache.

    A ``spare`` child is forked before its run: the host moves it into the run's cgroup meanwhile
    (a cgroup v1 move waits for an RCU grace period, 5-25 ms), and the run's request and files
    arrive later over ``spare``, forwarded by the zygote."""
    code = 1
    try:
        become_child()
        sock.send(json.dumps({"kind": "hello", "id": req["id"]}).encode())
        sock.close()
        if spare is not None:
            message, fds, _, _ = socket.recv_fds(spare, 1 << 16, 4)
            spare.close()
            if not message:
                os._exit(0)  # the zygote is gone: no run comes
            req = json.loads(message)
        stdout_fd, stderr_fd, go_fd = fds
        if os.read(go_fd, 1) != b"g":
            os._exit(111)  # the host gave up on this run
        os.close(go_fd)
        enter_namespaces(req)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                drop_capabilities()
                status = init(req, stdout_fd, stderr_fd, channel)
            except BaseException as exc:
                os.write(stderr_fd, f"warm worker: {exc}\n".encode())
            finally:
                os._exit(status)
        os.close(stdout_fd)
        os.close(stderr_fd)
        drop_capabilities()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"warm worker child: {exc}\n".encode())
        code = 120
    finally:
        os._exit(code)


# --- the zygote -------------------------------------------------------------------------------


def become_child():
    """In a freshly forked child of a serving loop: die with the parent, and drop the parent's
    SIGCHLD wake-up (the pipe is the parent's)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def watch_children():
    """A pipe that becomes readable when a child ends (SIGCHLD through the wakeup fd): select on
    its read end beside the sockets, then ``drain`` it and reap."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    return wake_r, wake_w


def drain(wake_r):
    with contextlib.suppress(BlockingIOError):
        while os.read(wake_r, 512):
            pass


def ended_children():
    """``(pid, wait status)`` of each child that has ended, without waiting for one."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def serve(sock):
    wake_r, wake_w = watch_children()
    children = {}  # pid -> (run id, the zygote's end of its rewrite channel)
    rewrites = rewrite_cache.Server()
    spare = {}  # at most one: pid -> the zygote's end of the spare's request socket

    def reap():
        for pid, status in ended_children():
            if pid in spare:
                spare.pop(pid).close()
            entry = children.pop(pid, None)
            if entry is not None:
                run_id, mine = entry
                rewrites.close_channel(mine)
                sock.send(json.dumps({"kind": "exit", "id": run_id, "status": status}).encode())

    for message, fds in host_requests(sock, wake_r, reap, rewrites):
        req = json.loads(message)
        if req.get("spare"):  # the run goes to the spare, already in its cgroup
            forwarded = False
            for pid, ours in list(spare.items()):
                with contextlib.suppress(OSError):
                    socket.send_fds(ours, [message], fds)
                    forwarded = True
                    children[pid] = (req["id"], children[pid][1])
                spare.pop(pid).close()
            for fd in fds:
                os.close(fd)
            if not forwarded:
                sock.send(json.dumps({"kind": "refused", "id": req["id"]}).encode())
            reap()
            continue
        making_spare = req.get("kind") == "spare"
        if making_spare and spare:  # one is enough
            sock.send(json.dumps({"kind": "refused", "id": req["id"]}).encode())
            continue
        ours = its = None
        if making_spare:
            ours, its = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        mine, theirs = rewrites.open_channel()
        pid = os.fork()
        if pid == 0:
            os.close(wake_r)
            os.close(wake_w)
            for other in [*rewrites.sockets(), *spare.values(), *([ours] if ours else [])]:
                other.close()
            child(req, fds, sock, theirs, spare=its)
        theirs.close()
        for fd in fds:
            os.close(fd)
        if its is not None:
            its.close()
            spare[pid] = ours
        children[pid] = (req["id"], mine)
        reap()
    kill_all(children)  # the host closed: end every run and leave
    return 0


def host_requests(sock, wake_r, reap, side=None):
    """The host's requests ``(message, descriptors)`` one by one until it closes its end; in
    between, ``reap`` when a child ended, and answer the readable channels of ``side`` (the
    rewrite cache's)."""
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r, *(side.sockets() if side else ())], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            drain(wake_r)
            reap()
        for channel in ready:
            if side is not None and channel is not sock and channel != wake_r:
                side.serve(channel)
        if sock not in ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
        except InterruptedError:
            continue
        if not message:
            return
        yield message, fds


def kill_all(pids):
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def tell_host(sock, info):
    """Send the host the ready (or unsafe) message; whether this process may go on serving."""
    _flush()
    sock.send(json.dumps(info).encode())
    return info["kind"] == "ready"


def announce(sock, info):
    """Tell the host whether this zygote is ready, then serve its runs until EOF."""
    if not tell_host(sock, info):
        return 3
    try:
        return serve(sock)
    except OSError as exc:
        if exc.errno in (errno.EPIPE, errno.ECONNRESET):
            return 0
        raise


def warm_up(preload, what):
    """Run ``preload``; the ready message, or why this process cannot fork runs."""
    info: dict[str, object] = {"kind": "ready"}
    try:
        preload()
        if threading.active_count() > 1:
            info = {"kind": "unsafe", "why": f"importing {what} started threads"}
        gc.freeze()  # what is loaded now lives as long as the zygote: no child's collection scans it
    except BaseException as exc:
        info = {"kind": "unsafe", "why": f"preload failed: {type(exc).__name__}: {exc}"}
    return info


def standalone(sock):
    """A zygote started on its own, in a sandbox that already shows its repository."""
    info = warm_up(lambda: (preload_pytest(), preload_repository()), "pytest or the repository")
    info["repository"] = sorted(PRELOADED)
    return announce(sock, info)


# --- the template -----------------------------------------------------------------------------
#
# One interpreter per task interpreter imports pytest and its plugins once and forks each
# repository's zygote; the zygote then takes its repository's mounts in a user and mount namespace
# of its own. The template's sandbox shows every prepared checkout (read-only, /tmp/.repos) and
# the pool's folders (/tmp/.pool); a zygote binds its own at the usual places and hides the rest.

REPOS = "/tmp/.repos"
POOL = "/tmp/.pool"


def enter_repository(req):
    """This zygote's repository at /tmp/workspace and /tmp/base, its environment at /tmp/env, its
    runs' folders at /tmp/.warm, its own home and tmp (``req`` names them under /tmp/.repos and
    /tmp/.pool); every other repository and zygote hidden."""
    unshare_as_ourselves(CLONE_NEWNS)
    # no MS_PRIVATE here: the runs' quota mounts, made on the host later, must still arrive (a
    # namespace of a new user namespace receives the host's mounts but sends none back)
    source = f"{REPOS}/{req['source']}"
    for target in (WORKSPACE, BASE):
        _mount(source, target, None, MS_BIND | MS_REC)
    _mount(f"{REPOS}/{req['env']}", "/tmp/env", None, MS_BIND | MS_REC)
    _mount(f"{POOL}/{req['runs']}", WARM, None, MS_BIND | MS_REC)
    for sub in ("home", "tmp"):  # $HOME and $TMPDIR of its own, as a standalone zygote has
        _mount(f"{POOL}/{req['folder']}/{sub}", f"/tmp/{sub}", None, MS_BIND | MS_REC)
    for hidden in (REPOS, POOL):
        _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
    os.chdir(WORKSPACE)
    importlib.invalidate_caches()


def shadowed_modules():
    """Modules the template imported that the repository would have shadowed (``sys.path[0]`` is
    the workspace: a standalone zygote or a cold run imports the repository's own)."""
    tops = {name.partition(".")[0] for name in sys.modules}
    found = set()
    for entry in os.listdir(WORKSPACE):
        stem = entry.partition(".")[0]
        if stem not in tops:
            continue
        path = os.path.join(WORKSPACE, entry)
        if entry.endswith((".py", ".so")) or os.path.isfile(os.path.join(path, "__init__.py")):
            found.add(stem)
    return sorted(found)


def forked_zygote(req, sock_fd, log_fd):
    """A repository's zygote, forked from the template (never returns)."""
    code = 1
    try:
        become_child()
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sock = socket.socket(fileno=sock_fd)
        sock.send(json.dumps({"kind": "hello"}).encode())  # the host moves us into our cgroup
        if sock.recv(16) != b"go":
            os._exit(0)  # the host gave up on this zygote
        try:
            enter_repository(req)
            shadowed = shadowed_modules()
        except OSError as exc:
            info = {"kind": "unsafe", "why": f"cannot mount the repository: {exc}", "standalone": True}
        else:
            if shadowed:
                why = f"the repository shadows {', '.join(shadowed)}, which the template imported"
                info = {"kind": "unsafe", "why": why, "standalone": True}
            else:
                info = warm_up(preload_repository, "the repository")
                info["repository"] = sorted(PRELOADED)
        code = announce(sock, info)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _flush()
        os._exit(code)


def template(sock):
    """Import pytest and its plugins, then fork a zygote per ``{"kind": "zygote", "source", "env",
    "runs", "folder"}`` request (descriptors: the zygote's socket to the host, its log). EOF ends the
    template and its zygotes."""
    if not tell_host(sock, warm_up(preload_pytest, "pytest and its plugins")):
        return 3
    wake_r, wake_w = watch_children()
    children = set()

    def reap():
        for pid, _ in ended_children():
            children.discard(pid)

    for message, fds in host_requests(sock, wake_r, reap):
        req = json.loads(message)
        if req.get("kind") != "zygote" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            os.close(wake_r)
            os.close(wake_w)
            sock.close()
            forked_zygote(req, *fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
    kill_all(children)
    return 0


def main():
    is_template = sys.argv[1] == "--template"
    sock = socket.socket(fileno=int(sys.argv[-1]))
    sys.path[0] = WORKSPACE  # as ``python -m pytest`` run in the workspace has it
    os.chdir(WORKSPACE)
    return template(sock) if is_template else standalone(sock)


if __name__ == "__main__":
    sys.exit(main())
