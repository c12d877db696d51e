"""A carer on a phone (360x740): signs in, sees a live alert arrive without reloading, deals with it.

The alert comes from Zigbee2MQTT messages published on the real Mosquitto to
a real `tecmon serve`: Ivy leaves her bed in the night, and her two-second
out-of-bed rule raises an alert that calls Sam.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, Served, axe_check, shot, sign_in

pytestmark = pytest.mark.integration
PHONE = (360, 740)


def test_a_wrong_password_is_refused_in_plain_words(served: Served, new_page: Any) -> None:
    page = new_page(*PHONE)
    page.goto(served.url + "/inbox")
    expect(page).to_have_url(f"{served.url}/login?next=/inbox")
    shot(page, "login")
    axe_check(page, "login")
    page.get_by_label("Name").fill("sam")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That name and password do not match an account.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{served.url}/inbox")
    cookie = next(c for c in page.context.cookies() if c["name"] == "tecmon_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_live_alert_arrives_and_is_acknowledged_and_resolved(served: Served, new_page: Any) -> None:
    page = new_page(*PHONE)
    sign_in(page, served, "sam")
    expect(page.get_by_role("heading", name="Open alerts")).to_be_visible()
    expect(page.locator("#inbox-list[data-live=yes]")).to_be_attached()  # the event stream is open
    page.evaluate("window.notReloaded = true")

    served.publish("ivy", "bed", {"occupancy": True})
    served.publish("ivy", "bed", {"occupancy": False})
    card = page.locator("li.card", has=page.get_by_role("heading", name="Ivy: out of bed too long"))
    expect(card).to_be_visible(timeout=20_000)
    expect(card).to_contain_text("Sam at", timeout=10_000)
    expect(page.get_by_role("status")).to_contain_text("(")
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"
    shot(page, "inbox")
    axe_check(page, "inbox")

    card.get_by_role("button", name="I'm dealing with it").click()
    expect(page.get_by_role("status")).to_contain_text("you are dealing with it")
    card = page.locator("li.card", has=page.get_by_role("heading", name="Ivy: out of bed too long"))
    expect(card.locator(".dealing")).to_have_text("Sam")
    shot(page, "inbox-acknowledged")

    card.get_by_label("False alarm").check()
    card.get_by_label("Note (optional)").fill("testing the sensor")
    card.get_by_role("button", name="Resolve the alert").click()
    expect(page.get_by_role("status")).to_contain_text("The alert is closed")
    expect(page.get_by_role("heading", name="Ivy: out of bed too long")).to_have_count(0)

    record = page.request.get(served.url + "/alerts", params={"state": "all", "home": "ivy"}).json()["items"]
    assert record[0]["outcome"].endswith("false alarm: testing the sensor"), record[0]
    assert record[0]["acknowledged_by"] == "Sam"
