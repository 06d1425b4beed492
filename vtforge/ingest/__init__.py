"""Ingestion: Kafka topics → landing Parquet, exactly once per offset (see ``ingestor``)."""

from vtforge.ingest.ingestor import IngestError, Ingestor, IngestReport

__all__ = ["IngestError", "IngestReport", "Ingestor"]
