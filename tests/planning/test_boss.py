"""The boss plans well: repairs, streams, replans, and is stopped from looping."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import orchestra as oc
from orchestra.events import Replanned
from orchestra.testing import FakeModel, OpenAICompatibleServer, RecordedRequest, Reply
from orchestra.testing.constellation import fake_constellation

pytestmark = pytest.mark.anyio

GOOD = {
    "tasks": [
        {"id": "facts", "agent": "researcher", "prompt": "Facts on the task"},
        {"id": "memo", "agent": "writer", "prompt": "Memo from {facts}", "after": ["facts"]},
    ],
    "output": "memo",
}


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ('{"tasks": [{"id": "a", "agent": "writer", "prompt": "x"', "no JSON object"),
        ("Here is my plan, I hope you like it: " + json.dumps(GOOD) + " Cheers!", None),
        (
            json.dumps(
                {
                    "tasks": [
                        {"id": "a", "agent": "writer", "prompt": "x", "after": ["b"]},
                        {"id": "b", "agent": "writer", "prompt": "y", "after": ["a"]},
                    ]
                }
            ),
            "cycle",
        ),
        (json.dumps({"tasks": [{"id": "a", "agent": "poet", "prompt": "x"}]}), "unknown agent"),
    ],
    ids=["malformed", "prose", "cycle", "unknown-agent"],
)
async def test_boss_mistakes_are_repaired_in_one_round(
    fake: FakeModel, orch: oc.Orchestra, bad: str, complaint: str | None
) -> None:
    """Malformed JSON, a cycle or an unknown agent go back numbered and are fixed in one round;
    prose around a valid plan needs no repair at all."""
    fake.responses = {"plan": [bad, json.dumps(GOOD)], "researcher": "F", "writer": "M"}
    result = await orch.run("task")
    assert result.output == "M"
    boss_calls = fake.calls_for("plan")
    if complaint is None:
        assert len(boss_calls) == 1
    else:
        assert len(boss_calls) == 2
        feedback = boss_calls[1].messages[-1]["content"]
        assert feedback.startswith("That plan cannot run:\n1. ") and complaint in feedback


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def http_spec(server: OpenAICompatibleServer, name: str, **fields: object) -> oc.ModelSpec:
    return oc.ModelSpec.parse(
        {"name": name, "model": f"openai/{name}", "api_base": server.url, "api_key": "k", **fields}
    )


async def test_streamed_plan_dispatches_before_the_boss_finishes(
    server: OpenAICompatibleServer,
) -> None:
    """With a streaming boss, the first task reaches its model while the plan still streams."""
    plan = {
        "tasks": [
            {"id": "first", "agent": "w", "prompt": "first job"},
            *({"id": f"pad{i}", "agent": "w", "prompt": "padding " * 10} for i in range(3)),
            {"id": "last", "agent": "w", "prompt": "join {first}", "after": ["first"]},
        ],
        "output": "last",
    }
    server.script("boss", [Reply(json.dumps(plan), chunk_delay=0.01)])
    server.handler = lambda request: Reply(f"done: {request.last_user_message[:20]}")
    orch = oc.Orchestra(
        models=[http_spec(server, "boss", stream=True), http_spec(server, "worker")],
        agents=[oc.Agent(name="w", model="worker")],
        boss="boss",
    )
    result = await orch.run("a task")
    boss = server.requests_for("boss")[0]
    first = next(r for r in server.requests_for("worker") if r.last_user_message == "first job")
    assert boss.stream
    assert first.arrived < boss.finished
    assert result.output == "done: join done: first job"
    assert result.plan is not None and len(result.plan.tasks) == 5


async def test_streamed_plan_with_a_bad_task_is_repaired(fake: FakeModel) -> None:
    """A streamed plan with an unknown agent: valid tasks run, the boss repairs the rest
    keeping the dispatched tasks as they were."""
    bad = {"tasks": [GOOD["tasks"][0], {**GOOD["tasks"][1], "agent": "poet"}], "output": "memo"}
    fake.responses = {"plan": [json.dumps(bad), json.dumps(GOOD)], "researcher": "F", "writer": "M"}
    models = fake_constellation(fake)
    models.swap("boss", models["boss"].model_copy(update={"stream": True}))
    orch = oc.Orchestra(
        models=models,
        agents=[oc.Agent(name="researcher"), oc.Agent(name="writer", model="mid")],
        boss="boss",
    )
    result = await orch.run("task")
    assert result.output == "M"
    assert len(fake.calls_for("facts")) == 1  # dispatched from the stream, never re-run
    assert "unknown agent 'poet'" in fake.calls_for("plan")[1].messages[-1]["content"]


def replanning_orchestra(fake: FakeModel, events: list[oc.Event]) -> oc.Orchestra:
    return oc.Orchestra(
        models=fake_constellation(fake, {"boss": {}, "fast": {"retry": {"max_retries": 0}}}),
        agents=[oc.Agent(name="researcher", model="fast"), oc.Agent(name="writer", model="fast")],
        boss="boss",
        on_event=events.append,
    )


FAILING_PLAN = {
    "tasks": [
        {"id": "facts", "agent": "researcher", "prompt": "Facts"},
        {
            "id": "fragile",
            "agent": "writer",
            "prompt": "Fragile step on {facts}",
            "after": ["facts"],
        },
        {"id": "memo", "agent": "writer", "prompt": "Memo: {fragile}", "after": ["fragile"]},
    ],
    "output": "memo",
}
REPLAN = {
    "tasks": [
        {
            "id": "sturdy",
            "agent": "researcher",
            "prompt": "Sturdy step on {facts}",
            "after": ["facts"],
        },
        {"id": "memo2", "agent": "writer", "prompt": "Memo: {sturdy}", "after": ["sturdy"]},
    ],
    "output": "memo2",
}


async def test_failed_node_triggers_a_replan_that_reruns_nothing(fake: FakeModel) -> None:
    """The boss plans only the remaining work; finished nodes never run again."""
    from orchestra.testing import FakeFailure

    events: list[oc.Event] = []
    fake.responses = {
        "plan": [json.dumps(FAILING_PLAN), json.dumps(REPLAN)],
        "fragile": FakeFailure(400),
        "facts": "the facts",
    }
    fake.handler = lambda request: f"{request.task_id} done"
    result = await replanning_orchestra(fake, events).run("write a memo")
    assert result.output == "memo2 done"
    assert len(fake.calls_for("facts")) == 1
    replan_prompt = fake.calls_for("plan")[1].messages[-1]["content"]
    assert "- facts: the facts" in replan_prompt and "Failed: fragile" in replan_prompt
    replanned = [e for e in events if isinstance(e, Replanned)]
    assert [(e.failed_task, e.new_tasks) for e in replanned] == [("fragile", ("sturdy", "memo2"))]
    assert result.plan is not None
    assert [t.id for t in result.plan.tasks] == ["facts", "fragile", "sturdy", "memo2"]
    assert result.nodes["fragile"].error is not None and result.status == "succeeded"


async def test_loop_guard_stops_a_boss_repeating_itself(fake: FakeModel) -> None:
    """A replan proposing the work that failed again stops the run with a clear error."""
    from orchestra.testing import FakeFailure

    events: list[oc.Event] = []
    same_again = {
        "tasks": [
            {
                "id": "retry",
                "agent": "writer",
                "prompt": "Fragile step on {facts}",
                "after": ["facts"],
            }
        ]
    }
    fake.responses = {
        "plan": [json.dumps(FAILING_PLAN), json.dumps(same_again)],
        "fragile": FakeFailure(400),
    }
    with pytest.raises(
        oc.NodeFailed, match="loop guard: the replan proposes work already attempted"
    ):
        await replanning_orchestra(fake, events).run("write a memo")
    assert len(fake.calls_for("plan")) == 2


async def test_loop_guard_stops_a_replan_with_no_work(fake: FakeModel) -> None:
    """A replan that adds nothing is refused by validation, then the run fails clearly: on
    the node's failure, saying why the replan failed, its finished work kept."""
    from orchestra.testing import FakeFailure

    fake.responses = {
        "plan": [json.dumps(FAILING_PLAN), '{"tasks": []}'],
        "fragile": FakeFailure(400),
    }
    with pytest.raises(oc.NodeFailed, match=r"replanning failed: .*no valid plan") as caught:
        await replanning_orchestra(fake, []).run("write a memo")
    assert caught.value.result is not None
    assert isinstance(caught.value.__cause__, oc.PlanError)


