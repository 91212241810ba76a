"""What every model backend offers the rest of rung: two operations, nothing more.

Greedy generation answers open tasks. Scoring candidate continuations by log-likelihood
answers classification without parsing free text: the label the model finds most likely
after the prompt is its answer, so a small model's rambling cannot be a format failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from rung.data.example import Message


@dataclass(frozen=True)
class Generation:
    text: str
    tokens_in: int
    tokens_out: int
    error: bool = False  # the request failed (a remote server): counted wrong, never cached


@dataclass(frozen=True)
class ChoiceScores:
    logprobs: list[float]  # summed log-probability of each choice, in the order given
    tokens_in: int  # prompt tokens
    choice_tokens: list[int]  # tokens of each choice (the answer the model "writes")
    # a model whose labels are parsed from its words (a remote API without log-probabilities)
    # and that named none: what it said, which is then the prediction (a format failure)
    answer: str | None = None
    error: bool = False  # the request failed (a remote server): counted wrong, never cached


@runtime_checkable
class Model(Protocol):
    name: str

    @property
    def fingerprint(self) -> str:
        """Identifies the weights: same fingerprint, same answers."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int: ...

    def generate(self, prompts: Sequence[Sequence[Message]], max_new_tokens: int) -> list[Generation]: ...

    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[str]
    ) -> list[ChoiceScores]: ...
