"""Checks and balances: judge a node's answers, accept one, or say why not.

Vocabulary:

- An **answer** (`Answer`) is what one model said for a node: its text (None when the call
  failed), the model, the cost, the cascade stage that asked it. An answer that failed or is
  flawed (empty, cut off at the output limit, invalid against the output schema) is not `ok`:
  checks treat it as saying nothing, so in a cascade it is a reason to escalate.
- A **key** is an answer's *final answer*, normalised, so that two models that reach the same
  result in different words compare equal: `"$17,500"` and `"17500.00"` share the key
  `"17500"`; `'abc'` and `abc` share `abc`; the plain replies `"Paris"` and `"paris."` share
  `paris`. `answer_key` (the default; `orchestra.answers`) extracts the final answer from a
  structured reply (a JSON object with an `answer` field, fenced or not, or a `\\boxed{...}`)
  or an `Answer: ...` line, or takes a short one-line reply as its own answer; a reply with
  none has no key (None) and agrees with nothing. Every check takes its own `key=`.
- A **check** (the `Check` protocol, one async method `judge`) looks at every answer a node has
  so far and gives a **verdict**: accepted, with the answer to keep, or rejected, with a best
  guess and the reason. A cascade (`orchestra.routing.Cascade`) asks more models when a check
  rejects; at the last stage the best guess is kept.

Checks here: `Agree` (at least N answers share a key), `Vote` (plurality, always accepts),
`Schema` (only answers valid against a pydantic type count), `Verify` (another model judges
the answer) and `Aggregate` (mixture-of-agents: another model reads every answer and writes
the final one). The rule shared by all of them: among tied groups
the one holding the *latest* answer wins, because cascades ask stronger models later.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from pydantic import BaseModel, ValidationError

from orchestra.answers import answer_key, final_answer, json_object, normalise_answer
from orchestra.errors import OrchestraError

__all__ = [
    "Aggregate",
    "Agree",
    "Answer",
    "AnswerKey",
    "AskModel",
    "Check",
    "CheckContext",
    "Schema",
    "Verdict",
    "Verify",
    "Vote",
    "answer_key",
    "final_answer",
    "normalise_answer",
    "plurality",
]


@dataclass(frozen=True)
class Answer:
    """What one model answered for a node."""

    model: str
    """Spec name of the model that answered (after any fallback)."""
    text: str | None
    """The reply's text; None when the call failed or the reply was empty."""
    cost_usd: float = 0.0
    stage: int = 0
    """The cascade stage that asked for it, from 0."""
    error: str | None = None
    """Why the answer cannot be used, when it cannot: the call failed (no text), or the reply
    is flawed — cut off at the output limit, or not valid against the output schema (its text
    is kept, a last resort when no model answers usably)."""
    asked: str | None = None
    """The model the route named, when another (a fallback) answered instead."""
    output_tokens: int = 0
    """Completion tokens the answer took, as the provider reported them (learned checks
    read them: a long reasoning often means a hard question)."""

    @property
    def ok(self) -> bool:
        """True when the model answered usably: text, and no flaw (checks judge only these)."""
        return self.text is not None and self.error is None


@dataclass(frozen=True)
class Verdict:
    """A check's judgement: accept `answer`, or reject it (it is then the best guess)."""

    accepted: bool
    answer: Answer | None
    """The answer to keep; when rejected, the best guess (None: no usable answer at all)."""
    reason: str


AskModel = Callable[[str, str], Awaitable[str]]
"""Ask model `name` a one-message `prompt` for the node being judged; returns the reply text.
Its calls count towards the node's usage and emit `model_called` events like any other."""
AnswerKey = Callable[[str], "str | None"]
"""Turns a reply's text into the key answers are compared by (None: no usable answer)."""


@dataclass(frozen=True)
class CheckContext:
    """What a check may use besides the answers: the node's prompt, and its models."""

    prompt: str
    ask: AskModel


class Check(Protocol):
    """Judges a node's answers so far (see the module docstring)."""

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept one of `answers`, or reject them with a best guess and the reason."""
        ...


def plurality(keys: Sequence[str | None]) -> tuple[int, int] | None:
    """The largest group of equal keys: (index of its latest member, its size).

    Ties go to the group holding the latest key (later cascade stages ask stronger models);
    None keys are left out; None when no key is left.

    Example:
        >>> plurality(["7", "9", "7", None, "9"])
        (4, 2)
    """
    sizes: dict[str, int] = {}
    latest: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is not None:
            sizes[key] = sizes.get(key, 0) + 1
            latest[key] = index
    if not sizes:
        return None
    best = max(sizes, key=lambda key: (sizes[key], latest[key]))
    return latest[best], sizes[best]


def shorten(text: str, limit: int = 40) -> str:
    """`text` on one line, cut to `limit` characters with "..." (for reasons and messages)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _keyed(answers: Sequence[Answer], key: AnswerKey) -> list[str | None]:
    return [key(a.text) if a.ok and a.text is not None else None for a in answers]


