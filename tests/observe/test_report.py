"""The HTML run report: what it shows, that it escapes model output, and that it holds no secret."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

import orchestra as oc
from orchestra import events as ev
from orchestra.events import Event
from orchestra.observe.digest import critical_path, digest
from orchestra.observe.report import build_report
from orchestra.testing import FakeModel, FakeReply, fake_constellation

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'
PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}"),
        oc.Task(id="prices", agent="researcher", prompt="Prices of {topic}"),
        oc.Task(
            id="memo", agent="writer", prompt="Memo:\n{facts}\n{prices}", after=["facts", "prices"]
        ),
    ]
)


class _Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def of(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or ""))
        ]


def _tags(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def test_report_from_events_alone(scripted: list[Event]) -> None:
    """From events: DAG nodes, one bar per call, the critical path, reasons and the retry."""
    html = build_report(scripted)
    tags = _tags(html)
    assert [a["data-task"] for a in tags.of("g", "node")] == ["facts", "prices", "memo"]
    critical = [a["data-task"] for a in tags.of("g", "critical")]
    assert critical == ["prices", "memo", "prices", "prices", "memo"]  # DAG nodes, then bars
    bars = sorted(str(a["data-task"]) for a in tags.of("g", "bar"))
    assert bars == ["(plan)", "facts", "memo", "prices", "prices"]
    assert [a["data-task"] for a in tags.of("g", "failed")] == ["prices"]  # the 429
    assert [a["data-model"] for a in tags.of("g", "lane")] == ["boss", "fast", "mid"]
    assert "prices → memo" in html and "2 in parallel" in html
    assert (
        "cheapest with quality &gt;= 0.5" in html and "pinned by agent &#x27;writer&#x27;" in html
    )
    assert "retry_scheduled" in html and "No final output" in html
    run = digest(scripted, None)
    assert {n.task_id: n.slack for n in run.nodes} == {"facts": 0.5, "prices": 0.0, "memo": 0.0}
    assert run.by_model["fast"] == (3, 200, 130, pytest.approx(0.00002))


def test_hostile_output_is_escaped_and_the_page_loads_nothing(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """A model output with script and handlers shows as text; the page has no script at all."""
    fake.responses = {"memo": HOSTILE, "researcher": "facts </pre><marquee>x</marquee>"}
    events: list[Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    result = orch.execute_sync(PLAN, inputs={"topic": "GPUs"})
    path = result.report(tmp_path / "report.html", events=events)
    html = path.read_text(encoding="utf-8")
    tags = _tags(html)
    assert not tags.of("script") and not tags.of("img") and not tags.of("marquee")
    assert all(not k.startswith("on") for _, attrs in tags.tags for k in attrs)
    assert all("src" not in attrs and "href" not in attrs for _, attrs in tags.tags)
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "default-src &#x27;none&#x27;" not in html
    assert "default-src 'none'" in html
    urls = re.findall(r"[a-z]+://[^\s\"'<>]*", html)
    assert set(urls) == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched


def test_no_secret_reaches_the_report(tmp_path: Path) -> None:
    """A spec's API key appears in neither the report nor the events, even when calls fail."""
    secret = "sk-live-SECRET-4242"
    good = FakeModel(responses={"a": "fine"})
    bad = FakeModel(fail_first=100, fail_status=401)
    models = [
        oc.ModelSpec(name="ok", model=good.model("ok"), api_key=secret),
        oc.ModelSpec(name="bad", model=bad.model("bad"), api_key=secret),
    ]
    events: list[Event] = []
    orch = oc.Orchestra(models=models, on_event=events.append)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="assistant", prompt="A", model="ok"),
            oc.Task(id="b", agent="assistant", prompt="B", model="bad"),
        ]
    )
    with pytest.raises(oc.NodeFailed) as info:
        orch.execute_sync(plan)
    html = info.value.result.report(tmp_path / "r.html", events=events).read_text()
    assert "authentication failed" in html
    assert secret not in html and secret not in "".join(e.model_dump_json() for e in events)
    good.close()
    bad.close()


