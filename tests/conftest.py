"""Session fixtures: the real embedded stack and one SparkSession.

The stack fixture reuses a stack that is already healthy (a developer's `make up`) and otherwise starts one and
stops it at the end of the session. Tests marked ``disruptive`` stop or kill services; they run last.
"""

from __future__ import annotations

import os
import uuid

import pytest

from twinlayer.config import load_settings
from twinlayer.stack import Stack


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings):
    stack = Stack(settings, out=lambda line: print(line, flush=True))
    started_here = not stack.healthy()
    if started_here:
        stack.up()
    try:
        yield stack
    finally:
        if started_here and not os.environ.get("TWINLAYER_KEEP_STACK"):
            stack.down()


@pytest.fixture(scope="session")
def spark(settings):
    from twinlayer.spark import build_session

    session = build_session("twinlayer-tests", settings)
    session.sparkContext.setLogLevel("WARN")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def unique_name(request):
    """A name no earlier run used, for topics and tables: tests never see each other's data."""
    return f"t_{request.node.name[:40].replace('[', '_').replace(']', '')}_{uuid.uuid4().hex[:8]}"
