"""The sync bridge: each call runs on an event loop of its own, and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.models.loader import flush_litellm_logs, load_litellm
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest

ONE_TASK = oc.Plan(tasks=[oc.Task(id="q", agent="w", prompt="hello")])


def test_litellm_callbacks_hear_each_sync_call_before_it_returns(fake: FakeModel) -> None:
    """litellm hands its callbacks' success and failure logs to a worker on the event loop,
    after the call returns; the bridge's loop ends with the call, so it lets them run first
    (a callback such as an observability exporter would otherwise never hear a sync call)."""
    from litellm.integrations.custom_logger import CustomLogger

    heard: list[str] = []

    class Listener(CustomLogger):
        async def async_log_success_event(
            self, kwargs: Any, response_obj: object, start_time: object, end_time: object
        ) -> None:
            heard.append("success")

        async def async_log_failure_event(
            self, kwargs: Any, response_obj: object, start_time: object, end_time: object
        ) -> None:
            heard.append("failure")

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        return FakeFailure(400) if "fail" in request.prompt else FakeReply("ok")

    fake.handler = answer
    litellm = load_litellm()
    # litellm carries logs that earlier event loops (other tests) left pending into the next
    # loop: let them run before this test's listener is registered.
    anyio.run(flush_litellm_logs)
    before = list(litellm.callbacks)
    litellm.callbacks = [*before, Listener()]
    try:
        orch = oc.Orchestra(
            models=[oc.ModelSpec(name="m", model=fake.model("m"))],
            agents=[oc.Agent(name="w", model="m")],
            journal=None,
        )
        orch.execute_sync(ONE_TASK)
        assert heard == ["success"]
        orch.execute_sync(ONE_TASK)
        assert heard == ["success", "success"]
        failing = oc.Plan(tasks=[oc.Task(id="q", agent="w", prompt="fail")])
        with pytest.raises(oc.NodeFailed):
            orch.execute_sync(failing)
        assert heard == ["success", "success", "failure"]
    finally:
        litellm.callbacks = before
