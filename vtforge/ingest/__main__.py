"""``python -m vtforge.ingest [--once] [--config PATH] [-v]``: the ingestor without the full CLI."""

from __future__ import annotations

import argparse
import sys

from vtforge.config import ConfigError, load_config
from vtforge.ingest.ingestor import IngestError
from vtforge.ingest.service import configure_logging, describe, run_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vtforge.ingest", description=__doc__)
    parser.add_argument("--once", action="store_true", help="drain what is there, then exit")
    parser.add_argument("--config", "-c", default=None, help="vtcode.toml to read")
    parser.add_argument("--instance-id", default=None, help="static group membership id")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        report = run_service(load_config(args.config), once=args.once, instance_id=args.instance_id)
    except (ConfigError, IngestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(describe(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
