"""Any OpenAI-compatible server: point a ModelSpec at its URL with `api_base`.

This is how orchestra talks to vLLM, llama.cpp's server, Ollama, LM Studio or a gateway: the
litellm model string `openai/<served model name>` plus the server's base URL. Here the server
is orchestra's scripted test server on 127.0.0.1, so the example runs offline over real HTTP;
it runs a two-task plan and prints the requests the server received. Run it with:

    python examples/04_any_openai_compatible_server.py
"""

from pydantic import SecretStr

import orchestra as oc
from orchestra.testing import OpenAICompatibleServer
from orchestra.testing.server import Reply


def main() -> None:
    with OpenAICompatibleServer() as server:
        # litellm strips the `openai/` prefix: the server sees the model as "qwen2.5-7b".
        server.script(
            "qwen2.5-7b",
            [
                Reply("Prefill is compute-bound; decode is memory-bandwidth-bound."),
                Reply("Decode speed, not prefill, sets the latency of long answers."),
            ],
        )
        local = oc.ModelSpec(
            name="local",
            model="openai/qwen2.5-7b",
            # Replace server.url with your vLLM / llama.cpp / Ollama URL, for example
            # "http://127.0.0.1:8000/v1" (vLLM) or "http://127.0.0.1:11434/v1" (Ollama).
            api_base=server.url,
            api_key=SecretStr("none"),  # local servers usually ignore it; the client needs one
            max_concurrency=4,
            timeout=30,
        )
        orch = oc.Orchestra(models=[local])  # no agents given: one general `assistant`
        plan = oc.Plan(
            tasks=(
                oc.Task(id="facts", agent="assistant", prompt="How do prefill and decode differ?"),
                oc.Task(
                    id="takeaway",
                    agent="assistant",
                    prompt="One-line takeaway from:\n{facts}",
                    after=("facts",),
                ),
            )
        )
        result = orch.execute_sync(plan)

        print(f"server at {server.url} saw {len(server.requests)} requests:")
        for request in server.requests:
            prompt = request.last_user_message.replace("\n", " | ")
            print(f"  POST model={request.model} -> {request.status}: {prompt!r}")
        usage = result.usage.by_model["local"]
        print(f"tokens reported by the server: {usage.input_tokens} in, {usage.output_tokens} out")
        print(f"answer: {result.output}")


if __name__ == "__main__":
    main()
