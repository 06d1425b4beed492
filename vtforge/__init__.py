"""vtforge core: config, transport (sinks, landing zone), CLI and the synthetic generator."""

__version__ = "0.1.0"
