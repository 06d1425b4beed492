"""A warm run's pytest sessions forked from its first session, once collected.

The runner reruns a run's failures in a second pytest session (flaky detection). A new session,
even one forked from the zygote, pays pytest's configuration and collection again: 80-100 ms to
rerun one or two tests. Here the run's first session, once it has collected and before any test
has run, stays behind as a template: each session of the run (the first one's tests included) is
a fork of it that keeps only its own selection and writes its own report. A rerun therefore starts
from the same state a new session would reach (modules imported, nothing run), without the work of
getting there. Only the filesystem tells the two apart: a test module's import-time side effects
happen once per run instead of once per session.

Protocol (two pipes to the runner's side, ``Client``): the template answers each session with a
line ``{"status": <wait status>}`` and reads the next request, a line ``{"report", "select"}``; EOF
ends it. A session whose collection failed never becomes a template: it runs as usual, and the
runner sees EOF instead of an answer. Warm path only (the zygote); standard library and pytest.
"""

import ctypes
import gc
import json
import os
import signal
import sys

import pytest
import vtforge_report

PR_SET_PDEATHSIG = 1


def option_value(cmd, name):
    """The value of ``--name=value`` in a pytest command line, or None."""
    prefix = f"--{name}="
    return next((arg[len(prefix) :] for arg in cmd if arg.startswith(prefix)), None)


def _die_with_parent(parent_pid):
    """A session ends with its template, as it did when the template was the session: the runner
    never sees a session still writing after the one it waited for is gone (an OOM kill)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


class Template:
    """pytest plugin: after collection, fork one session per request instead of running tests."""

    def __init__(self, requests_fd, answers_fd):
        self.requests = os.fdopen(requests_fd, "rb", buffering=0)
        self.answers_fd = answers_fd

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return None  # the session stops at its collection errors: nothing to rerun from it
        collected = list(session.items)
        request = {}
        while True:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            gc.freeze()  # a session's collections leave the template's objects (and pages) alone
            template_pid = os.getpid()
            pid = os.fork()
            if pid == 0:
                self._become_session(session, collected, request, template_pid)
                return None  # pytest's own loop runs this session's tests
            _, status = os.waitpid(pid, 0)
            os.write(self.answers_fd, (json.dumps({"status": status}) + "\n").encode())
            line = self.requests.readline()
            if not line:
                os._exit(0)
            request = json.loads(line)

    def _become_session(self, session, collected, request, template_pid):
        _die_with_parent(template_pid)
        self.requests.close()
        os.close(self.answers_fd)
        if request.get("report"):
            reporter = session.config.pluginmanager.get_plugin("vtforge_reporter")
            if reporter is not None:
                reporter.report_to(request["report"])
        if request.get("select"):
            ids = vtforge_report.read_selection(request["select"])
            keep, drop = vtforge_report.split_selected(collected, ids)
            if drop:
                session.config.hook.pytest_deselected(items=drop)
            session.items = keep


class Client:
    """The runner's side: asks the template for a session, or learns there is none."""

    def __init__(self, pid, requests_fd, answers_fd):
        self.pid = pid
        self.requests_fd = requests_fd
        self.answers = os.fdopen(answers_fd, "rb", buffering=0)

    def answer(self):
        """The wait status of the session just asked for, or None when the template is gone."""
        line = self.answers.readline()
        return json.loads(line)["status"] if line else None

    def session(self, cmd):
        """Run ``cmd``'s selection as a session forked from the template; None if it cannot."""
        request = {
            "report": option_value(cmd, "vtforge-report"),
            "select": option_value(cmd, "vtforge-select"),
        }
        try:
            os.write(self.requests_fd, (json.dumps(request) + "\n").encode())
        except OSError:
            return None
        return self.answer()

    def close(self):
        """End the template (EOF on its requests); its wait status once reaped."""
        os.close(self.requests_fd)
        self.answers.close()
        _, status = os.waitpid(self.pid, 0)
        return status
