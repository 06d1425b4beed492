"""Kafka for vtforge: the local development broker and the one client module."""

from vtforge.kafka.broker import BrokerError, BrokerStatus, LocalBroker, ensure_local_broker
from vtforge.kafka.jars import JarsError

__all__ = ["BrokerError", "BrokerStatus", "JarsError", "LocalBroker", "ensure_local_broker"]
