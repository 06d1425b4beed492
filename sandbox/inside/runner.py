"""The program a sandbox starts: apply patches, run pytest (or a command), write result.json.

Runs as the sandbox user, in the candidate's workspace, with the Python that runs the tests.
Usage: ``runner.py SPEC.json``. SPEC: patches (files), mode ("pytest" | "command"), tests,
pytest_args, command, flaky_reruns, out_dir. Exit code: the command's, 97 when a patch does not
apply. Standard library only, because it must work in any image.
"""

import json
import os
import shutil
import subprocess
import sys

APPLY_FAILED = 97
RESULT_MARKER = "@@VTFORGE-RESULT@@"
HERE = os.path.dirname(os.path.abspath(__file__))


def apply_patch(path):
    """git apply, then GNU patch with fuzz (dry run first, so a failure changes nothing)."""
    attempts = [
        ("git apply", ["git", "apply", "--verbose", "--whitespace=nowarn", path], None),
        (
            "patch --fuzz",
            ["patch", "--batch", "--forward", "--fuzz=5", "-p1", "-i", path],
            ["patch", "--batch", "--forward", "--fuzz=5", "-p1", "--dry-run", "-i", path],
        ),
    ]
    errors = []
    for name, cmd, dry in attempts:
        try:
            if dry is not None:
                probe = subprocess.run(dry, capture_output=True, text=True)
                if probe.returncode != 0:
                    errors.append(f"{name}: {(probe.stdout + probe.stderr).strip()[-1500:]}")
                    continue
            done = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if done.returncode == 0:
            return name, None
        errors.append(f"{name}: {(done.stdout + done.stderr).strip()[-1500:]}")
    return None, "\n".join(errors)


def reset_paths(paths, base):
    """Put workspace files back as in the prepared checkout (remove those it does not have)."""
    for rel in paths:
        norm = os.path.normpath(rel)
        if os.path.isabs(norm) or norm.startswith(".."):
            continue  # only paths inside the workspace
        source = os.path.join(base, norm) if base else None
        if os.path.lexists(norm) and not os.path.isdir(norm):
            os.remove(norm)
        if source and os.path.isfile(source) and not os.path.islink(source):
            os.makedirs(os.path.dirname(norm) or ".", exist_ok=True)
            shutil.copyfile(source, norm)
            shutil.copymode(source, norm)


def read_report(path):
    tests = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                tests[record["name"]] = record
    return tests


def selection_args(spec, tests, index):
    """Files to collect plus a select list, so unknown ids are skipped instead of failing the session."""
    if not tests:
        return []
    files = []
    for test in tests:
        path = test.split("::", 1)[0]
        if path.endswith("..."):
            path = path[:-3]
        if os.path.exists(path) and path not in files:
            files.append(path)
    select = os.path.join(spec["out_dir"], f"select-{index}.json")
    with open(select, "w", encoding="utf-8") as handle:
        json.dump(list(tests), handle)
    return ["--vtforge-select=" + select, *files] if files else None


def subprocess_session(cmd, env):
    """One pytest session in a new interpreter (the cold path)."""
    return subprocess.call(cmd, env=env)


# how a pytest session runs: a warm worker (zygote.py) replaces it with a fork of itself
SESSION = subprocess_session


def run_pytest(spec, tests, index):
    report = os.path.join(spec["out_dir"], f"report-{index}.jsonl")
    selection = selection_args(spec, tests, index)
    if selection is None:  # none of the requested files exists: nothing to run
        return 5, {}, []
    env = dict(os.environ)
    env["PYTHONPATH"] = HERE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "vtforge_report",
        "--vtforge-report=" + report,
        "-p",
        "no:cacheprovider",
        "-rN",
        "-q",
        *spec.get("pytest_args", []),
        *selection,
    ]
    code = SESSION(cmd, env)
    return code, read_report(report), cmd


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    result = {
        "applied_with": [],
        "apply_error": None,
        "apply_failed_index": None,
        "tests": {},
        "exit_code": None,
        "signal": None,
        "command": [],
    }
    result_path = os.path.join(spec["out_dir"], "result.json")

    def save():
        tmp = result_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        os.replace(tmp, result_path)

    resets = spec.get("reset_before") or {}
    for index, patch in enumerate(spec.get("patches", [])):
        reset_paths(resets.get(str(index), []), spec.get("base_dir"))
        how, error = apply_patch(patch)
        if how is None:
            result["apply_error"] = error
            result["apply_failed_index"] = index
            save()
            if os.environ.get("VTFORGE_RESULT_TO_STDOUT"):
                sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
            return APPLY_FAILED
        result["applied_with"].append(how)
    save()
    sys.stdout.flush()

    if spec["mode"] == "command":
        result["command"] = list(spec["command"])
        code = subprocess.call(spec["command"])
    else:
        code, tests, cmd = run_pytest(spec, list(spec.get("tests") or []), 0)
        result["command"] = cmd
        for record in tests.values():
            record["reruns"] = 0
            record["flaky"] = False
        result["tests"] = tests
        save()
        for attempt in range(1, int(spec.get("flaky_reruns", 0)) + 1):
            again = [n for n, r in tests.items() if r["status"] in ("FAILED", "ERROR") and "::" in n]
            if not again:
                break
            _, rerun, _ = run_pytest(spec, again, attempt)
            for name in again:
                record = tests[name]
                record["reruns"] += 1
                new = rerun.get(name)
                if new is not None and new["status"] != record["status"]:
                    record["flaky"] = True
                    record["status"] = new["status"]
                    record["duration_s"] = new["duration_s"]
        if code == 1 and not any(r["status"] in ("FAILED", "ERROR") for r in tests.values()):
            code = 0  # every failure turned out flaky and passed on a rerun
    if code < 0:
        result["signal"] = -code
        code = 128 - code
    result["exit_code"] = code
    save()
    if os.environ.get("VTFORGE_RESULT_TO_STDOUT"):  # backends without a shared folder read it from the log
        sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
        sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
