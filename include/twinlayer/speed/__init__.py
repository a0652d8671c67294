"""The speed layer: Kafka → Spark Structured Streaming → HBase views, the archive and the dead-letter topic.

``QUERIES`` names its streaming queries; it lives here, free of Spark, for the probes and the watchdog. Queries
named with ``WARMUP_PREFIX`` are the start-up warm-up's (``warmup``), not part of the running layer. The job exits
with ``NEEDS_OPERATOR`` when it refuses to go on until a person acts (lost or incompatible checkpoints); its
supervisor does not restart it then.
"""

QUERIES = ("views", "ingest")
WARMUP_PREFIX = "warmup-"
NEEDS_OPERATOR = 3
