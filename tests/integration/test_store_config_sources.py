"""Configuration history for many homes at once (migration 7), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.store.config_sources import ConfigToSave
from tests import store_contract as sc
from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration
T0 = sc.T0


def _item(home: str, colour: str, source: str | None, minutes: int = 0) -> ConfigToSave:
    return ConfigToSave(home, {"home": home, "colour": colour}, "home file", "loaded at start",
                        T0 + timedelta(minutes=minutes), source)


async def test_a_batch_saves_what_one_at_a_time_would_and_records_each_source(backend: Backend) -> None:
    store = backend.store
    assert await store.save_home_config("julie", {"home": "julie", "colour": "red"}, "ann", "by hand", T0) == 1
    versions = await store.save_home_configs([
        _item("julie", "red", "src-j1"),  # the same content: no new version, it learns its source
        _item("bob", "blue", "src-b1"),
        _item("bob", "green", "src-b2", 1),  # two versions of one home in one batch
        _item("amy", "pink", None),
    ])
    assert versions == [1, 1, 2, 1]
    assert await store.config_sources() == {"julie": "src-j1", "bob": "src-b2"}
    history = await store.home_config_history("bob")
    assert [(v.version, v.config["colour"], v.why) for v in history] == [(1, "blue", "loaded at start"),
                                                                        (2, "green", "loaded at start")]
    assert await store.save_home_config("bob", {"home": "bob", "colour": "green"}, "x", "again", T0) == 2
    assert await store.save_home_configs([]) == []


async def test_a_version_saved_without_a_source_hides_the_older_source(backend: Backend) -> None:
    store = backend.store
    await store.save_home_configs([_item("julie", "red", "src-1")])
    await store.save_home_config("julie", {"home": "julie", "colour": "teal"}, "ann", "through the API", T0)
    assert await store.config_sources() == {}
    assert await store.save_home_configs([_item("julie", "red", "src-1", 5)]) == [3]
    assert await store.config_sources() == {"julie": "src-1"}
