"""`POST /homes/{home}/preview` over a night with company mode: as quiet as the night was live.

Julie's routine here has `company: {action: double, for: 2h}`. Sam visits and
Julie double-presses at 23:30; she is up with Sam from 23:40 to 00:50 (70
minutes, past her 45) and nobody is called live. The live service keeps the
double press as a `company` input, not a button event; the preview replays
that input, so it too raises nothing, while a routine without company mode
would have called at 00:25.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.homeconfig import parse_home_config
from tests.api.test_nights import at, live_night, no_calls, z
from tests.api.world import api_world, home

VISIT: list[tuple[str, str, Any]] = [
    ("01-12 23:05", "bed", {"occupancy": True}),
    ("01-12 23:30", "ok-button", {"action": "double"}),  # company until 01:30
    ("01-12 23:40", "bed", {"occupancy": False}),
    ("01-12 23:50", "hall-motion", {"occupancy": True}),
    ("01-13 00:10", "hall-motion", {"occupancy": True}),
    ("01-13 00:25", "hall-motion", {"occupancy": True}),
    ("01-13 00:40", "hall-motion", {"occupancy": True}),
    ("01-13 00:50", "bed", {"occupancy": True}),
    ("01-13 07:00", "bed", {"occupancy": False}),
]


async def test_a_night_with_company_previews_as_quiet(tmp_path: Path) -> None:
    async with api_world(tmp_path) as world:
        no_calls(world)
        data: dict[str, Any] = home("julie")
        data["routine"]["company"] = {"action": "double", "for": "2h"}
        world.service.runtime.set_home(parse_home_config(data, "test"))
        await live_night(world, VISIT, acts=[])
        assert world.service.runtime.open_alerts() == [] and not world.service.history, "quiet live"
        world.clock.set(at("01-13 12:00"))
        without = {key: value for key, value in data["routine"].items() if key != "company"}
        answer = await world.client.post("/homes/julie/preview", json={"routine": without, "nights": 1},
                                         headers=world.auth("ana"))
        assert answer.status_code == 200, answer.text
        (night,) = answer.json()["nights"]
        assert night["date"] == "2026-01-12" and night["current"] == []
        assert [(i["kind"], i["at"]) for i in night["proposed"]] == [("out_of_bed_too_long", z("01-13 00:25"))]
