"""How fast can Spark local[2] parse generated events from memory? (no Kafka, no sinks)"""
import time, sys
from twinlayer.config import load_settings
from twinlayer.spark import build_session
from twinlayer.generator import Workload, EventFactory, paced
from twinlayer.transforms import parse_events, valid_events, campaign_mapping
from twinlayer.views import aggregate
from pyspark.sql import functions as F
import datetime as dt

n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
spark = build_session("bench", load_settings())
spark.sparkContext.setLogLevel("ERROR")
w = Workload(rate=0, count=n)
f = EventFactory(w)
now = dt.datetime.now(dt.timezone.utc)
payloads = [(p, i % 4, i, now) for i, p in enumerate(paced(w, f))]
raw = spark.createDataFrame(payloads, "value binary, partition int, offset long, timestamp timestamp").repartition(4).cache()
raw.count()
mapping = campaign_mapping(spark).cache()
for label, df in [("scan only", raw), ("parse+validate", parse_events(raw, mapping)),
                  ("parse+aggregate", aggregate(valid_events(parse_events(raw, mapping))))]:
    for _ in range(2):
        t = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        s = time.perf_counter() - t
    print(f"{label:>18}: {n/s:10.0f} events/s")
