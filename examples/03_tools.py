"""Tools: plain typed Python functions, sync or async, that an agent's model may call.

A function's signature becomes the JSON schema the model sees and its docstring the
description; arguments are validated before the call. The model here is a `FakeModel`
scripted to ask for both tools in one turn, then answer, so the example runs offline through
the real litellm call path and the real tool loop. Run it with:

    python examples/03_tools.py
"""

import anyio

import orchestra as oc
from orchestra.testing import FakeModel, FakeReply, FakeToolCall, fake_constellation

RATES = {("EUR", "USD"): 1.08, ("USD", "EUR"): 0.93}


def word_count(text: str) -> int:
    """Count the words of a text."""
    print(f"  [tool] word_count({text!r})")
    return len(text.split())


async def exchange_rate(base: str, quote: str = "USD") -> float:
    """How many units of `quote` one unit of `base` buys."""
    await anyio.sleep(0.01)  # stands in for an HTTP call to a rates service
    print(f"  [tool] exchange_rate({base!r}, {quote!r})")
    return RATES[(base, quote)]


def main() -> None:
    fake = FakeModel(
        responses={
            "accountant": [
                FakeReply(
                    tool_calls=[
                        FakeToolCall("exchange_rate", {"base": "EUR"}),
                        FakeToolCall("word_count", {"text": "pay the GPU invoice"}),
                    ]
                ),
                "The invoice is 1,080 USD (1,000 EUR at 1.08); the memo has 4 words.",
            ]
        }
    )
    accountant = oc.Agent(
        name="accountant",
        description="converts currencies and checks memos",
        # Agent turns functions into oc.Tool values; its field is typed as Tools only.
        tools=[word_count, exchange_rate],  # pyright: ignore[reportArgumentType]
    )
    for tool in accountant.tools:
        params = tool.schema()["function"]["parameters"]["properties"]
        print(f"tool {tool.name}({', '.join(params)}): {tool.description}")

    orch = oc.Orchestra(models=fake_constellation(fake), agents=[accountant])
    plan = oc.Plan(tasks=(oc.Task(id="invoice", agent="accountant", prompt="1,000 EUR in USD?"),))
    print("\nrunning:")
    result = orch.execute_sync(plan)

    second = fake.calls_for("invoice")[1]
    print(f"\nthe model saw the tools answer: {second.tool_results}")
    node = result.nodes["invoice"]
    print(f"{len(node.attempts)} model calls on {node.model!r}, ${node.cost_usd:.6f}")
    print(f"answer: {result.output}")


if __name__ == "__main__":
    main()