async def test_max_replans_zero_fails_at_once(fake: FakeModel) -> None:
    """With max_replans=0 a failure ends the run without asking the boss again."""
    from orchestra.testing import FakeFailure

    fake.responses = {"plan": [json.dumps(FAILING_PLAN)], "fragile": FakeFailure(400)}
    orch = replanning_orchestra(fake, [])
    orch.max_replans = 0
    with pytest.raises(oc.NodeFailed, match="task 'fragile' failed"):
        await orch.run("write a memo")
    assert len(fake.calls_for("plan")) == 1


async def test_structured_output_is_sent_over_http(server: OpenAICompatibleServer) -> None:
    """A boss whose provider supports JSON schemas is asked for one in the request."""
    server.script(
        "gpt-4o-2024-08-06",
        [Reply(json.dumps({"tasks": [{"id": "a", "agent": "w", "prompt": "x"}]}))],
    )

    def answer(request: RecordedRequest) -> Reply:
        return Reply("ok")

    server.handler = answer
    orch = oc.Orchestra(
        models=[http_spec(server, "gpt-4o-2024-08-06"), http_spec(server, "worker")],
        agents=[oc.Agent(name="w", model="worker")],
        boss="gpt-4o-2024-08-06",
    )
    await orch.run("x")
    body = server.requests_for("gpt-4o-2024-08-06")[0].body
    assert body["response_format"]["type"] == "json_schema"  # type: ignore[index]
