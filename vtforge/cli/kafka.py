"""``vtforge kafka start|stop|status``: the local single-node Apache Kafka broker (KRaft)."""

from __future__ import annotations

import typer

from vtforge.cli._common import CliError, ConfigOption, config_from, console


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Run the local Apache Kafka broker (KRaft, 127.0.0.1).", no_args_is_help=True)
    app.add_typer(group, name="kafka")

    @group.command("start")
    def start(
        config: ConfigOption = None,
        wait: float = typer.Option(120.0, help="Seconds to wait for the broker to answer."),
    ) -> None:
        """Resolve the jars (once), format the storage (once) and start the broker."""
        broker = _broker(config)
        from vtforge.kafka import BrokerError, JarsError

        try:
            started = broker.start(wait_s=wait)
        except (BrokerError, JarsError) as exc:
            raise CliError(str(exc)) from None
        verb = "started" if started else "already running"
        console.print(f"kafka {broker.version} {verb} on {broker.bootstrap} (data {broker.home})")

    @group.command("stop")
    def stop(config: ConfigOption = None) -> None:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after 60 s)."""
        broker = _broker(config)
        console.print("kafka stopped" if broker.stop() else "kafka was not running")

    @group.command("status")
    def status(config: ConfigOption = None) -> None:
        """Say whether the broker runs and answers; exit 1 when it does not."""
        broker = _broker(config)
        st = broker.status()
        state = f"running (pid {st.pid})" if st.running else "not running"
        answer = "answers" if st.reachable else "does not answer"
        console.print(f"kafka {st.version}: {state}; {st.bootstrap} {answer}; data {st.home}")
        if not st.reachable:
            raise typer.Exit(1)


def _broker(config_path):
    from vtforge.kafka import BrokerError, LocalBroker

    cfg = config_from(config_path)
    try:
        return LocalBroker.from_config(cfg)
    except BrokerError as exc:
        raise CliError(f"{exc} ({cfg.origin('events.bootstrap_servers')})") from None
