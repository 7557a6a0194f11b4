"""`orchestra.toml`: a whole system — models, agents, boss, budget, router — in one file.

The file the `orchestra` command reads, and `oc.Orchestra.from_file(path)` too. Values written
`"${VAR}"` come from the environment when the file is read, so keys (and here the server's
address) stay out of it; every error names the file and the field. The models are served by
orchestra's OpenAI-compatible test server on 127.0.0.1: the boss answers with a plan, the
workers with text. Offline:

    python examples/23_orchestra_toml.py
"""

import json
import os
import tempfile
from pathlib import Path

import orchestra as oc
from orchestra.config import read_config
from orchestra.testing.server import OpenAICompatibleServer, RecordedRequest, Reply

CONFIG = """
boss = "chief"

[budget]
max_usd = 0.10

[router]
policy = "cheapest"
min_quality = 0.5

[models.chief]
model = "openai/chief"
api_base = "${LOCAL_URL}"
api_key = "none"
input_cost = 2.5
output_cost = 10.0
quality = 0.9

[models.worker]
model = "openai/worker"
api_base = "${LOCAL_URL}"
api_key = "none"
input_cost = 0.05
output_cost = 0.08
quality = 0.6

[agents.researcher]
description = "finds facts"
"""
PLAN = {"tasks": [{"id": "facts", "agent": "researcher", "prompt": "Facts on GPUs"}]}


def answer(request: RecordedRequest) -> Reply:
    return Reply(json.dumps(PLAN) if request.model == "chief" else "GPUs are fast.")


def main() -> None:
    with OpenAICompatibleServer(default=answer) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ["LOCAL_URL"] = server.url
        path = Path(tmp) / "orchestra.toml"
        path.write_text(CONFIG)
        config = read_config(path)
        print(f"models: {', '.join(config.models.names)}; boss: {config.boss}")
        print(f"budget: ${config.budget.max_usd}; router: {dict(config.router or {})}")
        orch = oc.Orchestra.from_file(path)
        result = orch.run_sync("What should we know about GPUs?")
        node = result.nodes["facts"]
        print(f"facts: {node.output!r} on {node.model} ({node.route})")
        print(f"requests: {[r.model for r in server.requests]}")
        path.write_text(CONFIG.replace("min_quality = 0.5", 'min_quality = "high"'))
        try:
            read_config(path)
        except oc.ConfigError as exc:
            print(f"a bad value: {str(exc).replace(str(path), 'orchestra.toml')}")


if __name__ == "__main__":
    main()
