"""Files holding the embedded stack's secrets: generated once, readable by their owner only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def owner_only(path: Path, content: Callable[[], str]) -> Path:
    """``path``, written once with ``content()`` (mode 0600 from its creation) and kept at mode 0600."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(content())
    path.chmod(0o600)
    return path
