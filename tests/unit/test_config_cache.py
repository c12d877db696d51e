"""Home files read through the cache give exactly what full validation gives, errors included."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.homeconfig import ConfigError, HomeConfig, parse_home_config
from gateway.config_cache import ConfigCache
from gateway.homes import HomeWatcher
from tests.benchmarks.recovery import home_config

DATA = Path(__file__).resolve().parents[2] / "simulator" / "data"
SHIPPED = [yaml.safe_load(p.read_text()) for p in sorted(DATA.glob("*.home.yaml"))]
CARING = {**SHIPPED[0], "devices": [*SHIPPED[0]["devices"],
                                    {"id": "lamp", "profile": "z2m-light", "kind": "light"}],
          "routine": {**SHIPPED[0]["routine"], "check_with_me": {"within": "2m", "device": "lamp"},
                      "company": {"action": "double", "for": "2h"}}}
GOOD = [*SHIPPED, CARING, home_config(1), home_config(2)]


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(SHIPPED[0])
    change(data)
    return data


BAD = [
    _broken(lambda d: d["routine"]["out_of_bed"].update(alert_after="45")),
    _broken(lambda d: d["devices"][0].update(profile="nope")),
    _broken(lambda d: d["devices"].append(dict(d["devices"][0]))),  # an id used twice
    _broken(lambda d: d.update(colour="blue")),
    _broken(lambda d: d.update(contacts=[], service_contacts=[])),
    _broken(lambda d: d["escalation"].update(ack_within="0m")),
    _broken(lambda d: d["routine"].pop("night")),
    _broken(lambda d: d.update(devices="bed")),
    _broken(lambda d: d["routine"].update(check_with_me={"within": "2m", "device": "lamp"})),
]


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize("data", GOOD, ids=lambda d: str(d["home"]))
def test_the_same_configuration_as_full_validation(data: dict[str, Any], fallback: bool) -> None:
    cache = ConfigCache(fallback)
    for _ in range(2):  # the second time from shared parts already validated
        got = cache.parse(copy.deepcopy(data), "f")
        want = parse_home_config(copy.deepcopy(data), "f", service_fallback=fallback)
        assert type(got) is HomeConfig and got == want
        assert got.model_dump_json(by_alias=True) == want.model_dump_json(by_alias=True)
        assert got.model_fields_set == want.model_fields_set


@pytest.mark.parametrize("data", BAD)
def test_the_same_problems_named_as_full_validation(data: dict[str, Any]) -> None:
    cache = ConfigCache()
    cache.parse(copy.deepcopy(SHIPPED[0]), "f")  # the good parts are cached first
    with pytest.raises(ConfigError) as got:
        cache.parse(copy.deepcopy(data), "f")
    with pytest.raises(ConfigError) as want:
        parse_home_config(copy.deepcopy(data), "f")
    assert got.value.problems == want.value.problems


def test_a_file_touched_but_unchanged_is_not_applied_again(tmp_path: Path) -> None:
    path = tmp_path / "home-1.json"
    path.write_text(json.dumps(home_config(1)))
    watcher, applied = HomeWatcher([tmp_path]), list[str]()
    watcher.scan(lambda cfg: applied.append(cfg.person.name))
    path.write_text(json.dumps(home_config(1)))  # the same bytes, a new mtime
    os.utime(path, (1, 1))
    watcher.scan(lambda cfg: applied.append(cfg.person.name))
    changed = {**home_config(1), "person": {"name": "Someone else"}}
    path.write_text(json.dumps(changed))
    os.utime(path, (2, 2))
    watcher.scan(lambda cfg: applied.append(cfg.person.name))
    assert applied == ["Person 1", "Someone else"]
