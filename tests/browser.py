"""Headless Debian Chromium driven by Playwright, for tests of what a person does in the Airflow UI.

Playwright's own browser download is not used: the Debian package's /usr/bin/chromium is (installed by `make
packages`). The flags keep Chromium from reaching for the network on its own at every start.
"""

from __future__ import annotations

import contextlib
import shutil

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("Debian's chromium is not installed: run `make packages`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def log_in_to_airflow(page, settings, path: str = "/") -> None:
    """Sign in on the embedded stack's Airflow login page, as a person would, then open ``path``. (Opening ``path``
    first and looking for a redirect races the UI: its scripts send an unauthenticated page to the login page only
    after the network went quiet.)"""
    from twinlayer.localstack.services import airflow_login

    user, password = airflow_login(settings)
    base = settings.url("airflow_port")
    page.goto(f"{base}/auth/login", wait_until="networkidle", timeout=60_000)
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
    page.goto(f"{base}{path}", wait_until="networkidle", timeout=60_000)
