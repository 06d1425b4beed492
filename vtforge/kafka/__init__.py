"""Kafka for vtforge: the local development broker or cluster, and the one client module."""

from vtforge.kafka.broker import BrokerError, BrokerStatus, LocalBroker
from vtforge.kafka.cluster import LocalCluster, ensure_local_broker
from vtforge.kafka.jars import JarsError

__all__ = ["BrokerError", "BrokerStatus", "JarsError", "LocalBroker", "LocalCluster", "ensure_local_broker"]
