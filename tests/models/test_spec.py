"""ModelSpec: price and latency arithmetic, secret keys, and what the spec refuses."""

from __future__ import annotations

import pytest

import orchestra as oc

KEY = "sk-test-0123456789abcdef"


def test_cost_is_tokens_times_per_million_prices() -> None:
    """cost() prices input and output tokens separately, in USD per 1M tokens."""
    spec = oc.ModelSpec(name="m", model="x/y", input_cost=2.5, output_cost=10.0)
    assert spec.cost(input_tokens=1_000_000, output_tokens=0) == pytest.approx(2.5)
    assert spec.cost(input_tokens=0, output_tokens=1_000_000) == pytest.approx(10.0)
    assert spec.cost(input_tokens=2_000, output_tokens=500) == pytest.approx(0.005 + 0.005)
    assert spec.cost(input_tokens=0, output_tokens=0) == 0.0


def test_free_model_costs_nothing() -> None:
    """A spec with default prices costs nothing, whatever the tokens."""
    spec = oc.ModelSpec(name="m", model="x/y")
    assert spec.cost(input_tokens=10**9, output_tokens=10**9) == 0.0


def test_predict_latency_is_ttft_plus_prefill_plus_decode() -> None:
    """predict_latency = ttft + prompt / prefill_tps + output / decode_tps."""
    spec = oc.ModelSpec(name="m", model="x/y", ttft=0.2, prefill_tps=1000, decode_tps=50)
    assert spec.predict_latency(prompt_tokens=0, output_tokens=0) == pytest.approx(0.2)
    assert spec.predict_latency(prompt_tokens=500, output_tokens=100) == pytest.approx(
        0.2 + 0.5 + 2.0
    )


def test_concurrency_is_infinite_when_unlimited() -> None:
    """`concurrency` is max_concurrency, or infinity without one."""
    assert oc.ModelSpec(name="m", model="x/y").concurrency == float("inf")
    assert oc.ModelSpec(name="m", model="x/y", max_concurrency=4).concurrency == 4


def test_api_key_hidden_in_repr_str_and_json() -> None:
    """The API key never shows in repr, str or JSON dumps, yet stays usable."""
    spec = oc.ModelSpec(name="m", model="x/y", api_key=KEY)
    assert KEY not in repr(spec)
    assert KEY not in str(spec)
    assert KEY not in spec.model_dump_json()
    assert KEY not in str(spec.model_dump())
    assert spec.api_key is not None
    assert spec.api_key.get_secret_value() == KEY


def test_api_key_hidden_in_validation_errors() -> None:
    """A spec that fails validation does not echo its API key in the error."""
    with pytest.raises(oc.ConfigError) as info:
        oc.ModelSpec(name="m", model="x/y", api_key=KEY, input_cost=-1)
    assert KEY not in str(info.value)


def test_reserved_litellm_params_are_config_error_naming_them() -> None:
    """litellm_params may not set what orchestra sets itself; the error names each clash."""
    with pytest.raises(oc.ConfigError, match="api_key, stream cannot go in litellm_params"):
        oc.ModelSpec(
            name="m", model="x/y", litellm_params={"stream": True, "api_key": "k", "seed": 1}
        )


@pytest.mark.parametrize(
    "key",
    [
        "api_base",
        "max_retries",
        "num_retries",
        "messages",
        "model",
        "timeout",
        "tools",
        "input_cost_per_token",
    ],
)
def test_each_reserved_param_is_refused(key: str) -> None:
    """Each parameter orchestra controls is refused in litellm_params."""
    with pytest.raises(oc.ConfigError, match=key):
        oc.ModelSpec(name="m", model="x/y", litellm_params={key: 1})


@pytest.mark.parametrize("key", ["fallbacks", "base_url"])
def test_litellm_params_cannot_bypass_orchestra_control(key: str) -> None:
    """litellm's own `fallbacks` (hidden calls) and `base_url` (api_base alias) are refused too."""
    with pytest.raises(oc.ConfigError, match=key):
        oc.ModelSpec(name="m", model="x/y", litellm_params={key: ["openai/gpt-4o"]})


def test_provider_options_pass_validation() -> None:
    """Ordinary provider options (temperature, seed) are accepted as they are."""
    spec = oc.ModelSpec(name="m", model="x/y", litellm_params={"temperature": 0.1, "seed": 7})
    assert spec.litellm_params == {"temperature": 0.1, "seed": 7}


@pytest.mark.parametrize("field", ["input_cost", "output_cost"])
def test_negative_prices_are_config_error(field: str) -> None:
    """A negative price is refused, naming the field and the spec."""
    with pytest.raises(oc.ConfigError, match=rf"ModelSpec 'm'[\s\S]*{field}"):
        oc.ModelSpec(name="m", model="x/y", **{field: -0.01})


