"""`RecordedConstellation`: real models' recorded answers, replayed through the real call path.

A recorded routing data set (a folder, read by `RecordedConstellation.load`) holds, for each
query, the answer every model gave, with its token counts. A recorded constellation is a
`FakeModel` whose handler looks the call's prompt up (by its SHA-256) and answers as the asked
model did: the same text, the same input and output tokens — so the cost is the recorded tokens
times the spec's prices, exactly as live. Policies, cascades and checks are measured offline
through the same Orchestra path as live models, and never see which query they answer: only
its prompt.

Files read from the data directory: `{split}.jsonl` (the prompts and token counts; the labels
in it are not kept), `responses_{split}.jsonl.gz` (the answers' text) and `models.json`
(prices and published accuracies).

A recording answers the same every time, so its specs do not retry (a retry would only wait);
`with_faults` makes a copy in which a share of the answers fail, to check that policies
survive failing models.

Example:
    >>> from orchestra.testing import RecordedAnswer, RecordedConstellation, RecordedQuery
    >>> query = RecordedQuery("q1", "gsm", "What is 6 * 7?", {"m": RecordedAnswer("42", 9, 1)})
    >>> recorded = RecordedConstellation([query], prices={"m": (1.0, 2.0)})
    >>> recorded.constellation()["m"].input_cost
    1.0
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from orchestra.errors import ConfigError
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import RetryPolicy
from orchestra.models.spec import ModelSpec
from orchestra.testing.fake import FakeFailure, FakeModel, FakeReply, FakeRequest

__all__ = ["RecordedAnswer", "RecordedConstellation", "RecordedQuery"]


@dataclass(frozen=True)
class RecordedAnswer:
    """What one model answered to one query, and the tokens it took."""

    text: str
    """The answer's text ("": the model answered with empty content)."""
    input_tokens: int
    output_tokens: int
    status: int | None = None
    """When set, the call fails with this HTTP status instead of answering."""


@dataclass(frozen=True)
class RecordedQuery:
    """One recorded query: its prompt, and every model's answer (no label)."""

    qid: str
    task: str
    """The query's type (`gsm`, `math-l5`, `crux` in the zeroeval set)."""
    prompt: str
    """The exact user message every model saw."""
    answers: Mapping[str, RecordedAnswer]


