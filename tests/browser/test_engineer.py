"""An engineer finds the sensor the simulated home took offline, and a message nobody could use."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served, axe_check, shot, sign_in

pytestmark = pytest.mark.integration


def wait_until(condition: Any, seconds: float, why: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(why)
        time.sleep(0.1)


def test_an_offline_device_and_a_dead_letter_are_shown(served: Served, new_page: Any) -> None:
    page = new_page(360, 740)
    sign_in(page, served, "eve")
    expect(page).to_have_url(f"{served.url}/devices/page")
    served.publish("ivy", "hall-motion/availability", "offline")
    served.publish("ivy", "kettle", {"state": "ON"})

    def offline() -> bool:
        items = page.request.get(f"{served.url}/devices", params={"home": "ivy"}).json()["items"]
        return any(d["device"] == "hall-motion" and not d["online"] for d in items)

    wait_until(offline, 15, "the gateway never saw the sensor go offline")
    page.get_by_label("Show").select_option(label="Offline or silent 10 min+")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{served.url}/devices/page?silent=10")
    row = page.locator('tr[data-device="ivy/hall-motion"]')
    expect(row).to_contain_text("offline")
    expect(page.locator("td.state-online")).to_have_count(0)  # the filter leaves only the silent ones
    expect(page.get_by_role("region", name="Messages that could not be used")).to_contain_text("kettle")
    shot(page, "devices")
    axe_check(page, "devices")
