"""Notes shared by a run's nodes, and compaction to fit a context window."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.memory import Notes, compact, context_budget, truncate


def test_notes_tools_sign_and_read() -> None:
    """Notes written through the tools are signed by their task and read back in order."""
    notes = Notes()
    assert notes.read() == "(no notes yet)"
    write, read = notes.tools("facts")
    anyio.run(write.call, '{"text": "GPUs cost $2/h"}')
    notes.write("memo", "use the cheap model")
    assert anyio.run(read.call, "{}") == "- [facts] GPUs cost $2/h\n- [memo] use the cheap model"
    assert write.schema()["function"]["parameters"]["required"] == ["text"]


def test_context_budget_leaves_room_for_the_answer() -> None:
    """A quarter of the window (256 to 4,096 tokens) is kept for the answer."""
    assert context_budget(None) is None
    assert context_budget(8192) == 8192 - 2048
    assert context_budget(1000) == 1000 - 256
    assert context_budget(128_000) == 128_000 - 4096


@given(st.text(min_size=0, max_size=3000), st.integers(10, 500))
def test_truncate_fits_and_keeps_both_ends(text: str, tokens: int) -> None:
    """Truncated text fits its token budget and keeps the start (and end) of the text."""
    cut = truncate(text, tokens)
    if len(text) <= tokens * 4:
        assert cut == text
    else:
        assert "characters cut to fit the context window" in cut
        assert len(cut) <= tokens * 4 + 80
        assert cut.startswith(text[:tokens])


@given(
    st.dictionaries(st.sampled_from("abcde"), st.text(max_size=4000), max_size=5),
    st.integers(200, 2000),
)
def test_compact_fits_the_budget_and_spares_short_values(
    values: dict[str, str], budget: int
) -> None:
    """After compaction the values fit the room left; values that fit their share are kept."""
    fixed = "Summarise the following:"
    out = anyio.run(compact, fixed, values, budget)
    room = budget - len(fixed) // 4
    assert sum(len(v) for v in out.values()) <= room * 4 + 90 * len(values)
    for name, text in values.items():
        if len(text) <= 4 * (room // max(1, len(values))):
            assert out[name] == text


@pytest.mark.anyio
async def test_compact_summarises_when_asked() -> None:
    """With a summariser, long values are summarised to their share instead of truncated."""
    asked: list[int] = []

    async def summarise(text: str, tokens: int) -> str:
        asked.append(tokens)
        return "summary"

    out = await compact("x", {"long": "word " * 5000, "short": "ok"}, 400, summarise)
    assert out == {"long": "summary", "short": "ok"}
    assert asked and asked[0] <= 400