def _digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class RecordedConstellation:
    """Models that answer as real models did, from a recording (see the module docstring).

    Args:
        queries: the recorded queries.
        prices: USD per 1M (input, output) tokens, per model name.
        quality: each model's `ModelSpec.quality` (default 0.5).
        latency: seconds each answer takes (0: at once).
    """

    def __init__(
        self,
        queries: Sequence[RecordedQuery],
        *,
        prices: Mapping[str, tuple[float, float]],
        quality: Mapping[str, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.queries = tuple(queries)
        self.prices = dict(prices)
        self.quality = dict(quality or {})
        answered = {m for q in self.queries for m in q.answers}
        missing = sorted(answered - self.prices.keys())
        if missing:
            raise ConfigError(f"no prices for recorded model(s): {', '.join(missing)}")
        self.models = tuple(m for m in self.prices if m in answered)
        """Model names, in the order of `prices`."""
        self._by_prompt = {_digest(q.prompt): q for q in self.queries}
        self._latency = latency
        self.fake = FakeModel(handler=self._answer, latency=latency)
        """The FakeModel behind every spec."""

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        split: str = "dev",
        *,
        models: Iterable[str] | None = None,
        latency: float = 0.0,
    ) -> RecordedConstellation:
        """Read a recorded split (`{split}.jsonl`, `responses_{split}.jsonl.gz`, `models.json`).

        Args:
            directory: the data set's folder.
            split: `dev` or `test`.
            models: keep only these models (default: all of `models.json`).
            latency: seconds each answer takes.

        Raises:
            ConfigError: a file is missing or malformed.
        """
        folder = Path(directory)
        try:
            catalogue = json.loads((folder / "models.json").read_text(encoding="utf-8"))
            rows = (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            with gzip.open(folder / f"responses_{split}.jsonl.gz", "rt", encoding="utf-8") as f:
                texts = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the recorded {split} split in {folder}: {exc}") from exc
        specs = cast(dict[str, dict[str, Any]], catalogue["models"])
        wanted = set(specs) if models is None else set(models)
        unknown = sorted(wanted - specs.keys())
        if unknown:
            raise ConfigError(f"models not in {folder / 'models.json'}: {', '.join(unknown)}")
        outputs = {str(t["qid"]): cast(dict[str, str], t["outputs"]) for t in texts}
        queries: list[RecordedQuery] = []
        for line in rows:
            if not line.strip():
                continue
            row = json.loads(line)
            qid = str(row["qid"])
            said = outputs.get(qid, {})
            recorded = cast(dict[str, dict[str, Any]], row["models"])
            answers = {
                model: RecordedAnswer(
                    said.get(model, ""), int(facts["input_tokens"]), int(facts["output_tokens"])
                )
                for model, facts in recorded.items()
                if model in wanted
            }
            queries.append(RecordedQuery(qid, str(row["task"]), str(row["prompt"]), answers))
        return cls(
            queries,
            prices={
                m: (float(s["input_usd_per_mtok"]), float(s["output_usd_per_mtok"]))
                for m, s in specs.items()
                if m in wanted
            },
            quality={m: _quality(s) for m, s in specs.items() if m in wanted},
            latency=latency,
        )

    def with_faults(self, share: float, *, seed: int = 0) -> RecordedConstellation:
        """A copy in which a random `share` of the recorded answers fail: half of them answer
        with empty content, the other half with a server error (500).

        Args:
            share: the fraction of (query, model) answers replaced, from 0 to 1.
            seed: the random draw (the same seed replaces the same answers).

        Raises:
            ConfigError: `share` is not between 0 and 1.
        """
        if not 0 <= share <= 1:
            raise ConfigError(f"with_faults needs a share between 0 and 1, not {share}")
        rng = random.Random(seed)
        queries: list[RecordedQuery] = []
        for query in self.queries:
            answers = dict(query.answers)
            for model in sorted(answers):
                if rng.random() < share:
                    answer = answers[model]
                    empty = rng.random() < 0.5
                    answers[model] = replace(
                        answer,
                        text="",
                        output_tokens=0,
                        status=None if empty else 500,
                    )
            queries.append(replace(query, answers=answers))
        return RecordedConstellation(
            queries, prices=self.prices, quality=self.quality, latency=self._latency
        )

    def constellation(self, models: Iterable[str] | None = None) -> Constellation:
        """Specs for `models` (default: all), answering through `fake` at the recorded prices."""
        names = self.models if models is None else tuple(models)
        unknown = sorted(set(names) - set(self.models))
        if unknown:
            raise ConfigError(f"no recorded answers for model(s): {', '.join(unknown)}")
        return Constellation(
            ModelSpec(
                name=name,
                model=self.fake.model(name),
                input_cost=self.prices[name][0],
                output_cost=self.prices[name][1],
                quality=self.quality.get(name, 0.5),
                retry=_NO_RETRY,
            )
            for name in names
        )

    def query(self, prompt: str) -> RecordedQuery | None:
        """The recorded query with exactly this prompt, if any."""
        found = self._by_prompt.get(_digest(prompt))
        return found if found is not None and found.prompt == prompt else None

    def close(self) -> None:
        """Unregister the fake (later calls fail with a clear error)."""
        self.fake.close()

    def _answer(self, request: FakeRequest) -> FakeReply | FakeFailure:
        query = self.query(request.prompt)
        answer = None if query is None else query.answers.get(request.model)
        if answer is None:
            # A 400 is final: retrying a prompt nobody recorded cannot help.
            return FakeFailure(400)
        if answer.status is not None:
            return FakeFailure(answer.status)
        return FakeReply(
            answer.text, input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
        )


# A recording answers the same every time: a retry would only wait for the same answer.
_NO_RETRY = RetryPolicy(max_retries=0)


def _quality(spec: Mapping[str, Any]) -> float:
    published = cast(dict[str, float], spec.get("published_zeroeval_accuracy_pct") or {})
    if not published:
        return 0.5
    return round(sum(published.values()) / len(published) / 100, 3)
