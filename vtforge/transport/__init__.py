"""Transport: how events leave a producer (``EventSink``) and arrive in the landing zone."""

from vtforge.transport.sink import EventSink, SinkError, sink_from_config

__all__ = ["EventSink", "SinkError", "sink_from_config"]
