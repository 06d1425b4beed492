"""Hypothesis strategies derived from parsed Avro schemas (so every schema gets property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_text = st.text(max_size=40)


def _timestamps() -> st.SearchStrategy[datetime]:
    micros = st.integers(min_value=0, max_value=4_102_444_800_000_000)  # up to year 2100
    return micros.map(lambda us: _EPOCH + timedelta(microseconds=us))


def strategy_for(avro: Any) -> st.SearchStrategy[Any]:
    """Values that conform to ``avro`` (a parsed, self-contained Avro type)."""
    if isinstance(avro, list):
        return st.one_of(*[strategy_for(branch) for branch in avro])
    if isinstance(avro, str):
        return {
            "null": st.none(),
            "string": _text,
            "bytes": st.binary(max_size=40),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(width=32, allow_nan=False),
            "double": st.floats(allow_nan=False),
        }[avro]
    if avro.get("logicalType") in ("timestamp-micros", "timestamp-millis"):
        return _timestamps()
    kind = avro["type"]
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: strategy_for(f["type"]) for f in avro["fields"]})
    if kind == "array":
        return st.lists(strategy_for(avro["items"]), max_size=3)
    if kind == "map":
        return st.dictionaries(_text, strategy_for(avro["values"]), max_size=3)
    if kind == "enum":
        return st.sampled_from(avro["symbols"])
    return strategy_for(kind)
