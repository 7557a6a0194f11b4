"""Constellation: construction checks, loading from TOML, hot swap, and lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

import orchestra as oc


def spec(name: str, **fields: object) -> oc.ModelSpec:
    """A spec with a placeholder model string."""
    return oc.ModelSpec(name=name, model=f"test/{name}", **fields)  # type: ignore[arg-type]


def test_duplicate_names_are_config_error() -> None:
    """Two specs with one name are refused."""
    with pytest.raises(oc.ConfigError, match="two models are named 'fast'"):
        oc.Constellation([spec("fast"), spec("mid"), spec("fast")])


def test_unknown_fallback_is_config_error() -> None:
    """A fallback must name a spec of the constellation; the error lists the known ones."""
    with pytest.raises(
        oc.ConfigError, match=r"'fast' falls back to unknown model 'slow'.*fast, mid"
    ):
        oc.Constellation([spec("fast", fallbacks=["slow"]), spec("mid")])


def test_fallback_may_name_a_later_spec() -> None:
    """Fallbacks are checked once every spec is known, whatever the order."""
    models = oc.Constellation([spec("fast", fallbacks=["mid"]), spec("mid")])
    assert models["fast"].fallbacks == ("mid",)


def test_empty_is_config_error() -> None:
    """A constellation needs at least one model."""
    with pytest.raises(oc.ConfigError, match="at least one"):
        oc.Constellation([])


def test_non_spec_is_config_error() -> None:
    """Only ModelSpec objects are accepted."""
    with pytest.raises(oc.ConfigError, match="holds ModelSpec objects"):
        oc.Constellation([{"name": "fast", "model": "x/y"}])  # type: ignore[list-item]


def test_lookup_contains_names_and_order() -> None:
    """Specs keep the order given; `in`, names, len and iteration agree."""
    models = oc.Constellation([spec("mid"), spec("boss"), spec("fast")])
    assert models.names == ["mid", "boss", "fast"]
    assert [s.name for s in models] == ["mid", "boss", "fast"]
    assert len(models) == 3
    assert "boss" in models
    assert "chief" not in models
    assert 3 not in models
    assert models["boss"].model == "test/boss"
    assert repr(models) == "Constellation(mid, boss, fast)"


def test_unknown_name_lookup_is_config_error() -> None:
    """Looking up an unknown model names the known ones."""
    models = oc.Constellation([spec("fast"), spec("mid")])
    with pytest.raises(oc.ConfigError, match="unknown model 'slow'; known models: fast, mid"):
        models["slow"]


# -- from_file ------------------------------------------------------------------------------

TOML = """
[models.boss]
model = "openai/gpt-4o"
input_cost = 2.5
output_cost = 10.0
quality = 0.9
tags = ["planning", "reasoning"]

[models.fast]
model = "groq/llama-3.1-8b-instant"
api_key = "${ORCHESTRA_TEST_KEY}"
fallbacks = ["boss"]
max_concurrency = 4
"""


def test_from_file_reads_model_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[models.NAME] tables become specs in file order; tags, fallbacks and ${VAR} keys work."""
    monkeypatch.setenv("ORCHESTRA_TEST_KEY", "sk-from-env-1234")
    path = tmp_path / "orchestra.toml"
    path.write_text(TOML)
    models = oc.Constellation.from_file(path)
    assert models.names == ["boss", "fast"]
    boss, fast = models["boss"], models["fast"]
    assert boss.model == "openai/gpt-4o"
    assert boss.tags == frozenset({"planning", "reasoning"})
    assert boss.cost(input_tokens=1_000_000, output_tokens=0) == pytest.approx(2.5)
    assert fast.fallbacks == ("boss",)
    assert fast.max_concurrency == 4
    assert fast.api_key is not None
    assert fast.api_key.get_secret_value() == "sk-from-env-1234"


def test_from_file_accepts_str_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path given as a string works as well as a Path."""
    monkeypatch.setenv("ORCHESTRA_TEST_KEY", "k")
    (tmp_path / "o.toml").write_text(TOML)
    assert oc.Constellation.from_file(str(tmp_path / "o.toml")).names == ["boss", "fast"]


def test_from_file_missing_env_var_is_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ${VAR} that is not set is a ConfigError naming the variable."""
    monkeypatch.delenv("ORCHESTRA_TEST_KEY", raising=False)
    path = tmp_path / "orchestra.toml"
    path.write_text(TOML)
    with pytest.raises(oc.ConfigError, match=r"\$\{ORCHESTRA_TEST_KEY\}.*not set"):
        oc.Constellation.from_file(path)


