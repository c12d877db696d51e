"""Plans and configuration text built from shared parts are exactly what building each home gives."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from alerts.homeconfig import ConfigError, HomeConfig, parse_home_config
from alerts.plan import HomePlan, plan_from_config
from gateway.clock import SimClock
from gateway.compile_cache import CompileCache
from gateway.config_cache import ConfigCache
from gateway.metrics import Metrics
from gateway.runtime import Runtime
from tests.benchmarks.recovery import NOW
from tests.unit.test_config_cache import GOOD


def _variant(data: dict[str, Any], index: int) -> dict[str, Any]:
    """Another home of the same shape, with its own id, person and contacts."""
    out = copy.deepcopy(data)
    out["home"] = f"{data['home']}-{index}"
    out["person"] = {**data["person"], "name": f"Zoë \"{index}\" <O'Brien>"}
    out["contacts"] = [{"name": f"Ann {index}", "notify": [f"json://127.0.0.1:{9000 + index}/"]}]
    if index % 2:
        out["away"] = [{"from": "2026-12-24T10:00", "to": "2026-12-27T18:00", "reason": "à Noël ✓"}]
        out["timezone"] = "America/New_York"
    return out


def _same(a: HomePlan, b: HomePlan) -> bool:
    """Plans alike field by field (a `NightWindow` compares by identity: by its three values here)."""
    night = (a.night.start, a.night.end, a.night.zone) == (b.night.start, b.night.end, b.night.zone)
    return night and replace(a, night=b.night) == b


CONFIGS = [_variant(data, i) for data in GOOD for i in range(3)]


@pytest.mark.parametrize("data", CONFIGS, ids=lambda d: str(d["home"]))
def test_shared_parts_give_what_each_home_alone_gives(data: dict[str, Any]) -> None:
    reader, compiled = ConfigCache(), CompileCache()
    for warm in CONFIGS:  # every part met before, the way a start meets them
        compiled.plan(reader.parse(warm, "warm"))
    cfg = reader.parse(data, "home")
    alone = parse_home_config(data, "home")
    assert _same(compiled.plan(cfg), plan_from_config(alone))
    assert compiled.config_json(cfg) == alone.model_dump_json(by_alias=True)
    assert HomeConfig.model_validate_json(compiled.config_json(cfg)) == alone


def test_homes_of_one_shape_share_their_compiled_parts() -> None:
    reader, compiled = ConfigCache(), CompileCache()
    first, second = (compiled.plan(reader.parse(_variant(GOOD[0], i), "home")) for i in (0, 2))
    assert first.devices is second.devices and first.night is second.night
    assert first.person != second.person


def test_a_full_cache_starts_again_and_still_compiles_right() -> None:
    reader, compiled = ConfigCache(), CompileCache(limit=2)
    for data in CONFIGS:
        cfg = reader.parse(data, "home")
        assert _same(compiled.plan(cfg), plan_from_config(cfg))
        assert compiled.config_json(cfg) == cfg.model_dump_json(by_alias=True)


def test_the_runtime_keeps_the_settings_service_contacts_in_the_text() -> None:
    service = parse_home_config({**GOOD[0], "service_contacts": [{"name": "Desk", "notify": ["json://x/"]}]})
    runtime = Runtime(SimClock(NOW), Metrics(), service_contacts=service.service_contacts)
    data = {key: value for key, value in GOOD[0].items() if key != "service_contacts"}
    runtime.set_home(ConfigCache().parse(data, "home"), start=False)
    home = runtime.homes[data["home"]]
    assert home.config.service_contacts == service.service_contacts
    assert _same(home.plan, plan_from_config(home.config))


def test_checks_across_parts_run_once_per_shape_and_still_refuse_what_is_wrong() -> None:
    reader = ConfigCache()
    for index in range(3):
        reader.parse(_variant(GOOD[0], index * 2), "home")
    backwards = {**_variant(GOOD[0], 7), "away": [{"from": "2026-12-27T18:00", "to": "2026-12-24T10:00"}]}
    with pytest.raises(ConfigError, match=r"away\[0\]\.to: must be after"):
        reader.parse(backwards, "home")
    twice = {**GOOD[0], "devices": [*GOOD[0]["devices"], GOOD[0]["devices"][0]]}
    with pytest.raises(ConfigError, match="used twice"):
        reader.parse(twice, "home")
