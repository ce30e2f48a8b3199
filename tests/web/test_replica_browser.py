"""The replica in a real headless Chromium: accessible names, the Online Request behaviour, saving."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.web.helpers import PASSWORD, Served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_log_in_edit_with_online_request_first_and_save(replica: Callable[..., Served], browser: Browser) -> None:
    served = replica()
    context = browser.new_context(ignore_https_errors=True)  # the test CA is not in Chromium's store
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{served.handle.url}/")
        page.get_by_role("textbox", name="Username").fill("operator")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Administration").click()
        page.get_by_role("link", name="Service Type Settings").click()
        expect(page.get_by_role("heading", name="Service Type Settings", level=1)).to_be_visible()

        page.get_by_role("combobox", name="Partner Account").select_option(label="DE*B12")
        expect(page).to_have_url(re.compile(r"account=DE(\*|%2A)B12"))
        page.get_by_role("combobox", name="Service Type").select_option(label="Authorization")
        url = page.get_by_role("textbox", name="Service URL")
        expect(url).to_be_disabled()  # read-only view
        expect(page.get_by_role("radiogroup", name="Server certification")).to_be_visible()

        page.get_by_role("button", name="Edit").click()
        online = page.get_by_role("checkbox", name="Online Request")
        broadcast = page.get_by_role("checkbox", name="Broadcast Request")
        expect(online).to_be_enabled()
        expect(url).to_be_disabled()
        expect(broadcast).to_be_disabled()
        online.check()
        expect(url).to_be_enabled()
        expect(broadcast).to_be_enabled()
        online.uncheck()
        expect(url).to_be_disabled()
        online.check()
        url.fill("https://oicp.example.com/base")
        broadcast.check()
        page.get_by_role("radio", name="Hubject certificate").check()
        page.get_by_role("button", name="Update Service Type").click()

        expect(page.get_by_role("status")).to_have_text("Service type updated.")
        expect(page.get_by_role("button", name="Edit")).to_be_visible()
        expect(url).to_have_value("https://oicp.example.com/base")
        expect(url).to_be_disabled()
    finally:
        context.close()
    saved = served.handle.portal.get_service_type("DE*B12", "authorization")
    assert saved.settings["online_request"] is True and saved.settings["broadcast_request"] is True
    assert saved.settings["service_url"] == "https://oicp.example.com/base" and saved.version == '"1"'
