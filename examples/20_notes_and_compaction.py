"""Notes and compaction: what a node knows beyond its dependencies, and what fits its window.

An agent with `notes=True` gets two tools, `write_note(text)` and `read_notes()`, over notes
shared by the run's nodes; any prompt may use `{notes}` for every note so far, each signed by
its task. When a prompt filled with its dependencies' outputs would not fit the model's
`max_context`, the longest outputs are shortened first: cut in the middle with a marker
(`compaction="truncate"`, the default) or summarised by the cheapest model
(`compaction="summarize"`). Here a scout writes a note, a reader sees it, and a writer on a
small-window model gets a long report cut to fit. Offline, on `FakeModel`:

    python examples/20_notes_and_compaction.py
"""

import orchestra as oc
from orchestra.testing import FakeModel, FakeReply, FakeToolCall


def main() -> None:
    long_report = "GPU prices by region and quarter. " * 400  # about 3,400 tokens
    fake = FakeModel(
        responses={
            "scout": [
                FakeReply(tool_calls=[FakeToolCall("write_note", {"text": "budget is $2M"})]),
                "noted",
            ],
            "report": long_report,
        },
        handler=lambda request: f"({len(request.prompt)} characters of prompt)",
    )
    models = [
        oc.ModelSpec(name="big", model=fake.model("big"), input_cost=1, output_cost=1),
        oc.ModelSpec(name="small", model=fake.model("small"), input_cost=0.1, output_cost=0.1,
                     max_context=2048),
    ]  # fmt: skip
    agents = [
        oc.Agent(name="scout", notes=True, model="big"),
        oc.Agent(name="analyst", model="big"),
        oc.Agent(name="writer", model="small", compaction="truncate"),
    ]
    plan = oc.Plan(
        tasks=[
            oc.Task(id="scout", agent="scout", prompt="Find the budget and note it"),
            oc.Task(id="report", agent="analyst", prompt="Report on GPU prices"),
            oc.Task(id="read", agent="analyst", prompt="Notes so far:\n{notes}", after=["scout"]),
            oc.Task(id="memo", agent="writer", prompt="Memo from:\n{report}", after=["report"]),
        ]
    )
    orch = oc.Orchestra(models=models, agents=agents, journal=None)
    orch.execute_sync(plan)
    print("the reader saw:", fake.calls_for("read")[0].prompt.replace("\n", " | "))
    memo_prompt = fake.calls_for("memo")[0].prompt
    marker = memo_prompt[memo_prompt.index("[...") :].split("]")[0] + "]"
    print(f"the writer's prompt: {len(memo_prompt)} characters (report: {len(long_report)})")
    print(f"cut with the marker {marker!r}")


if __name__ == "__main__":
    main()
