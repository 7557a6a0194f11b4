"""The testing kit, for our tests and our users': fake models, a test server, fixtures.
Nothing here calls a real provider; the pytest plugin and hypothesis strategies are separate
modules (`orchestra.testing.plugin`, `orchestra.testing.strategies`)."""

from orchestra.testing.constellation import fake_constellation
from orchestra.testing.fake import FakeFailure, FakeModel, FakeReply, FakeRequest, FakeToolCall
from orchestra.testing.recorded import RecordedAnswer, RecordedConstellation, RecordedQuery
from orchestra.testing.server import (
    EmptyChoices,
    Error,
    Malformed,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
    StreamCut,
    StreamStall,
    StreamUnfinished,
)

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
    "StreamUnfinished",
    "fake_constellation",
]
