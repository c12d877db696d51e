"""A carer reads one of Rose's stored nights as a timeline, and steps to the night before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Served, axe_check, shot, sign_in

pytestmark = pytest.mark.integration


def test_a_stored_night_is_drawn_and_told_in_words(served: Served, new_page: Any) -> None:
    last = (served.night_from - timedelta(days=1)).date()
    page = new_page(360, 740)
    sign_in(page, served, "sam", f"/homes/rose/nights/{last.isoformat()}/page")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rose: the night of")
    expect(page.locator("svg.timeline rect.bed")).to_have_count(2)  # in bed, up for half an hour, back
    words = page.locator(".night-lines")
    expect(words).to_contain_text("in bed until")
    expect(words.locator("li")).to_have_count(2)
    shot(page, "night")
    axe_check(page, "night")

    page.get_by_role("link", name="← Night before").click()
    before = (last - timedelta(days=1)).isoformat()
    expect(page).to_have_url(f"{served.url}/homes/rose/nights/{before}/page")
    expect(page.locator("svg.timeline rect.bed")).to_have_count(2)
