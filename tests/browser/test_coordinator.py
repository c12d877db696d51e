"""A coordinator edits Rose's routine: the what-if preview follows the edit, a bad value is named
beside its field, saving asks why, and the change is in the history with a diff and a restore.

Rose's home has 15 stored nights (imported with `tecmon db import-events`), each with half an hour
out of bed: her 45-minute rule never called; a 20-minute rule would have called every night.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served, axe_check, shot, sign_in

pytestmark = pytest.mark.integration


def test_a_routine_is_previewed_saved_with_a_reason_and_found_in_the_history(served: Served,
                                                                            new_page: Any) -> None:
    page = new_page(1024, 900)
    sign_in(page, served, "ana", "/homes/rose/page")
    expect(page.get_by_role("heading", name="Rose's routine (rose)")).to_be_visible()
    expect(page.locator("blockquote")).to_contain_text("sit in the kitchen for half an hour")
    preview = page.locator("#preview-body")
    after = page.get_by_label("Call if out of bed at night for")

    after.fill("20m")
    expect(preview).to_contain_text("would have called 14 times instead of 0", timeout=15_000)
    after.fill("35m")
    expect(preview).to_contain_text("would have called 0 times instead of 0", timeout=15_000)
    after.fill("twenty")
    expect(preview).to_contain_text("expected a duration like 45m, 90s or 1h30m, got 'twenty'")

    page.get_by_role("button", name="Preview").click()  # the path without JavaScript: the whole page
    error = page.locator("#f-routine-out_of_bed-alert_after-error")
    expect(error).to_have_text("expected a duration like 45m, 90s or 1h30m, got 'twenty'")
    expect(page.get_by_label("Call if out of bed at night for")).to_have_attribute("aria-invalid", "true")
    shot(page, "home-error")

    page.get_by_label("Call if out of bed at night for").fill("20m")
    expect(page.locator("#preview-body")).to_contain_text("would have called 14 times instead of 0",
                                                          timeout=15_000)
    page.get_by_role("button", name="Save the routine").click()
    expect(page.locator("#why-error")).to_contain_text("Say why it changes")
    page.get_by_label("Why is it changing?").fill("Rose sits in the kitchen: call sooner")
    page.get_by_role("button", name="Save the routine").click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 2: the new routine applies now.")
    expect(page.locator(".plain").first).to_contain_text("out of bed for 20 minutes")
    history = page.locator("ol.history li").first
    expect(history).to_contain_text("Version 2")
    expect(history).to_contain_text("by ana: “Rose sits in the kitchen: call sooner”")
    shot(page, "home")
    axe_check(page, "home")

    history.get_by_role("link", name="What changed in version 2").click()
    row = page.get_by_role("row", name="routine.out_of_bed.alert_after")
    expect(row).to_contain_text("45m")
    expect(row).to_contain_text("20m")
    shot(page, "version")
    axe_check(page, "version")

    page.goto(f"{served.url}/homes/rose/page/versions/1")
    page.get_by_label("Why?").fill("back to what Rose agreed")
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_role("status")).to_have_text("Saved as version 3: the new routine applies now.")
    expect(page.locator("ol.history li").first).to_contain_text("restored version 1: back to what Rose agreed")


def test_a_home_defined_by_a_file_is_read_only(served: Served, new_page: Any) -> None:
    page = new_page(360, 740)
    sign_in(page, served, "ana", "/homes/ivy/page")
    expect(page.get_by_text("defined by a file on the server")).to_be_visible()
    expect(page.get_by_role("button", name="Save the routine")).to_have_count(0)
