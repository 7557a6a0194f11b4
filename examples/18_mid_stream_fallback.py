"""Mid-stream fallback: a stream that breaks half-way is thrown away, never half-used.

A spec with `stream=True` reads its answer as a stream. When the stream is cut (the connection
drops after some chunks), stalls longer than `stream_timeout`, or breaks, the partial text is
discarded and the call is retried or falls back like any failed call: the node's output is
always one whole answer. Here the primary server cuts its stream after two chunks, on every
try; the call falls back to a second server. Against orchestra's OpenAI-compatible test server
on 127.0.0.1, offline:

    python examples/18_mid_stream_fallback.py
"""

import orchestra as oc
from orchestra.testing.server import OpenAICompatibleServer, Reply, StreamCut


def main() -> None:
    cut = StreamCut(content="The first half of an answer that never", after_chunks=2)
    with OpenAICompatibleServer(default=cut) as primary, OpenAICompatibleServer() as backup:
        backup.script("qwen", [Reply("A whole answer, from the backup server.")])
        models = [
            oc.ModelSpec(
                name="primary",
                model="openai/llama",
                api_base=primary.url,
                api_key="none",
                stream=True,
                retry=oc.RetryPolicy(max_retries=1, backoff=0.05),
                fallbacks=["backup"],
            ),
            oc.ModelSpec(name="backup", model="openai/qwen", api_base=backup.url, api_key="none"),
        ]
        orch = oc.Orchestra(
            models=models, agents=[oc.Agent(name="writer", model="primary")], journal=None
        )
        plan = oc.Plan(tasks=[oc.Task(id="memo", agent="writer", prompt="Write the memo")])
        node = orch.execute_sync(plan).nodes["memo"]
        print(f"answered by {node.model}: {node.output}")
        for attempt in node.attempts:
            what = (attempt.error or "ok").rsplit(": ", 1)[-1]  # after the model and the URL
            print(f"  attempt on {attempt.model}: {what}")
        print(
            f"primary streams cut: {len(primary.requests)}, backup answers: {len(backup.requests)}"
        )


if __name__ == "__main__":
    main()