def test_from_file_missing_file_is_config_error(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it."""
    with pytest.raises(oc.ConfigError, match="does not exist"):
        oc.Constellation.from_file(tmp_path / "nope.toml")


def test_from_file_bad_toml_is_config_error(tmp_path: Path) -> None:
    """Bad TOML syntax is a ConfigError, not a TOMLDecodeError."""
    path = tmp_path / "bad.toml"
    path.write_text('[models.fast\nmodel = "x"\n')
    with pytest.raises(oc.ConfigError, match="not valid TOML"):
        oc.Constellation.from_file(path)


def test_from_file_without_models_is_config_error(tmp_path: Path) -> None:
    """A file with no [models.NAME] tables says how to add one."""
    path = tmp_path / "empty.toml"
    path.write_text('title = "nothing"\n')
    with pytest.raises(oc.ConfigError, match=r"no \[models.NAME\] tables"):
        oc.Constellation.from_file(path)


def test_from_file_invalid_spec_is_config_error(tmp_path: Path) -> None:
    """An invalid field in a model table is a ConfigError naming the spec."""
    path = tmp_path / "o.toml"
    path.write_text('[models.fast]\nmodel = "x/y"\ninput_cost = -1\n')
    with pytest.raises(oc.ConfigError, match="ModelSpec 'fast'"):
        oc.Constellation.from_file(path)


def test_from_file_unknown_fallback_is_config_error(tmp_path: Path) -> None:
    """Fallbacks in a file are checked like those given in code."""
    path = tmp_path / "o.toml"
    path.write_text('[models.fast]\nmodel = "x/y"\nfallbacks = ["mid"]\n')
    with pytest.raises(oc.ConfigError, match="unknown model 'mid'"):
        oc.Constellation.from_file(path)


# -- swap -----------------------------------------------------------------------------------


def test_swap_replaces_the_spec() -> None:
    """A good swap changes what the name looks up, keeping the order."""
    models = oc.Constellation([spec("fast"), spec("mid")])
    new = oc.ModelSpec(name="fast", model="cerebras/llama3.1-8b", fallbacks=["mid"])
    models.swap("fast", new)
    assert models["fast"] is new
    assert models.names == ["fast", "mid"]


def test_swap_unknown_name_is_config_error() -> None:
    """Swapping a name the constellation lacks is refused."""
    models = oc.Constellation([spec("fast")])
    with pytest.raises(oc.ConfigError, match="cannot swap unknown model 'mid'"):
        models.swap("mid", spec("mid"))


def test_swap_renamed_spec_is_config_error() -> None:
    """The spec swapped in must carry the same name."""
    models = oc.Constellation([spec("fast"), spec("mid")])
    with pytest.raises(oc.ConfigError, match="is named 'mid'"):
        models.swap("fast", spec("mid"))
    assert models["fast"].model == "test/fast"


def test_swap_unknown_fallback_is_config_error() -> None:
    """A swapped-in spec's fallbacks must exist; a refused swap changes nothing."""
    models = oc.Constellation([spec("fast")])
    with pytest.raises(oc.ConfigError, match="unknown model 'mid'"):
        models.swap("fast", spec("fast", fallbacks=["mid"]))
    assert models["fast"].fallbacks == ()


def test_iteration_is_a_snapshot() -> None:
    """Iterating while swapping does not break: the iterator sees the specs of its start."""
    models = oc.Constellation([spec("fast"), spec("mid")])
    seen = []
    for s in models:
        models.swap("mid", spec("mid", quality=0.9))
        seen.append(s)
    assert [s.quality for s in seen] == [0.5, 0.5]


def test_a_misspelt_key_in_toml_never_shows_the_key(tmp_path: Path) -> None:
    """`api-key = "..."` in a TOML table is an unknown field: named, its value never shown."""
    path = tmp_path / "orchestra.toml"
    path.write_text('[models.fast]\nmodel = "groq/x"\napi-key = "gsk-toml-secret-value"\n')
    with pytest.raises(oc.ConfigError, match="api-key: Extra inputs") as info:
        oc.Constellation.from_file(path)
    assert "gsk-toml-secret-value" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