@pytest.mark.parametrize(
    ("field", "value"),
    [("quality", 1.5), ("prefill_tps", 0), ("decode_tps", -1), ("max_concurrency", 0)],
)
def test_out_of_range_numbers_are_config_error(field: str, value: float) -> None:
    """Quality outside 0..1, zero speeds and zero concurrency are refused."""
    with pytest.raises(oc.ConfigError, match=field):
        oc.ModelSpec(name="m", model="x/y", **{field: value})


def test_self_fallback_is_config_error() -> None:
    """A spec may not fall back to itself."""
    with pytest.raises(oc.ConfigError, match="lists itself in fallbacks"):
        oc.ModelSpec(name="m", model="x/y", fallbacks=["other", "m"])


def test_unknown_field_is_config_error() -> None:
    """A misspelt field is refused rather than ignored."""
    with pytest.raises(oc.ConfigError, match="input_costs"):
        oc.ModelSpec(name="m", model="x/y", input_costs=1.0)  # type: ignore[call-arg]


def test_spec_is_frozen() -> None:
    """Specs are immutable values; change one with model_copy or swap."""
    spec = oc.ModelSpec(name="m", model="x/y")
    with pytest.raises(Exception, match="frozen"):
        spec.quality = 0.9  # type: ignore[misc]


def _chain_text(exc: BaseException) -> str:
    import traceback

    text = "".join(traceback.format_exception(exc))
    link: BaseException | None = exc
    while link is not None:
        text += repr(link) + repr(vars(link))
        link = link.__cause__ or link.__context__
    return text


@pytest.mark.parametrize("field", ["apikey", "key", "api-key", "API_KEY", "token"])
def test_a_misspelt_key_field_never_shows_the_key(field: str) -> None:
    """An unknown field holding a key is named (with a did-you-mean), its value is not: not in
    the message, not in anything chained to it."""
    with pytest.raises(oc.ConfigError, match=rf"{field}: Extra inputs are not permitted") as info:
        oc.ModelSpec.parse({"name": "m", "model": "x/y", field: KEY})
    assert KEY not in _chain_text(info.value)
    if field in ("apikey", "api-key", "API_KEY"):
        assert "did you mean 'api_key'?" in str(info.value)


def test_a_mistyped_secret_field_never_shows_its_value() -> None:
    """A key of the wrong type is refused without echoing it; other fields show what they got."""
    number = 123456789012
    with pytest.raises(oc.ConfigError) as info:
        oc.ModelSpec(name="m", model="x/y", api_key=number, quality=7)  # type: ignore[arg-type]
    assert str(number) not in _chain_text(info.value)
    assert "(got 7)" in str(info.value)


def test_api_base_must_be_an_http_url_and_its_credentials_stay_hidden() -> None:
    """api_base is an http(s) URL; a bad one is refused without showing its password; a good
    one keeps `user:password@` out of the repr and the public form."""
    for bad in ("ftp://host/v1", "http://a b/v1", "http://h:99999/v1", "not a url"):
        with pytest.raises(oc.ConfigError, match="api_base"):
            oc.ModelSpec(name="m", model="x/y", api_base=bad)
    password = "hunter22"
    with pytest.raises(oc.ConfigError) as info:
        oc.ModelSpec(name="m", model="x/y", api_base=f"http://bob:{password}@a b/v1")
    assert password not in _chain_text(info.value)
    spec = oc.ModelSpec(name="m", model="x/y", api_base="http://bob:hunter22@host:8000/v1")
    assert "hunter22" not in repr(spec) and "hunter22" not in str(spec.public())
    assert spec.public()["api_base"] == "http://***@host:8000/v1"


def test_extra_headers_must_be_sendable_and_count_as_secrets() -> None:
    """Headers with line breaks or non-ASCII are refused without echoing them; every header
    value, and options under secret-looking names, are secrets that reprs hide."""
    for value in ("a\r\nX-Injected: 1", "café-secret"):
        with pytest.raises(oc.ConfigError, match="printable ASCII") as info:
            oc.ModelSpec(name="m", model="x/y", litellm_params={"extra_headers": {"X-Key": value}})
        assert value not in _chain_text(info.value)
    spec = oc.ModelSpec(
        name="m",
        model="x/y",
        api_key=KEY,
        litellm_params={
            "extra_headers": {"X-Team": "team-header-value"},
            "aws_secret_access_key": "aws-secret-value",
            "temperature": 0.2,
        },
    )
    assert set(spec.secrets()) == {KEY, "team-header-value", "aws-secret-value"}
    shown = repr(spec)
    assert "team-header-value" not in shown and "aws-secret-value" not in shown
    assert "temperature': 0.2" in shown
