"""Assets that connect twinlayer's DAGs."""

from airflow.sdk import Asset

RAW_ARCHIVE = Asset(name="twinlayer_raw_archive", uri="file:///twinlayer/archive")
BATCH_VIEWS = Asset(name="twinlayer_batch_views", uri="hbase://twinlayer/batch_views")
