"""`orchestra models`, `orchestra runs` and the configuration's errors, as a user meets them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.testing import FakeModel, fake_constellation

Orchestra = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow


def test_models_lists_the_constellation_as_a_table_or_json(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """`models` prints every spec; --json one spec per line, never the API key."""
    (tmp_path / "orchestra.toml").write_text(
        '[models.fast]\nmodel = "groq/llama-3.1-8b-instant"\napi_key = "sk-secret-1234"\n'
        '[models.big]\nmodel = "openai/gpt-4o"\ninput_cost = 2.5\n'
    )
    table = orchestra("models")
    assert table.returncode == 0, table.stderr
    assert "groq/llama-3.1-8b-instant" in table.stdout and "2.5" in table.stdout
    assert "unknown" in table.stdout  # fast has no price: unknown, not free
    as_json = orchestra("models", "--json")
    specs = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [s["name"] for s in specs] == ["fast", "big"]
    assert "api_key" not in specs[0] and "sk-secret" not in as_json.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('bos = "x"\n[models.a]\nmodel = "openai/a"\n', "orchestra.toml: unknown key(s) bos"),
        (
            '[budget]\nmax_usd = -1\n[models.a]\nmodel = "openai/a"\n',
            "orchestra.toml: [budget] is invalid:\n  - max_usd:",
        ),
        (
            '[router]\npolicy = "fastest"\n[models.a]\nmodel = "openai/a"\n',
            "orchestra.toml: [router] policy must be one of cheapest",
        ),
        (
            '[router]\npolicy = "fixed"\nmodel = "b"\n[models.a]\nmodel = "openai/a"\n',
            "[router] model must be a model of the constellation (a), not 'b'",
        ),
        (
            '[models.a]\nmodel = "openai/a"\nquality = 2\n',
            "orchestra.toml: ModelSpec 'a' is invalid:\n  - quality:",
        ),
        ("[models.a\n", "orchestra.toml' is not valid TOML"),
    ],
    ids=["unknown-key", "budget", "router-policy", "router-model", "model-field", "syntax"],
)
def test_config_errors_name_the_file_and_the_field(
    orchestra: Orchestra, tmp_path: Path, toml: str, expected: str
) -> None:
    """A bad orchestra.toml exits 2; the message names the file and the field, brackets
    included (they are never read as terminal markup)."""
    (tmp_path / "orchestra.toml").write_text(toml)
    done = orchestra("models")
    assert done.returncode == 2
    assert expected in done.stderr


def test_runs_show_prints_ids_and_errors_verbatim(orchestra: Orchestra, tmp_path: Path) -> None:
    """A run id and an error holding `:memo:` and `[brackets]` show as written, in `runs` and
    `runs show`, and `runs --json` gives one run per line."""
    fake = FakeModel(responses={"a": "ok"})
    orch = oc.Orchestra(models=fake_constellation(fake), journal=tmp_path / "runs.sqlite")
    plan = oc.Plan(tasks=[oc.Task(id="a", agent="assistant", prompt="[bold]hi[/] :memo:")])
    orch.execute_sync(plan, run_id="note:memo:[x]")
    fake.close()
    listing = orchestra("runs")
    assert listing.returncode == 0, listing.stderr
    assert "note:memo:[x]" in listing.stdout and "📝" not in listing.stdout
    shown = orchestra("runs", "show", "note:memo:[x]")
    assert "run note:memo:[x]: succeeded" in shown.stdout
    lines = orchestra("runs", "--json").stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["note:memo:[x]"]
