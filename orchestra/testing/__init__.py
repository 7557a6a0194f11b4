"""The testing kit, for our tests and our users': fake models, a test server, fixtures.
Nothing here calls a real provider; the pytest plugin and hypothesis strategies are separate
modules (`orchestra.testing.plugin`, `orchestra.testing.strategies`)."""

from typing import TYPE_CHECKING

from orchestra.testing.constellation import fake_constellation
from orchestra.testing.fake import FakeFailure, FakeModel, FakeReply, FakeRequest, FakeToolCall
from orchestra.testing.recorded import RecordedAnswer, RecordedConstellation, RecordedQuery

if TYPE_CHECKING:
    from orchestra.testing.server import (
        EmptyChoices,
        Error,
        Malformed,
        OpenAICompatibleServer,
        RecordedRequest,
        Reply,
        StreamCut,
        StreamStall,
    )

# The server's names load on first use: `python -m orchestra.testing.server` then runs the
# module once, as the command, rather than after this package imported it as a library.
_SERVER_NAMES = frozenset(
    {
        "EmptyChoices",
        "Error",
        "Malformed",
        "OpenAICompatibleServer",
        "RecordedRequest",
        "Reply",
        "StreamCut",
        "StreamStall",
    }
)


def __getattr__(name: str) -> object:
    if name in _SERVER_NAMES:
        from orchestra.testing import server

        return getattr(server, name)
    raise AttributeError(f"module 'orchestra.testing' has no attribute {name!r}")


__all__ = [
    "EmptyChoices",
    "Error",
    "FakeFailure",
    "FakeModel",
    "FakeReply",
    "FakeRequest",
    "FakeToolCall",
    "Malformed",
    "OpenAICompatibleServer",
    "RecordedAnswer",
    "RecordedConstellation",
    "RecordedQuery",
    "RecordedRequest",
    "Reply",
    "StreamCut",
    "StreamStall",
    "fake_constellation",
]
