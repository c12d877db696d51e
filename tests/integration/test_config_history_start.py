"""A start saves the configuration of only the home files that changed since their latest version."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.service import Service
from gateway.settings import Settings
from tests.benchmarks.recovery import home_config

pytestmark = pytest.mark.integration


async def _start(directory: Path, url: str) -> tuple[int, dict[str, int]]:
    """Load as `tecmon serve` starts, let the history catch up; (homes queued, versions per home)."""
    service = Service(Settings(homes=[directory], database_url=url))
    await service.store.open()
    await service._load()
    queued = service._configs_to_keep.qsize()
    saver = asyncio.create_task(service._keep_configs())
    await asyncio.wait_for(service._configs_to_keep.join(), timeout=30)
    saver.cancel()
    versions = {home: len(await service.store.home_config_history(home)) for home in service.runtime.homes}
    await service.store.close()
    return queued, versions


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_restart_saves_only_the_files_that_changed(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'tecmon.db'}" if kind == "sqlite" else request.getfixturevalue("database")
    homes = tmp_path / "homes"
    homes.mkdir()
    for index in range(3):
        (homes / f"home-{index}.json").write_text(json.dumps(home_config(index)))
    assert await _start(homes, url) == (3, {"home-0": 1, "home-1": 1, "home-2": 1})
    assert await _start(homes, url) == (0, {"home-0": 1, "home-1": 1, "home-2": 1})
    changed = {**home_config(1), "person": {"name": "Someone else"}}
    (homes / "home-1.json").write_text(json.dumps(changed))
    (homes / "home-2.json").write_text(json.dumps(home_config(2), indent=2))  # other bytes, same content
    assert await _start(homes, url) == (2, {"home-0": 1, "home-1": 2, "home-2": 1})
    assert await _start(homes, url) == (0, {"home-0": 1, "home-1": 2, "home-2": 1})
