"""The live view: plain lines off a terminal, one redrawn frame on a terminal, NO_COLOR."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import pytest
from rich.console import Console

import orchestra as oc
from orchestra.events import Event
from orchestra.observe.live import LiveView, tree_order
from orchestra.observe.tracker import NodeTrack
from orchestra.testing import FakeModel, fake_constellation

PLAIN = """\
run r1 started: Compare GPUs
plan: boss answered in 1.00s, 700 tokens, $0.003250
plan ready: 3 tasks, 2 edges
  start    facts            researcher
  route    facts            fast         cheapest with quality >= 0.5
  start    prices           researcher
  route    prices           fast         cheapest with quality >= 0.5
  error    prices           fast         model 'fast': rate limited
  retry    prices           model=fast attempt=1 wait=0.5 error=rate limited
  done     facts            fast           0.50s      150 tok  $0.000009
  done     prices           fast           1.00s      180 tok  $0.000011
  start    memo             writer
  route    memo             mid          pinned by agent 'writer'
  done     memo             mid            1.00s      500 tok  $0.000335
run succeeded in 3.00s: 3/3 nodes, 1,530 tokens, $0.003605
"""


def _console(*, terminal: bool, width: int = 110) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=terminal, record=True)


def test_plain_output_of_a_scripted_run(scripted: list[Event]) -> None:
    """Off a terminal, each step of the run is one plain line, without escape codes."""
    out = io.StringIO()
    console = Console(file=out, width=110, record=True)
    with LiveView(console) as view:
        for event in scripted:
            view(event)
    assert console.export_text() == PLAIN
    assert "\x1b[" not in out.getvalue()


def test_plain_output_of_a_real_run(fake: FakeModel, team: list[oc.Agent]) -> None:
    """A run on fakes prints its start, a `done` line per node and the closing line."""
    console = _console(terminal=False)
    view = LiveView(console)
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=view)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="researcher", prompt="A"),
            oc.Task(id="b", agent="writer", prompt="B {a}", after=["a"]),
        ]
    )
    orch.execute_sync(plan, run_id="real")
    lines = console.export_text().splitlines()
    assert lines[0] == "run real started"
    assert [line.split()[1] for line in lines if line.startswith("  done")] == ["a", "b"]
    assert lines[-1].startswith("run succeeded in ") and "2/2 nodes" in lines[-1]


def test_terminal_frame_mid_run(scripted: list[Event], at: Callable[[float], datetime]) -> None:
    """Mid-run the frame shows the tree, each node's state, the progress and the budget."""
    console = _console(terminal=True)
    view = LiveView(console, budget=oc.Budget(max_usd=0.01), clock=lambda: at(1.6))
    for event in scripted[:11]:  # facts done, prices retrying, memo waiting
        view.track.apply(event)
    console.print(view.render(at(1.6)))
    frame = console.export_text()
    assert "orchestra run r1 [running]  Compare GPUs" in frame
    lines = frame.splitlines()

    def row(label: str) -> list[str]:
        return next(line for line in lines if label in line).split()

    assert row("(plan)")[:4] == ["✔", "(plan)", "boss", "boss"] and "planned" in row("(plan)")
    facts = ["✔", "├─", "facts", "researcher", "fast", "1", "0.5s", "150", "0.000009"]
    assert row("├─ facts")[:9] == facts
    assert row("└─ prices")[4:7] == ["fast", "2", "0.6s"]  # on its second attempt
    assert "retry:" in row("└─ prices")
    assert "└─ memo" in frame and "after prices" in frame
    assert "1/3 nodes" in frame and "1.6s" in frame
    assert "cost $0.003259 of $0.01 (32.6%)" in frame and "tokens 850" in frame


def test_terminal_mode_draws_in_place_and_stops_at_the_end(scripted: list[Event]) -> None:
    """On a terminal no plain lines are printed; the final frame shows the finished run."""
    console = _console(terminal=True)
    with LiveView(console, refresh_per_second=4) as view:
        for event in scripted:
            view(event)
        assert view.track.status == "succeeded"
    out = console.export_text()
    assert "plan ready:" not in out  # no plain lines
    assert "[succeeded]" in out and "3/3 nodes" in out and "memo" in out


@pytest.mark.parametrize("no_color", [True, False])
def test_no_color_is_respected(
    scripted: list[Event],
    at: Callable[[float], datetime],
    monkeypatch: pytest.MonkeyPatch,
    no_color: bool,
) -> None:
    """With NO_COLOR set, the terminal frame carries styles but no colour codes."""
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    console = Console(file=out, width=110, force_terminal=True, color_system="truecolor")
    view = LiveView(console)
    for event in scripted:
        view.track.apply(event)
    console.print(view.render(at(3)))
    raw = out.getvalue()
    colours = ("\x1b[32m", "\x1b[36m", "\x1b[38;")
    assert any(code in raw for code in colours) is not no_color
    assert "\x1b[1m" in raw  # bold stays


def test_a_new_run_on_the_same_view_starts_afresh(
    scripted: list[Event], at: Callable[[float], datetime]
) -> None:
    """A second run's RunStarted resets the view's state."""
    view = LiveView(_console(terminal=False))
    for event in scripted:
        view(event)
    view(oc.events.RunStarted(run_id="r2", at=at(10)))
    assert view.track.run_id == "r2" and view.track.total == 0


