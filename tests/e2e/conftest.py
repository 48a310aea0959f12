"""The whole network as separate processes on its own embedded broker and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from linkwell.testing import RunningNetwork, launch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    running = launch(ROOT, tmp_path_factory.mktemp("network"))
    try:
        yield running
    finally:
        running.close()