def test_report_of_a_failed_run(fake: FakeModel, team: list[oc.Agent]) -> None:
    """A failed node is marked, its dependents did not run, and its error is shown."""
    bad = FakeModel(fail_first=100, fail_status=401)  # rejected: not worth a retry
    pricey = oc.ModelSpec(name="bad", model=bad.model("bad"), input_cost=50, output_cost=50)
    models = [*fake_constellation(fake), pricey]  # only the task pinned to it goes there
    pinned = [t.model_copy(update={"model": "bad"}) if t.id == "prices" else t for t in PLAN.tasks]
    plan = PLAN.model_copy(update={"tasks": pinned})
    events: list[Event] = []
    orch = oc.Orchestra(models=models, agents=team, on_event=events.append)
    with pytest.raises(oc.NodeFailed) as info:
        orch.execute_sync(plan, inputs={"topic": "GPUs"})
    html = build_report(events, info.value.result)
    tags = _tags(html)
    statuses = {a["data-task"]: str(a["class"]).split() for a in tags.of("g", "node")}
    assert "failed" in statuses["prices"] and "not_run" in statuses["memo"]
    assert 'class="pill failed"' in html and "authentication failed" in html
    assert [a["data-task"] for a in tags.of("g", "failed")] == ["prices", "prices"]  # node, bar
    bad.close()


def test_report_from_a_result_alone(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Without events the report still has the DAG, a bar per attempt and the output."""
    fake.responses = {"memo": "THE MEMO"}
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    result = orch.execute_sync(PLAN, inputs={"topic": "GPUs"})
    tags = _tags(build_report(result=result))
    assert len(tags.of("g", "node")) == 3 and len(tags.of("g", "bar")) == 3
    assert "THE MEMO" in build_report(result=result)


def test_budget_stop_is_shown(team: list[oc.Agent]) -> None:
    """A run stopped by its budget says so at the top of the report."""
    fake = FakeModel(responses={"researcher": FakeReply(content="x", output_tokens=50_000)})
    events: list[Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    with pytest.raises(oc.BudgetExceeded) as info:
        orch.execute_sync(PLAN, inputs={"topic": "GPUs"}, budget=oc.Budget(max_tokens=1000))
    html = build_report(events, info.value.result)
    assert "Stopped by the budget" in html and "pill budget_exceeded" in html
    fake.close()


def test_a_report_needs_something() -> None:
    """With neither events nor a result there is nothing to report."""
    with pytest.raises(ValueError, match="needs the run's events"):
        build_report()


def test_critical_path_prefers_the_longest_chain_then_the_smaller_id() -> None:
    """The longest chain wins; between equal chains the smaller task id does."""
    deps = {"a": set[str](), "b": set[str](), "c": {"a", "b"}}
    assert critical_path(deps, {"a": 2.0, "b": 2.0, "c": 1.0})[0] == ["a", "c"]
    assert critical_path(deps, {"a": 1.0, "b": 2.0, "c": 1.0})[0] == ["b", "c"]
    assert critical_path({}, {}) == ([], {})
    assert critical_path({"x": set[str]()}, {"x": 0.0})[0] == []


def test_rate_limits_appear_in_the_models_table(at: Callable[[float], datetime]) -> None:
    """The report's model table says how often each model was rate limited, how low its
    concurrency went, and how long its calls queued."""
    events: list[Event] = [
        ev.RunStarted(run_id="r", at=at(0)),
        ev.NodeStarted(run_id="r", at=at(0), task_id="a", agent="w"),
        ev.RateLimited(run_id="r", at=at(1), task_id="a", model="fast", pause=1.0, concurrency=4),
        ev.RateLimited(run_id="r", at=at(2), task_id="a", model="fast", pause=1.0, concurrency=2),
        ev.ModelCalled(
            run_id="r", at=at(3), task_id="a", model="fast", reason="r", seconds=0.5, waited=2.5
        ),
        ev.NodeFinished(run_id="r", at=at(3), task_id="a", model="fast", cost_usd=0.0, seconds=3),
        ev.RunFinished(run_id="r", at=at(3), status="succeeded", cost_usd=0.0, seconds=3),
    ]
    html = build_report(events)
    table = html[html.index("<table id='models'>") :]
    assert "2 (down to 2 at a time)" in table and "2.50" in table.split("</table>")[0]
