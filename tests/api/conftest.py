"""Every API test runs with every log line captured, and none may show a secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.api.world import SECRET_MARK


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    leaked = [r.getMessage()[:300] for r in caplog.records if SECRET_MARK in r.getMessage()]
    assert not leaked, f"a log line shows a secret: {leaked}"
