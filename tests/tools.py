"""Command-line tools some pure-logic tests call (promtool, amtool): found on PATH, or the test is skipped saying
which tool is missing and how to get it, so `pytest tests/unit` runs anywhere; `make test-unit` installs them."""

import shutil

import pytest


def installed(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if path is None:
        pytest.skip(f"{name} is not installed (`make packages` installs it from Debian)")
    return path
