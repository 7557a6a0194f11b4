"""What the benchmarks share: litellm kept offline (set before it is first imported) and the
tasks the planning benchmarks run. Imported first by each benchmark; not a benchmark itself."""

import os

for _name, _value in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    # Benchmarks measure runs, not their journals (benchmarks/journal.py turns it on itself).
    "ORCHESTRA_JOURNAL": "off",
}.items():
    os.environ.setdefault(_name, _value)

TASKS = [
    "Compare the unit economics of small and large models",
    "Plan a migration of an inference fleet from GPUs to wafer-scale chips",
    "Assess the risks of running production traffic on three LLM providers",
]
