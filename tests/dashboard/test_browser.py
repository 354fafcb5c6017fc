"""The dashboard in a real headless browser: three demo nodes Up, then a killed one Suspect and
Down on screen, with a screenshot of each state.

Debian's ``chromium`` driven through ``chromium-driver`` by Selenium (``.ci/run`` installs both).
This test fails, never skips, when the browser cannot start. Screenshots go to
``$CINEMA_DASHBOARD_SCREENSHOTS`` if set, else to the test's temporary directory; their paths
are printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from cinema.dashboard import Dashboard
from examples.cluster_demo import KvProcess, free_ports

pytestmark = pytest.mark.anyio

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1400",
]
GOSSIP, SUSPECT = 0.2, 1.0


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium; a failure to start it fails the test (CI installs it)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert Path(CHROMEDRIVER).exists(), (
        f"{CHROMEDRIVER} is missing: apt-get install chromium-driver"
    )
    profile = tempfile.mkdtemp(prefix="cinema-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    where = os.environ.get("CINEMA_DASHBOARD_SCREENSHOTS")
    folder = Path(where) if where else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _statuses(driver: WebDriver) -> dict[str, str]:
    # Read in one script call: the page re-renders its rows on every update.
    pairs = driver.execute_script(
        "return [...document.querySelectorAll('#members tbody tr')]"
        ".map(r => [r.dataset.member, r.querySelector('span.status').textContent])"
    )
    return {str(member): str(status) for member, status in pairs}


def _wait_for(driver: WebDriver, expected: dict[str, str], timeout: float) -> None:
    def shown(d: WebDriver) -> bool:
        return _statuses(d) == expected

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        shown, message=f"the page never showed {expected}"
    )


def _shoot(driver: WebDriver, path: Path) -> None:
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")


async def test_the_page_shows_three_nodes_up_then_a_killed_one_suspect_and_down(
    browser: WebDriver, screenshots: Path
) -> None:
    ports = free_ports(3)
    options = ["--gossip-interval", str(GOSSIP), "--suspect-timeout", str(SUSPECT)]
    seed = f"127.0.0.1:{ports[0]}"
    nodes = [
        KvProcess("node-1", ports[0], None, options),
        KvProcess("node-2", ports[1], seed, options),
        KvProcess("node-3", ports[2], seed, options),
    ]
    n1, n2, n3 = nodes
    async with n1, n2, n3, anyio.create_task_group() as tg:
        for node in nodes:
            await node.start(tg)
        async with Dashboard([seed], port=0, interval=0.25) as dashboard:
            await anyio.to_thread.run_sync(browser.get, dashboard.url)
            up = {"node-1": "Up", "node-2": "Up", "node-3": "Up"}
            await anyio.to_thread.run_sync(_wait_for, browser, up, 30.0)
            # The charts and tables have data too: the store's actor type lives on node-1.
            placement = browser.find_element(By.CSS_SELECTOR, "#placement").text
            assert "KVStore" in placement
            registry = browser.find_element(By.CSS_SELECTOR, "#registry").text
            assert "kv-store" in registry
            await anyio.to_thread.run_sync(_shoot, browser, screenshots / "1-all-up.png")

            n3.kill()
            suspect = {"node-1": "Up", "node-2": "Up", "node-3": "Suspect"}
            await anyio.to_thread.run_sync(_wait_for, browser, suspect, 20.0)
            await anyio.to_thread.run_sync(_shoot, browser, screenshots / "2-node-3-suspect.png")
            down = {"node-1": "Up", "node-2": "Up", "node-3": "Down"}
            await anyio.to_thread.run_sync(_wait_for, browser, down, 20.0)
            await anyio.to_thread.run_sync(_shoot, browser, screenshots / "3-node-3-down.png")
            timeline = browser.find_elements(By.CSS_SELECTOR, "#timeline rect")
            assert len(timeline) > 3
        for node in (n2, n1):
            assert await node.stop() == 0
        tg.cancel_scope.cancel()
    for name in ("1-all-up.png", "2-node-3-suspect.png", "3-node-3-down.png"):
        assert (screenshots / name).stat().st_size > 10_000
