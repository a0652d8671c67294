"""The speed layer: Kafka → Spark Structured Streaming → HBase views, the archive and the dead-letter topic.

``QUERIES`` names its streaming queries; it lives here, free of Spark, for the probes and the watchdog.
"""

QUERIES = ("views", "ingest")
