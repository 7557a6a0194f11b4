"""The resilience layer's cost on the success path: one call through `Resilience.call`
(breaker check, tenacity retry loop, attempt records) vs the same bare `ModelClient.complete`,
measured back to back in one run against a zero-latency FakeModel.

Run: python benchmarks/resilience.py [--calls N]
"""

from __future__ import annotations

import argparse
import json
import time

import _common  # noqa: F401 - keeps litellm offline: imported before orchestra
import anyio

import orchestra as oc
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.client import Completion, ModelClient
from orchestra.models.resilience import CallContext, Resilience
from orchestra.testing import FakeModel

MESSAGES = [{"role": "user", "content": "hello"}]


async def main(calls: int) -> dict[str, float]:
    fake = FakeModel()
    spec = oc.ModelSpec(name="m", model=fake.model("m"))
    models = oc.Constellation([spec])
    client = ModelClient()
    resilience = Resilience(breakers=CircuitBreakers())

    async def send(target: oc.ModelSpec) -> Completion:
        return await client.complete(target, MESSAGES)

    async def bare() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await client.complete(spec, MESSAGES)
        return time.perf_counter() - started

    async def resilient() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await resilience.call(models, "m", send, CallContext("bench", "t", lambda _e: None))
        return time.perf_counter() - started

    await bare()  # warm litellm up
    base = min([await bare() for _ in range(3)])
    ours = min([await resilient() for _ in range(3)])
    return {
        "ratio": ours / base,
        "overhead_us_per_call": (ours - base) / calls * 1e6,
        "bare_ms_per_call": base / calls * 1e3,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    figures = anyio.run(main, parser.parse_args().calls, backend="asyncio")
    print(
        f"resilience layer: {figures['ratio']:.3f}x a bare call "
        f"(+{figures['overhead_us_per_call']:.0f} us over {figures['bare_ms_per_call']:.2f} ms)"
    )
    print("RESULT " + json.dumps({k: round(v, 4) for k, v in figures.items()}))
