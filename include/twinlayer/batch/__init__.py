"""The batch layer: recompute hours exactly from the archive, gate them, publish them, measure the drift.

``recompute`` (the Spark computation) · ``runs`` (run records) · ``quality`` (the Great Expectations suites) ·
``gates`` (the suites as steps) · ``publish`` (versions, rollback, boundary) · ``drift`` ·
``late`` (closed hours, late data) · ``report`` (Pushgateway metrics).
"""
