"""Rung 4: the best cheaper pipeline, unchanged, on a bigger model.

The seeds' cheapest experiment: "spend an afternoon seeing whether a more capable model simply
solves the problem". Everything but the model stays as the cheaper rungs chose it (prompt,
demonstrations, retrieval), so the paired test against them measures model capacity alone.
Which cheaper pipeline goes up is decided on val, like every other choice on the ladder.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from rung.data.example import Example
from rung.errors import ConfigError
from rung.calibration import calibrated
from rung.pipeline import Pipeline, uncalibrated
from rung.rungs.base import Candidate, Rung
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


def require_large(task: TaskSpec) -> str:
    """`[models] large`, or the error that says how to set it."""
    if task.models.large is None:
        raise ConfigError("the bigger-model rung needs a bigger model", file=task.path,
                          fix='add large = "gemma3-270m" (or any model) under [models]')
    return task.models.large


def best_on_val(built: Sequence[tuple[Pipeline, Sequence[Candidate]]]) -> Pipeline:
    """The cheaper rung whose chosen candidate scored best on val (never on test); a tie
    goes to the cheaper rung. `built` holds each cheaper rung's pipeline and candidates."""
    def val_score(entry: tuple[Pipeline, Sequence[Candidate]]) -> float:
        return max((c.val_score for c in entry[1] if c.chosen), default=float("-inf"))

    return max(built, key=val_score)[0]


class BiggerModelRung(Rung):
    name = "bigger-model"

    def __init__(self, best: Pipeline) -> None:
        self.best = best

    def candidates(self, task: TaskSpec, train: Sequence[Example],
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        large = require_large(task)
        details = {**self.best.details, "from": self.best.rung}
        pipeline = replace(uncalibrated(self.best), rung=self.name, model=large, details=details)
        if self.best.calibration is not None:  # calibrated again, on the model that answers
            pipeline = calibrated(pipeline, cache) or pipeline  # if it gives probabilities
        return [(f"{self.best.rung} on {large}", pipeline)]
