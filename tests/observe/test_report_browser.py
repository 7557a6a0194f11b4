"""The report in a real browser: headless Chromium (Debian's) opens it offline from a file URL.

Needs Debian's `chromium` and pip's `playwright` (the `test` extra); `.ci/run` installs
Chromium. Where it is missing the test fails under CI (`CI` set) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra.events import Event
from orchestra.testing import FakeModel, fake_constellation

# Headless flags that keep Chromium off the network (it otherwise phones home at start).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = (
    "<script>document.title = 'pwned'; window.pwned = true;</script>"
    '<img src=x onerror="window.pwned = true">'
)


def _chromium() -> tuple[Any, str]:
    """Playwright's sync API and Chromium's path, or skip (fail under CI) saying what is missing."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "pip's playwright (pip install -e '.[test]')"
    else:
        if executable is not None:
            return sync_playwright, executable
        missing = "Debian's chromium (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"the browser test needs {missing}; .ci/run must install it")
    pytest.skip(f"needs {missing}")


@pytest.mark.slow
def test_report_renders_in_chromium_offline_and_runs_no_model_script(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """The DAG and timeline render, nothing is fetched, no console error, no injected script."""
    sync_playwright, executable = _chromium()
    fake.responses = {"memo": HOSTILE}
    events: list[Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}"),
            oc.Task(id="prices", agent="researcher", prompt="Prices of {topic}"),
            oc.Task(
                id="memo", agent="writer", prompt="{facts} {prices}", after=["facts", "prices"]
            ),
        ]
    )
    result = orch.execute_sync(plan, inputs={"topic": "GPUs"})
    report = result.report(tmp_path / "report.html", events=events)

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1240, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            nodes = page.locator("svg#dag g.node")
            assert nodes.count() == 3
            assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.task)")) == [
                "facts", "memo", "prices",
            ]  # fmt: skip
            assert page.locator("svg#dag path.edge").count() == 2
            assert page.locator("svg#gantt g.bar").count() == 3
            for chart in ("svg#dag", "svg#gantt"):
                box = page.locator(chart).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 50
            assert page.locator("svg#dag g.node.critical").count() >= 2
            assert "<script>document.title" in page.locator("#output").inner_text()
            assert page.evaluate("window.pwned === undefined")
            assert page.title() == f"orchestra run {result.run_id}"
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert requests == [report.as_uri()]  # the page itself, and nothing else
    assert (tmp_path / "report.png").stat().st_size > 10_000
