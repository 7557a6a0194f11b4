"""The simulated constellation: a whole offline run, deterministic, parallel, on several models."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.plan import render_prompt
from orchestra.testing import FakeReply, FakeRequest
from orchestra.testing import fake as fake_module

TASK = "Compare the unit economics of small and large models"


def test_simulated_run_succeeds_on_several_models() -> None:
    """A planned run succeeds with at least five nodes, on the boss, fast and mid models."""
    result = oc.simulated.orchestra(time_scale=0.0).run_sync(TASK)
    assert result.status == "succeeded"
    assert isinstance(result.output, str)
    assert result.output
    assert len(result.nodes) >= 5
    assert all(node.ok for node in result.nodes.values())
    assert {"boss", "fast", "mid"} <= set(result.usage.by_model)
    assert {node.model for node in result.nodes.values()} >= {"fast", "mid"}
    assert result.usage.cost_usd > 0
    assert result.usage.by_model["boss"].calls >= 1


def test_simulated_plan_has_parallel_branches() -> None:
    """The boss's plan has at least three independent tasks, all dispatched before any finishes."""
    events: list[oc.Event] = []
    result = oc.simulated.orchestra(time_scale=0.0, on_event=events.append).run_sync(TASK)
    assert result.plan is not None
    roots = [task.id for task in result.plan.tasks if not task.after]
    assert len(roots) >= 3
    assert any(task.after for task in result.plan.tasks)
    kinds = [(e.kind, getattr(e, "task_id", None)) for e in events]
    first_finish = next(i for i, (kind, _) in enumerate(kinds) if kind == "node_finished")
    started_early = {task for kind, task in kinds[:first_finish] if kind == "node_started"}
    assert set(roots) <= started_early


def test_simulated_run_is_deterministic() -> None:
    """Two runs of one task give the same plan, outputs and token counts."""
    first = oc.simulated.orchestra(time_scale=0.0).run_sync(TASK)
    second = oc.simulated.orchestra(time_scale=0.0).run_sync(TASK)
    assert first.output == second.output
    assert first.plan == second.plan
    assert {k: n.output for k, n in first.nodes.items()} == {
        k: n.output for k, n in second.nodes.items()
    }
    assert first.usage.input_tokens == second.usage.input_tokens
    assert first.usage.output_tokens == second.usage.output_tokens


def test_task_with_braces_still_plans_and_runs() -> None:
    """Braces in the task are literal text: the plan validates and the workers see them as is."""
    task = "Explain {x} and {{y}}"
    result = oc.simulated.orchestra(time_scale=0.0).run_sync(task)
    assert result.status == "succeeded"
    assert len(result.nodes) >= 5
    assert result.plan is not None
    roots = [task for task in result.plan.tasks if not task.after]
    assert roots
    assert all("{x} and {{y}}" in render_prompt(task.prompt, {}) for task in roots)


@pytest.mark.parametrize("name", sorted(oc.simulated.PROFILES))
def test_simulated_specs_follow_profiles(name: str) -> None:
    """Each simulated spec carries its profile's prices, quality and speeds."""
    profile = oc.simulated.PROFILES[name]
    spec = oc.simulated.constellation(time_scale=1.0)[name]
    for field in ("input_cost", "output_cost", "quality", "ttft", "prefill_tps", "decode_tps"):
        assert getattr(spec, field) == profile[field], field


@pytest.mark.parametrize("name", sorted(oc.simulated.PROFILES))
def test_profile_latency_is_ttft_prefill_decode(name: str) -> None:
    """predict_latency on a profile is ttft + prompt/prefill_tps + output/decode_tps."""
    profile = oc.simulated.PROFILES[name]
    spec = oc.simulated.constellation(time_scale=1.0)[name]
    prompt, output = int(profile["prefill_tps"]), int(profile["decode_tps"])
    # one second of prefill and one of decode after the time to first token
    assert spec.predict_latency(prompt_tokens=prompt, output_tokens=output) == pytest.approx(
        profile["ttft"] + 2.0
    )


def test_documented_class_speeds() -> None:
    """The speed-first 8B answers a 600-token prompt with 150 tokens far faster than the boss."""
    models = oc.simulated.constellation(time_scale=1.0)
    fast = models["fast"].predict_latency(prompt_tokens=600, output_tokens=150)
    boss = models["boss"].predict_latency(prompt_tokens=600, output_tokens=150)
    assert fast == pytest.approx(0.15 + 600 / 8000 + 150 / 750)
    assert boss == pytest.approx(0.45 + 600 / 3000 + 150 / 90)
    assert fast < boss / 4


@pytest.mark.parametrize("time_scale", [1.0, 0.5, 0.0])
def test_simulated_latency_matches_predict_latency(time_scale: float) -> None:
    """The simulated fake sleeps predict_latency (4 characters a token) times time_scale."""
    models = oc.simulated.constellation(time_scale=time_scale)
    # The simulated FakeModel is not exposed; find it by the id in its model strings.
    fake_id = models["boss"].model.split("/")[1]
    latency = fake_module._instances[fake_id].latency
    assert callable(latency)
    for spec in models:
        request = FakeRequest(
            model=spec.name,
            agent="researcher",
            task_id="t",
            messages=[{"role": "user", "content": "x" * 4000}],
            tools=[],
            index=0,
        )
        reply = FakeReply("y" * 400)
        expected = spec.predict_latency(prompt_tokens=1000, output_tokens=100) * time_scale
        assert latency(request, reply) == pytest.approx(expected), spec.name
