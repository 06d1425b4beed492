"""``vtforge ui``: the Dagster webserver and daemon over the warehouse code location.

DAGSTER_HOME is ``<data_dir>/dagster`` (created with our ``dagster.yaml``: queued runs, the writer
pool limited to one run). The daemon runs the landing sensor and the run queue; the webserver
shows the asset graph and launches runs. Both stop together on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console

if TYPE_CHECKING:
    from vtforge.config import Config

CODE_LOCATION = "vtforge.pipelines.definitions"


def ui_environment(config: Config) -> dict[str, str]:
    """The environment both processes get: DAGSTER_HOME, and the config they must read."""
    from vtforge.pipelines.instance import dagster_home, open_instance

    open_instance(config)  # creates dagster.yaml and sets the writer pool's limit
    home = dagster_home(config)
    env = dict(os.environ)
    env["DAGSTER_HOME"] = str(home)
    if config.files:
        env["VTCODE_CONFIG_PATH"] = str(config.files[-1])
    return env


def ui_commands(host: str, port: int) -> list[list[str]]:
    python = sys.executable
    return [
        [python, "-m", "dagster_webserver", "-h", host, "-p", str(port), "-m", CODE_LOCATION],
        [python, "-m", "dagster._daemon", "run", "-m", CODE_LOCATION],
    ]


def _stop(processes: list[subprocess.Popen[bytes]], timeout_s: float = 20.0) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        config: ConfigOption = None,
        host: str = typer.Option("127.0.0.1", help="Address the webserver listens on."),
        port: int = typer.Option(3000, help="Port of the webserver."),
    ) -> None:
        """Start the Dagster UI (asset graph, runs, checks) and daemon (sensor, run queue)."""
        cfg = config_from(config)
        env = ui_environment(cfg)
        processes: list[subprocess.Popen[bytes]] = []

        def on_signal(signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_signal)
        try:
            for command in ui_commands(host, port):
                processes.append(subprocess.Popen(command, env=env, cwd=cfg.root, start_new_session=True))
            console.print(
                f"Dagster UI: http://{host}:{port}  (DAGSTER_HOME={env['DAGSTER_HOME']}); Ctrl-C stops it"
            )
            while True:
                for process in processes:
                    code = process.poll()
                    if code is not None:
                        raise CliError(f"{' '.join(process.args[1:4])} exited with code {code}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopping the Dagster UI")
        finally:
            _stop(processes)