def test_tree_order_nests_under_the_last_dependency() -> None:
    """A join sits under its last dependency; roots and siblings get the right guides."""
    nodes = {
        "a": NodeTrack("a"),
        "b": NodeTrack("b"),
        "c": NodeTrack("c", after=("a", "b")),
        "d": NodeTrack("d", after=("c",)),
    }
    assert tree_order(nodes) == [("a", "├─ "), ("b", "└─ "), ("c", "   └─ "), ("d", "      └─ ")]


def test_a_run_stopped_midway_is_drawn_as_stopped(
    scripted: list[Event], at: Callable[[float], datetime]
) -> None:
    """Closing the view before the run finished (Ctrl-C) leaves a frame saying stopped, with
    no node still running; off a terminal a closing line says so."""
    console = _console(terminal=True)
    view = LiveView(console, clock=lambda: at(1.6))
    for event in scripted[:11]:
        view.track.apply(event)
    view.close()
    console.print(view.render(at(1.6)))
    frame = console.export_text()
    assert "[stopped]" in frame and "[running]" not in frame
    assert {node.status for node in view.track.nodes.values()} == {"succeeded", "not_run"}
    plain = _console(terminal=False)
    with LiveView(plain) as lines:
        for event in scripted[:5]:
            lines(event)
    assert plain.export_text().splitlines()[-1] == "run r1 stopped before it finished"


def test_the_bar_does_not_fill_while_the_boss_still_plans(
    scripted: list[Event], at: Callable[[float], datetime]
) -> None:
    """While a streaming boss writes the plan, the nodes known so far are not shown as all."""
    run, boss_started = scripted[0], oc.events.NodeStarted
    console = _console(terminal=True)
    view = LiveView(console)
    view.track.apply(run)
    view.track.apply(boss_started(run_id="r1", at=at(0.5), task_id="facts", agent="researcher"))
    view.track.apply(
        oc.events.NodeFinished(
            run_id="r1", at=at(0.9), task_id="facts", model="fast", cost_usd=0.0, seconds=0.4
        )
    )
    console.print(view.render(at(1)))
    assert "1/1+ nodes, planning" in console.export_text()


def test_the_routing_note_is_readable_at_80_columns(
    scripted: list[Event], at: Callable[[float], datetime]
) -> None:
    """At 80 columns the note wraps instead of being cut; the figures stay whole."""
    console = _console(terminal=True, width=80)
    view = LiveView(console)
    for event in scripted[:8]:  # both researchers routed and running
        view.track.apply(event)
    console.print(view.render(at(1.05)))
    frame = console.export_text()
    assert all(len(line) <= 80 for line in frame.splitlines())
    lines = frame.splitlines()
    facts = next(i for i, line in enumerate(lines) if "├─ facts" in line)
    assert lines[facts].rstrip().endswith("cheapest with quality >=")
    assert lines[facts + 1].strip() == "0.5"  # the rest of the note, under it
    assert "…" not in frame


def test_user_text_is_printed_as_it_is() -> None:
    """Brackets and emoji codes in a task reach the screen verbatim, never as markup."""
    console = _console(terminal=False)
    view = LiveView(console)
    view(oc.events.RunStarted(run_id="id:memo:", task="[bold]Compare[/] :rocket: models"))
    assert console.export_text() == "run id:memo: started: [bold]Compare[/] :rocket: models\n"


def test_rate_limits_show_per_model_in_the_frame(at: Callable[[float], datetime]) -> None:
    """A 429 puts the model in the footer: its pauses, its lowered concurrency, and whether
    its queue is paused right now."""
    console = _console(terminal=True)
    view = LiveView(console, clock=lambda: at(1.2))
    view(oc.events.RunStarted(run_id="r", at=at(0)))
    view(oc.events.NodeStarted(run_id="r", at=at(0.1), task_id="a", agent="w"))
    view(
        oc.events.RateLimited(
            run_id="r", at=at(1.0), task_id="a", model="fast", pause=2.0, concurrency=4
        )
    )
    frame = console.export_text() + _text(view.render(at(1.2)))
    assert "rate limits fast: 1x 429, 4 at a time (paused)" in frame
    later = _text(view.render(at(5.0)))
    assert "(paused)" not in later and "fast: 1x 429" in later


def _text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=110, record=True)
    console.print(renderable)
    return console.export_text()


def test_a_running_node_shows_its_model_before_it_finishes(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """The live view's tracker knows a node's model and route while it runs (node_routed)."""
    from orchestra.events import ModelCalled
    from orchestra.observe.tracker import RunTrack

    track = RunTrack()
    seen: list[tuple[str | None, str | None]] = []

    def sink(event: oc.Event) -> None:
        if isinstance(event, ModelCalled):  # mid-node: the call is back, the node not done
            node = track.nodes[event.task_id]
            seen.append((node.model, node.reason))
        track.apply(event)

    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=sink)
    result = orch.execute_sync(oc.Plan(tasks=[oc.Task(id="q", agent="researcher", prompt="x")]))
    assert seen == [(result.nodes["q"].model, result.nodes["q"].route)]
