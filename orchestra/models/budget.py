"""Budgets by reservation: what a call may cost is held before it is sent.

Vocabulary:
- a **Budget** is a set of limits (USD, tokens, seconds), a frozen value users write;
- an **Account** is one budget being spent: the Orchestra's run defaults, a run, a task. Accounts
  nest (a task's account sits inside its run's), and a call is charged to every account that
  covers it: each limit holds;
- a **Reservation** is a call's estimated cost held against those accounts before it is sent;
  when the answer comes it is *settled*: the estimate is replaced by the real cost. A call that
  does not fit in every account is refused (`BudgetRefused`) and never sent.

So overshoot is bounded by estimation error (a call costing more than it was estimated), never by
how many calls were waiting. Everything here is synchronous and does no I/O: reserving and
settling happen between two awaits, so no other call can slip in between a check and its charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import Field

from orchestra._base import Frozen
from orchestra.errors import OrchestraError

__all__ = ["Account", "Budget", "BudgetRefused", "Reservation"]


class Budget(Frozen):
    """How much a run (or a task) may spend: USD, tokens and wall time. None means no limit.

    Every model call's cost is estimated and reserved before it is sent; a call that would not
    fit is not sent and the run stops with `BudgetExceeded`, keeping every finished node.
    Budgets nest: the Orchestra's budget bounds every run, a run's budget (`execute(...,
    budget=)`) bounds its tasks, a task's budget (`Task(budget=)`) bounds its own calls.

    Example:
        >>> Budget(max_usd=0.50, max_seconds=120).max_tokens is None
        True
        >>> Budget(max_usd=0.50).within(Budget(max_usd=0.20, max_seconds=60))
        Budget(max_usd=0.2, max_tokens=None, max_seconds=60.0)
    """

    max_usd: float | None = Field(default=None, gt=0)
    """Stop once the run has spent this many US dollars."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Stop once the run has used this many tokens (input plus output)."""
    max_seconds: float | None = Field(default=None, gt=0)
    """Stop the run (cancelling calls in flight) after this many seconds."""

    def exceeded(self, *, cost_usd: float, tokens: int) -> str | None:
        """The name of the spending limit reached, if any (`max_seconds` is a deadline)."""
        if self.max_usd is not None and cost_usd >= self.max_usd:
            return "max_usd"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return "max_tokens"
        return None

    def within(self, outer: Budget) -> Budget:
        """This budget held inside `outer`: each limit is the tighter of the two."""

        def tighter(mine: float | None, theirs: float | None) -> float | None:
            if mine is None:
                return theirs
            return mine if theirs is None else min(mine, theirs)

        return Budget(
            max_usd=tighter(self.max_usd, outer.max_usd),
            max_tokens=_int(tighter(self.max_tokens, outer.max_tokens)),
            max_seconds=tighter(self.max_seconds, outer.max_seconds),
        )

    @property
    def limited(self) -> bool:
        """True when USD or tokens are limited (calls need reservations)."""
        return self.max_usd is not None or self.max_tokens is not None


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class BudgetRefused(OrchestraError):
    """A call was not sent: its estimated cost does not fit in a budget that covers it.

    Internal to a run: the scheduler turns it into a stop, and the run raises `BudgetExceeded`
    with every finished node. `limit` names the budget field (`max_usd` or `max_tokens`),
    `account` the budget's owner (`run r1`, `task draft`).
    """

    def __init__(self, message: str, *, limit: str, account: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.account = account


@dataclass
class Account:
    """One budget being spent, inside an optional parent account.

    Example:
        >>> run = Account("run r1", Budget(max_usd=1.0))
        >>> task = Account("task a", Budget(max_usd=0.3), parent=run)
        >>> held = task.reserve(usd=0.2, tokens=100)
        >>> run.reserved_usd, task.reserved_usd
        (0.2, 0.2)
        >>> held.settle(usd=0.25, tokens=120)
        >>> run.spent_usd, run.reserved_usd
        (0.25, 0.0)
        >>> task.reserve(usd=0.1, tokens=10)
        Traceback (most recent call last):
        ...
        orchestra.models.budget.BudgetRefused: ...
    """

    name: str
    budget: Budget
    parent: Account | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    estimated: bool = False
    """True once some of the spending was estimated (a provider reported no usage)."""
    refused: str | None = field(default=None)
    """The limit that refused a call in this account (None while none was refused)."""

    def chain(self) -> list[Account]:
        """This account and every account enclosing it, innermost first."""
        accounts: list[Account] = []
        account: Account | None = self
        while account is not None:
            accounts.append(account)
            account = account.parent
        return accounts

    def child(self, name: str, budget: Budget | None) -> Account:
        """An account inside this one (with no limits of its own when `budget` is None)."""
        return Account(name, budget or Budget(), parent=self)

    def left_usd(self) -> float | None:
        """USD this account and its parents still allow (None: no USD limit anywhere)."""
        lefts = [
            a.budget.max_usd - a.spent_usd - a.reserved_usd
            for a in self.chain()
            if a.budget.max_usd is not None
        ]
        return min(lefts) if lefts else None

    def limited(self) -> bool:
        """True when this account or a parent limits USD or tokens."""
        return any(a.budget.limited for a in self.chain())

    def usd_limited(self) -> bool:
        """True when this account or a parent limits USD."""
        return any(a.budget.max_usd is not None for a in self.chain())

    def reserve(self, *, usd: float, tokens: int) -> Reservation:
        """Hold `usd` and `tokens` in this account and every parent.

        Raises:
            BudgetRefused: some account cannot fit them (nothing is held then).
        """
        chain = self.chain()
        for account in chain:
            limit = account._refusal(usd, tokens)
            if limit is not None:
                account.refused = account.refused or limit
                raise BudgetRefused(
                    f"{account.name} cannot fit a call estimated at ${usd:.6f} and {tokens} "
                    f"tokens ({limit}={getattr(account.budget, limit)}; spent "
                    f"${account.spent_usd:.6f} and {account.spent_tokens} tokens, "
                    f"${account.reserved_usd:.6f} and {account.reserved_tokens} tokens held "
                    "by calls in flight)",
                    limit=limit,
                    account=account.name,
                )
        for account in chain:
            account.reserved_usd += usd
            account.reserved_tokens += tokens
        return Reservation(tuple(chain), usd, tokens)

    def charge(self, *, usd: float, tokens: int, estimated: bool = False) -> None:
        """Count spending that was not reserved (a call made before this account existed)."""
        for account in self.chain():
            account.spent_usd += usd
            account.spent_tokens += tokens
            account.estimated = account.estimated or estimated

    def _refusal(self, usd: float, tokens: int) -> str | None:
        budget = self.budget
        if budget.max_usd is not None and (
            self.spent_usd + self.reserved_usd + usd > budget.max_usd
        ):
            return "max_usd"
        if budget.max_tokens is not None and (
            self.spent_tokens + self.reserved_tokens + tokens > budget.max_tokens
        ):
            return "max_tokens"
        return None


@dataclass
class Reservation:
    """A call's estimated cost, held in its accounts until the call is settled."""

    accounts: Sequence[Account]
    usd: float
    tokens: int
    open: bool = True

    def settle(self, *, usd: float, tokens: int, estimated: bool = False) -> None:
        """Replace the estimate by what the call really cost (once; later calls do nothing)."""
        if not self.open:
            return
        self.open = False
        for account in self.accounts:
            account.reserved_usd -= self.usd
            account.reserved_tokens -= self.tokens
            account.spent_usd += usd
            account.spent_tokens += tokens
            account.estimated = account.estimated or estimated

    def release(self) -> None:
        """Give the estimate back: the call cost nothing (it was never answered)."""
        self.settle(usd=0.0, tokens=0)
