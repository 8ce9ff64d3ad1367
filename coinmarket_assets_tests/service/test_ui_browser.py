"""The UI in a real browser (Debian's chromium, driven by Playwright): the asset graph is there,
and materializing ``currency_status`` by clicking stores it."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from coinmarket_assets_tests.service.dagster_service import DagsterService, wait_for

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
GROUPS = ["market_data", "metadata", "statistics", "rankings"]
# Set to keep the screenshots after the test, e.g. as CI artifacts.
SCREENSHOT_DIR_ENV = "COINMARKET_SCREENSHOT_DIR"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser.new_page(viewport={"width": 1400, "height": 900})
        browser.close()


def _dismiss_community_prompt(page) -> None:
    """The UI greets a new browser with a "Join the Dagster community" dialog."""
    skip = page.get_by_role("button", name="Skip")
    if skip.is_visible():
        skip.click()


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def _status_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM currency_status").fetchone()
    return row[0] if row else 0


def test_the_asset_graph_shows_and_clicking_materialize_stores_currency_status(
    default_service: DagsterService, default_service_database: str, page, tmp_path: Path
):
    service = default_service
    page.goto(f"{service.url}/asset-groups")
    page.wait_for_selector("text=Global asset lineage")
    page.wait_for_timeout(2000)  # the dialog comes up once the page has settled
    _dismiss_community_prompt(page)
    for group in GROUPS:
        assert page.get_by_text(group, exact=True).first.is_visible(), group
    _screenshot(page, tmp_path, "asset-graph")

    page.goto(f"{service.url}/assets/currency_status")
    page.wait_for_selector("text=Never materialized")
    _dismiss_community_prompt(page)
    page.locator("button", has_text="Materialize").first.click()

    def materialized() -> bool:
        page.wait_for_timeout(1000)
        return "Never materialized" not in page.inner_text("body")

    wait_for(materialized, 120, "the UI to show a materialization")
    shot = _screenshot(page, tmp_path, "currency-status-materialized")
    assert shot.stat().st_size > 10_000
    runs = service.wait_for_runs({"dagster/from_ui": "true"}, 1, seconds=60)
    assert [run["status"] for run in runs] == ["SUCCESS"], runs
    assert _status_rows(default_service_database) == 5  # every coin of the market
