"""Crash points for the fault suite: named places where a test can cut a process short as a power cut would.

A write followed by its commit is where exactly-once is won or lost (the speed layer's HBase write and the
checkpoint commit of the same micro-batch; the batch job's HBase write and the publish after the gate). The fault
suite sets ``TWINLAYER_FAULT`` to one point's name in the environment of the process under test; when execution
reaches that point the process is killed with SIGKILL — no ``finally``, no shutdown hook — and so is the Spark JVM
it started, if it started one (``python spark_jobs/...``; under ``spark-submit`` the JVM is the parent and sees its
Python child die). ``TWINLAYER_FAULT_ONCE`` names a file: the point fires only while it does not exist, so the
restarted process runs through. Without ``TWINLAYER_FAULT`` a point is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import sys

FAULT = "TWINLAYER_FAULT"
FAULT_ONCE = "TWINLAYER_FAULT_ONCE"

VIEWS_WRITTEN = "speed.views.written"  # HBase holds the micro-batch's cells, the checkpoint has not committed it
BATCH_WRITING = "batch.writing"  # part of the hour's new version is in HBase
PUBLISH_DECIDED = "publish.decided"  # the pointer was read and the new entry decided, not yet swapped
PUBLISH_SWAPPED = "publish.swapped"  # the pointer moved, the serving boundary not yet pushed
POINTS = (VIEWS_WRITTEN, BATCH_WRITING, PUBLISH_DECIDED, PUBLISH_SWAPPED)


def point(name: str) -> None:
    """Kill this process tree here if the fault suite asked for ``name``."""
    if os.environ.get(FAULT) != name:
        return
    once = os.environ.get(FAULT_ONCE)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    pyspark = sys.modules.get("pyspark")
    gateway = getattr(getattr(pyspark, "SparkContext", None), "_gateway", None)
    jvm = getattr(gateway, "proc", None)  # the JVM this process launched; None under spark-submit
    if jvm is not None:
        jvm.kill()
    os.kill(os.getpid(), signal.SIGKILL)
