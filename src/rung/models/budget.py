"""Dollars a climb may spend at remote models (`rung climb --budget USD`).

One Budget is shared by every remote model of a climb. Each request, and each retry of it,
reserves its worst case (the prompt's UTF-8 bytes as tokens in, every token it may write out)
before it is sent, so requests in flight together cannot overshoot, and settles at what the
server's usage fields say it cost (where a server sends none, at an estimate from the prompt's
and the answer's text). A request that would pass the limit is not sent: the climb stops with
BudgetReached, and everything answered so far is in the response cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rung.errors import ModelError


class BudgetReached(ModelError):
    """The next request would take the climb past `--budget`."""


@dataclass
class Budget:
    """Dollars a climb may spend at remote models, shared by all of them. Each attempt at a
    request (rung retries them itself, so none goes uncounted) reserves its worst case (the
    prompt's bytes plus every token it may write) before it is sent and settles at what the
    server's usage fields say it cost: an attempt that timed out or was cut off at its worst
    case (the server may have billed it), one answered with an error status at nothing."""

    limit: float
    prices: dict[str, Any]  # model name -> ApiPrice ([costs] api)
    spent: float = 0.0
    reserved: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def price(self, model: str, tokens_in: int, tokens_out: int) -> float:
        p = self.prices[model]
        return tokens_in / 1e6 * p.input_per_million + tokens_out / 1e6 * p.output_per_million

    def reserve(self, model: str, tokens_in: int, tokens_out: int) -> float:
        worst = self.price(model, tokens_in, tokens_out)
        with self.lock:
            if self.spent + self.reserved + worst > self.limit:
                raise BudgetReached(
                    f"the budget of {_dollars(self.limit)} is reached: {_dollars(self.spent)} "
                    f"spent, and the next request to {model} could cost up to "
                    f"{_dollars(worst)}",
                    fix="every answer so far is cached: run again with a larger --budget to "
                        "go on from here (rung climb PATH --dry-run estimates the whole climb)")
            self.reserved += worst
        return worst

    def settle(self, reserved: float, model: str, tokens_in: int, tokens_out: int) -> None:
        with self.lock:
            self.reserved -= reserved
            self.spent += self.price(model, tokens_in, tokens_out)


def _dollars(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4g}"


_BUDGET: list[Budget] = []  # the climb's budget while it runs (set_budget)


def set_budget(budget: Budget | None) -> None:
    _BUDGET.clear()
    if budget is not None:
        _BUDGET.append(budget)


def current_budget() -> Budget | None:
    return _BUDGET[0] if _BUDGET else None
