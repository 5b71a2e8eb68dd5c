"""The client's tests run against the real `vigie` binary (see e2e/harness.py)."""

import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # vigie_client, without installing it
sys.path.insert(0, str(HERE.parents[2] / "e2e"))  # the harness that starts Vigie

from harness import Server, vigie_binary  # noqa: E402


@pytest.fixture(scope="module")
def vigie():
    with tempfile.TemporaryDirectory() as data:
        srv = Server(vigie_binary(), data)
        yield srv
        srv.close()
