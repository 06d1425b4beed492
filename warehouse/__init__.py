"""DuckDB warehouse: SQL models that turn landing events into curated tables, datasets and telemetry."""