def latest_answer(answers: Sequence[Answer]) -> Answer | None:
    """The latest answer that has text (None: no model answered)."""
    return next((a for a in reversed(answers) if a.ok), None)


# -- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agree:
    """Accept when at least `min_agree` answers share a key (the classic agreement cascade).

    Example:
        >>> import orchestra as oc
        >>> stage = oc.routing.Stage(("cheap-a", "cheap-b"), check=Agree(2))
    """

    min_agree: int = 2
    key: AnswerKey = answer_key

    def __post_init__(self) -> None:
        if self.min_agree < 1:
            raise ValueError(f"Agree needs min_agree >= 1, not {self.min_agree}")

    def decide(self, answers: Sequence[Answer]) -> Verdict:
        """The verdict, computed without any model call."""
        keys = _keyed(answers, self.key)
        top = plurality(keys)
        if top is None:
            return Verdict(False, latest_answer(answers), "no answer states a final answer")
        index, size = top
        if size >= self.min_agree:
            reason = f"{size} of {len(answers)} answers agree on {shorten(str(keys[index]))!r}"
            return Verdict(True, answers[index], reason)
        shown = ", ".join(repr(shorten(k, 20)) if k is not None else "none" for k in keys)
        return Verdict(
            False, answers[index], f"fewer than {self.min_agree} answers agree ({shown})"
        )

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept the largest group of equal answers if it has `min_agree` members."""
        return self.decide(answers)


@dataclass(frozen=True)
class Vote:
    """Accept the most common answer (ties: the latest answer's group); a cascade's last word.

    It rejects only when no model answered. Answers stating no final answer are outvoted by any
    that does; if none does, the latest answer is kept.
    """

    key: AnswerKey = answer_key

    def decide(self, answers: Sequence[Answer]) -> Verdict:
        """The verdict, computed without any model call."""
        keys = _keyed(answers, self.key)
        top = plurality(keys)
        if top is None:
            latest = latest_answer(answers)
            if latest is None:
                return Verdict(False, None, "no model answered")
            return Verdict(True, latest, "no final answer stated; kept the latest answer")
        index, size = top
        reason = f"vote: {size} of {len(answers)} for {shorten(str(keys[index]))!r}"
        return Verdict(True, answers[index], reason)

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept the plurality answer."""
        return self.decide(answers)


@dataclass(frozen=True)
class Schema:
    """Only answers holding a valid `output_type` object count: the others are flawed.

    An answer whose reply holds no JSON object valid against `output_type` (the whole reply,
    or a fenced block) is set aside like a failed call, its problem in the reason; `then`
    judges the rest (None: accept the latest valid answer). With no valid answer the check
    rejects, so a cascade escalates; at the last stage the node keeps the latest flawed answer
    and its route says so. Put it on every stage whose answers must be valid.

    Example:
        >>> from pydantic import BaseModel
        >>> class Total(BaseModel):
        ...     total: float
        >>> Schema(Total).decide([Answer("fast", '{"total": 12.5}')]).accepted
        True
        >>> print(Schema(Total).decide([Answer("fast", '{"total": "a lot"}')]).reason)
        no answer is a valid Total (fast: total: Input should be a valid number...)
    """

    output_type: type[BaseModel]
    then: Check | None = None
    """Judges the valid answers (None: the latest valid one is accepted)."""

    def screen(self, answers: Sequence[Answer]) -> list[Answer]:
        """The answers, those not valid against `output_type` marked flawed."""
        return [self._screened(a) if a.ok else a for a in answers]

    def _screened(self, answer: Answer) -> Answer:
        name = self.output_type.__name__
        data = json_object(answer.text or "")
        if data is None:
            return replace(answer, error=f"not a valid {name}: it holds no JSON object")
        try:
            self.output_type.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(object)'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            return replace(answer, error=f"not a valid {name}: {problems}")
        return answer

    def decide(self, answers: Sequence[Answer]) -> Verdict:
        """The verdict when `then` is None (no model call)."""
        screened = self.screen(answers)
        latest = latest_answer(screened)
        if latest is not None:
            return Verdict(True, latest, f"{latest.model}'s answer is a valid {self.name}")
        return Verdict(False, self._flawed(screened), self._none_valid(screened))

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Set invalid answers aside, then accept the latest valid one (or ask `then`)."""
        if self.then is None:
            return self.decide(answers)
        screened = self.screen(answers)
        if latest_answer(screened) is None:
            return Verdict(False, self._flawed(screened), self._none_valid(screened))
        return await self.then.judge(screened, context)

    @property
    def name(self) -> str:
        """The output type's name."""
        return self.output_type.__name__

    def _none_valid(self, screened: Sequence[Answer]) -> str:
        problems = "; ".join(
            f"{a.model}: {shorten(a.error.removeprefix(f'not a valid {self.name}: '), 80)}"
            for a in screened
            if a.error
        )
        return f"no answer is a valid {self.name} ({problems or 'no model answered'})"

    @staticmethod
    def _flawed(screened: Sequence[Answer]) -> Answer | None:
        return next((a for a in reversed(screened) if a.text), None)


_VERIFY_PROMPT = """You check another model's answer.

## Task
{prompt}

## Proposed answer
{answer}

Is the proposed answer correct? Reply with YES or NO on the first line, then one sentence why."""


@dataclass(frozen=True)
class Verify:
    """Ask another model (`model`, a spec name) whether the latest answer is correct.

    The verifier's reply must start with YES to accept. Its call is the node's, counted in its
    usage; if it fails, the answer is rejected (a cascade then escalates).

    Example:
        >>> import orchestra as oc
        >>> stage = oc.routing.Stage(("fast",), check=Verify("mid"))
    """

    model: str
    template: str = _VERIFY_PROMPT
    """The verifier's prompt, with `{prompt}` (the node's) and `{answer}` filled in."""

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept the latest answer if the verifier says YES."""
        latest = latest_answer(answers)
        if latest is None or latest.text is None:
            return Verdict(False, None, "no model answered")
        prompt = self.template.replace("{prompt}", context.prompt).replace("{answer}", latest.text)
        try:
            reply = await context.ask(self.model, prompt)
        except OrchestraError as exc:
            reason = f"verifier {self.model!r} failed: {shorten(str(exc), 160)}"
            return Verdict(False, latest, reason)
        first = reply.strip().split("\n", 1)[0].strip().upper()
        verdict = "YES" if first.startswith("YES") else "NO"
        return Verdict(
            verdict == "YES", latest, f"verifier {self.model!r} says {verdict}: {shorten(reply)}"
        )


_AGGREGATE_PROMPT = """You are given a task and answers to it from several models. Some may be \
wrong. Read them critically, then write the best answer to the task yourself, in the format the \
task asks for.

## Task
{prompt}

## Answers
{answers}"""


@dataclass(frozen=True)
class Aggregate:
    """Mixture-of-agents: model `model` reads the proposers' answers and writes the final one.

    The proposers are the models the route asks (`RouteDecision.model` and `also`); once they
    have answered, the aggregator is shown the node's prompt and every answer that has text,
    and its reply becomes the node's output (its `model` is the aggregator). The aggregator's
    call is the node's, counted in its usage. If it fails, or no proposer answered, the check
    rejects with the plurality answer as its best guess (a cascade then escalates).

    Example:
        >>> import orchestra as oc
        >>> stage = oc.routing.Stage(("fast", "mid"), check=Aggregate("boss"))
    """

    model: str
    """The aggregator's spec name."""
    template: str = _AGGREGATE_PROMPT
    """The aggregator's prompt, with `{prompt}` (the node's) and `{answers}` filled in."""
    key: AnswerKey = answer_key
    """Orders the best guess when the aggregator fails (see `Vote`)."""

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept the aggregator's synthesis of every answer so far."""
        texts = [a.text for a in answers if a.ok and a.text is not None]
        if not texts:
            return Verdict(False, None, "no model answered")
        listed = "\n\n".join(f"### Answer {i}\n{t}" for i, t in enumerate(texts, start=1))
        fill = {"prompt": context.prompt, "answers": listed}
        # One pass: a prompt or an answer that quotes "{answers}" is not expanded again.
        prompt = re.sub(r"\{(prompt|answers)\}", lambda m: fill[m.group(1)], self.template)
        guess = Vote(self.key).decide(answers).answer
        try:
            reply = await context.ask(self.model, prompt)
        except OrchestraError as exc:
            reason = f"aggregator {self.model!r} failed: {shorten(str(exc), 160)}"
            return Verdict(False, guess, reason)
        if not reply.strip():
            return Verdict(False, guess, f"aggregator {self.model!r} wrote nothing")
        combined = Answer(model=self.model, text=reply, stage=max(a.stage for a in answers))
        return Verdict(True, combined, f"aggregator {self.model!r} combined {len(texts)} answers")
