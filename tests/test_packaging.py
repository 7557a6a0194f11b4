"""The distribution: its PyPI name, every install line naming it, the README's two commands."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "orchestra-dag"
# `pip install orchestra`, `'orchestra[otel]'`, `"orchestra[test]"`: PyPI's unrelated project.
WRONG_NAME = re.compile(r"""(pip install\s+(-\w+\s+)*['"]?orchestra\b(?!-dag)|['"]orchestra\[)""")


def _texts() -> list[Path]:
    sources = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), ROOT / "pyproject.toml"]
    sources += [*ROOT.glob("orchestra/**/*.py"), *ROOT.glob("examples/*.py")]
    return sources


def _quickstart() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.DOTALL)


def test_the_installed_distribution_is_orchestra_dag() -> None:
    """The package installs as `orchestra-dag`, provides the `orchestra` command, and its
    `dev` extra includes `test`."""
    dist = metadata.distribution(DISTRIBUTION)
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert scripts == {"orchestra": "orchestra.cli:main"}
    # `dev` names `orchestra-dag[test]`; the build inlines it only if that is our own name.
    extras = {
        extra: {r.split(";")[0] for r in dist.requires or [] if f"extra == '{extra}'" in r}
        for extra in ("test", "dev")
    }
    assert extras["test"] and extras["test"] <= extras["dev"]


def test_no_install_line_names_the_unrelated_orchestra_project() -> None:
    """No doc, message or extra tells users to install `orchestra` (someone else's project)."""
    wrong = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _texts()
        for match in WRONG_NAME.finditer(path.read_text(encoding="utf-8"))
    ]
    assert wrong == []


def test_readme_quickstart_is_two_commands_and_ci_runs_the_second() -> None:
    """The quickstart is exactly two one-line commands, each making its virtualenv, and
    `.ci/run` runs the test command verbatim."""
    commands = _quickstart()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert all(c.startswith("python3 -m venv .venv && . .venv/bin/activate && ") for c in commands)
    assert "orchestra run " in commands[0] and commands[1].endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci
