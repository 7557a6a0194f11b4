"""The response cache: identical requests answered from SQLite, free, marked, with a TTL."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.events import ModelCalled
from orchestra.journal import ResponseCache
from orchestra.journal.cache import request_key
from orchestra.models.client import Completion
from orchestra.testing import FakeModel, FakeReply, fake_constellation

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="Facts on GPUs"),
        oc.Task(id="memo", agent="writer", prompt="Memo from {facts}", after=["facts"]),
    ]
)


def test_an_identical_run_is_answered_from_the_cache_for_free(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """The second run of the same plan sends no request, costs nothing, and says so on the
    attempt and in its model_called events."""
    fake.handler = lambda request: FakeReply(f"out {request.task_id}", input_tokens=500)
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake), agents=team, cache=True, on_event=events.append
    )
    first = orch.execute_sync(PLAN)
    calls = len(fake.calls)
    second = orch.execute_sync(PLAN)
    assert len(fake.calls) == calls == 2
    assert second.output == first.output == "out memo"
    assert first.cost_usd > 0 and second.cost_usd == 0
    assert all(a.cached for n in second.nodes.values() for a in n.attempts)
    assert not any(a.cached for n in first.nodes.values() for a in n.attempts)
    hits = [e for e in events if isinstance(e, ModelCalled) and e.cached]
    assert all(e.reason.startswith("cache hit") and e.cost_usd == 0 for e in hits)
    assert [e.task_id for e in hits] == ["facts", "memo"]
    assert orch.cache is not None and orch.cache.path is not None
    assert Path(orch.cache.path).parent == Path(str(orch.journal.path)).parent  # type: ignore[union-attr]


def test_the_cache_is_opt_in_per_agent_and_works_without_a_journal(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """`Cache(agents=[...])` caches only those agents' calls; no journal is needed."""
    fake.handler = lambda request: f"out {request.task_id}"
    cache = oc.Cache(agents=["researcher"], path=str(tmp_path / "cache.sqlite"))
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, cache=cache, journal=None)
    orch.execute_sync(PLAN)
    orch.execute_sync(PLAN)
    assert [c.task_id for c in fake.calls] == ["facts", "memo", "memo"]
    assert oc.Orchestra(models=fake_constellation(fake)).cache is None


def test_entries_expire_and_the_key_covers_what_shapes_the_answer(tmp_path: Path) -> None:
    """An entry is a miss after its TTL; the model string, options, messages and tools all
    change the key, while the spec's name and prices do not."""
    now = [1000.0]
    cache = ResponseCache(tmp_path / "c.sqlite", ttl=60, clock=lambda: now[0])
    spec = oc.ModelSpec(name="a", model="openai/m", input_cost=1)
    messages = [{"role": "user", "content": "hi"}]
    cache.put(spec, messages, [], Completion(model="a", content="hello", cost_usd=0.5))
    hit = cache.get(spec.model_copy(update={"name": "b", "input_cost": 9}), messages, [])
    assert hit is not None and (hit.content, hit.cost_usd, hit.cached, hit.model) == (
        "hello",
        0.0,
        True,
        "b",
    )
    now[0] += 61
    assert cache.get(spec, messages, []) is None
    assert cache.purge() == 1
    cache.close()
    base = request_key(spec, messages, [])
    assert request_key(spec.model_copy(update={"model": "openai/n"}), messages, []) != base
    warm = spec.model_copy(update={"litellm_params": {"temperature": 1}})
    assert request_key(warm, messages, []) != base
    assert request_key(spec, [{"role": "user", "content": "hey"}], []) != base
    assert request_key(spec, messages, [{"type": "function"}]) != base


def test_a_file_that_is_not_a_cache_is_refused(tmp_path: Path) -> None:
    """Pointing the cache at another SQLite file raises JournalError and leaves it alone."""
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE mine (x)")
    with pytest.raises(oc.JournalError, match="not an orchestra response cache"):
        ResponseCache(other, ttl=None)
