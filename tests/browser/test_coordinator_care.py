"""A coordinator sets up asking Iris first, company mode, the bed's longest spell and Sam's morning
summary in the routine editor of a real browser; the page reads them back in plain words, shows
them again as saved, and axe finds no violation at all on it. Iris's home is created for this
test alone (through the API, as a coordinator), so Rose's history is left to the other tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Served, axe_check, home, night, shot, sign_in

pytestmark = pytest.mark.integration
ASK = "Ask first: blink a light, and call nobody if the button is pressed in time: on"
COMPANY = "Someone is with them: a press on the button pauses every call but a call for help: on"
BED = "Tell the service if the bed says Iris has been in it without a break for"
SUMMARY = "Morning summary of the night for Sam at"


def create_iris(served: Served) -> None:
    config = home("iris", "Iris", served.phone, {"night": night(datetime.now(UTC)),
                                                 "out_of_bed": {"alert_after": "45m"}}, "I like my lamp on low.")
    with httpx.Client(base_url=served.url, timeout=10) as client:
        token = client.post("/auth/token", data={"username": "ana", "password": PASSWORD}).json()["access_token"]
        created = client.post("/homes", headers={"Authorization": f"Bearer {token}"},
                              json={"config": config, "why": "set up with Iris"})
        assert created.status_code == 201, created.text


def test_the_care_keys_are_set_in_words_saved_and_read_back(served: Served, new_page: Any) -> None:
    create_iris(served)
    page = new_page(1024, 900)
    sign_in(page, served, "ana", "/homes/iris/page")
    expect(page.get_by_role("heading", name="Iris's routine (iris)")).to_be_visible()
    axe_check(page, "home-care-before", strict=True)

    page.get_by_label(ASK).check()
    page.get_by_label("The light that blinks").select_option("bedside-light")
    page.get_by_label("Call nobody if the button is pressed within").fill("3m")
    page.get_by_label(COMPANY).check()
    page.get_by_label("The press that says someone has come (and, again, that they have left)").select_option(
        label="pressed twice")
    page.get_by_label("Pause the calls for at most").fill("90m")
    page.get_by_label(BED).fill("14h")
    page.get_by_label(SUMMARY).fill("08:15")
    expect(page.locator("#preview-body")).to_contain_text("would have called 0 times instead of 0",
                                                          timeout=15_000)
    page.get_by_label("Why is it changing?").fill("Iris wants to be asked first")
    page.get_by_role("button", name="Save the routine").click()

    expect(page.get_by_role("status")).to_have_text("Saved as version 2: the new routine applies now.")
    plain = page.locator(".plain").first
    expect(plain).to_contain_text("Ask Iris first")
    expect(plain).to_contain_text("nobody is called for 1 hour 30 minutes unless Iris asks for help")
    expect(plain).to_contain_text("in bed for 14 hours without a break")
    expect(plain).to_contain_text("Sam gets a short account of Iris's night every morning at 08:15")
    expect(page.get_by_label(ASK)).to_be_checked()
    expect(page.get_by_label("Call nobody if the button is pressed within")).to_have_value("3m")
    expect(page.get_by_label("Pause the calls for at most")).to_have_value("1h30m")
    expect(page.get_by_label(SUMMARY)).to_have_value("08:15")
    shot(page, "home-care")
    axe_check(page, "home-care", strict=True)
