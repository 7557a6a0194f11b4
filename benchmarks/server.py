"""The test server's keep-alive latency with Nagle's algorithm off (ours) vs on (the default).

With HTTP/1.1 keep-alive, Nagle's algorithm against delayed ACKs made every request wait
~40 ms; the server turns it off. Both variants run in this process, back to back.

Run: python benchmarks/server.py [--requests N]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from orchestra.testing.server import OpenAICompatibleServer, _Handler  # pyright: ignore[reportPrivateUsage]


def per_request(requests: int) -> float:
    with OpenAICompatibleServer() as server, httpx.Client(base_url=server.url) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        client.post("/chat/completions", json=body)
        started = time.perf_counter()
        for _ in range(requests):
            client.post("/chat/completions", json=body)
        return (time.perf_counter() - started) / requests


def main(requests: int) -> dict[str, float]:
    ours = per_request(requests)
    _Handler.disable_nagle_algorithm = False
    try:
        nagle = per_request(requests)
    finally:
        _Handler.disable_nagle_algorithm = True
    return {
        "ms_per_request": ours * 1000,
        "nagle_ms_per_request": nagle * 1000,
        "speedup": nagle / ours,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    figures = main(parser.parse_args().requests)
    print(
        f"keep-alive: {figures['ms_per_request']:.2f} ms/request, "
        f"{figures['speedup']:.1f}x faster than with Nagle on "
        f"({figures['nagle_ms_per_request']:.2f} ms/request)"
    )
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in figures.items()}))
