"""pytest plugin: one JSON line per test with its exact node id and outcome.

Loaded with ``-p vtforge_report --vtforge-report=FILE``. Lines are appended and flushed as tests
finish, so a run killed half-way still reports what completed. junit XML would lose node ids
(parametrised ids, nested classes); this keeps them exactly as pytest prints them.
"""

import json

import parse_memo


def pytest_addoption(parser):
    parser.addoption("--vtforge-report", default=None, help="append per-test JSON lines to this file")
    parser.addoption("--vtforge-select", default=None, help="JSON list of node ids: run only these")


def _wanted(nodeid, exact, prefixes):
    if nodeid in exact or nodeid.split("[", 1)[0] in exact:
        return True
    return any(nodeid.startswith(p) for p in prefixes)


def split_selected(items, ids):
    """``(kept, dropped)``: the items that ``ids`` select (node ids, path prefixes, ``...`` tails)."""
    exact = {i for i in ids if "::" in i}
    prefixes = tuple(i.rstrip("/") for i in ids if "::" not in i) + tuple(
        i[:-3] for i in ids if i.endswith("...")
    )
    keep, drop = [], []
    for item in items:
        (keep if _wanted(item.nodeid, exact, prefixes) else drop).append(item)
    return keep, drop


def read_selection(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def pytest_collection_modifyitems(session, config, items):
    """Keep only the selected ids; an id that does not exist is simply not run (never a usage error)."""
    path = config.getoption("--vtforge-select")
    if not path:
        return
    keep, drop = split_selected(items, read_selection(path))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config):
    parse_memo.install()
    path = config.getoption("--vtforge-report")
    if path:
        config.pluginmanager.register(_Reporter(path), "vtforge_reporter")


class _Reporter:
    def __init__(self, path):
        self._file = self._open(path)
        self._seen = {}

    @staticmethod
    def _open(path):
        return open(path, "a", buffering=1, encoding="utf-8")  # lives for the session

    def report_to(self, path):
        """Start a new report file (a session forked from a collected one reports on its own)."""
        self._file.close()
        self._file = self._open(path)
        self._seen = {}

    def _emit(self, nodeid, status, duration, message=None):
        record = {"name": nodeid, "status": status, "duration_s": round(duration or 0.0, 6)}
        if message:
            record["message"] = message[-2000:]
        # flush (not fsync) per test: the page cache survives the run being killed at its limit,
        # which is all the results of a timed-out or OOM-killed session need; fsync cost seconds.
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        xfail = hasattr(report, "wasxfail")
        status = None
        if report.when == "setup":
            if report.failed:
                status = "ERROR"
            elif report.skipped:
                status = "XFAIL" if xfail else "SKIPPED"
        elif report.when == "call":
            if report.passed:
                status = "PASSED"  # an unexpected pass (XPASS, non-strict) counts as a pass
            elif report.failed:
                status = "FAILED"
            elif report.skipped:
                status = "XFAIL" if xfail else "SKIPPED"
        elif report.when == "teardown" and report.failed and self._seen.get(nodeid) in (None, "PASSED"):
            status = "ERROR"
        if status is None:
            return
        self._seen[nodeid] = status
        message = str(report.longrepr) if report.failed and report.longrepr is not None else None
        self._emit(nodeid, status, report.duration, message)

    def pytest_collectreport(self, report):
        if report.failed:
            self._emit(report.nodeid or "<collection>", "ERROR", 0.0, str(report.longrepr))

    def pytest_unconfigure(self, config):
        self._file.close()
