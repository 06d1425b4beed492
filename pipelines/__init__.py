"""Dagster definitions: assets, sensors, checks and jobs over the landing zone and the warehouse."""
