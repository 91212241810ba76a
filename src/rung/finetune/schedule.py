"""When a tune reads val loss, and when it stops: the seeds' early stopping on val.

Apart from the run because the two rules are the tune's whole guard against memorising and
each has a trap that is easy to reintroduce: read val too seldom and patience can never run
out (hence never fewer than patience + 2 readings, and a step count set once the run's length
is known); count every new best as an improvement and a val loss creeping down by hairs
resets patience for ever (hence diagnose's FLAT, the same threshold that reads the curves
afterwards). arguments.py asks `evaluations` for its default share of steps; trainer.py
hands the two callbacks to the Trainer.
"""

from __future__ import annotations

import math
from typing import Any

from rung.finetune.diagnose import FLAT

EVALS_PER_EPOCH = 2  # val loss readings an epoch when [finetune] eval_steps is not set


def evaluations(epochs: float, patience: int) -> int:
    """How many times a run reads val loss when [finetune] eval_steps is not set:
    EVALS_PER_EPOCH an epoch, and never fewer than patience + 2 (a first reading, one that
    improves on it, then `patience` worse ones), else early stopping could never fire: once
    an epoch, three epochs and a patience of two would end on the third reading; twice an
    epoch, one epoch would read twice. A share of all steps, so it holds on any number of
    processes."""
    return max(math.ceil(EVALS_PER_EPOCH * epochs), patience + 2)


def evaluation_steps(max_steps: int, readings: int) -> int:
    """Steps between val readings so that a run of `max_steps` reads val loss `readings`
    times (the Trainer also reads it at the last step): the longest interval that still
    gives that many, or every step when there are fewer steps than readings."""
    if max_steps <= readings or readings < 2:
        return 1 if readings >= 2 else max(1, max_steps)
    return max(1, math.ceil(max_steps / (readings - 1)) - 1)


def evaluation_schedule(readings: int) -> Any:
    """Sets the default schedule once the Trainer knows its steps: a share of them, as
    transformers takes it, is rounded up, and ceil(steps x share) can give fewer readings
    than asked (9 steps at a quarter: every 3, three readings)."""
    from transformers import TrainerCallback

    class EvaluationSchedule(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            state.eval_steps = state.save_steps = evaluation_steps(state.max_steps, readings)

    return EvaluationSchedule()


def early_stopping(patience: int) -> Any:
    """Early stopping on val loss, where an improvement must be one: below the reference
    (the val loss of the last evaluation that improved) by more than diagnose's FLAT share
    of it. transformers' own threshold is absolute and 0 by default, so a val loss creeping
    down by hairs, each reading a new best, would reset its patience for ever while train
    loss fell: the memorisation the seeds tell early stopping to catch. Its reference and
    count travel with a checkpoint, so a resumed tune stops where an uninterrupted one
    would."""
    from transformers import EarlyStoppingCallback

    class RelativeEarlyStopping(EarlyStoppingCallback):
        def __init__(self, early_stopping_patience: int = 1,
                     early_stopping_threshold: float | None = FLAT) -> None:
            super().__init__(early_stopping_patience, early_stopping_threshold)
            self.reference: float | None = None

        def check_metric_value(self, args: Any, state: Any, control: Any,
                               metric_value: float) -> None:
            share = self.early_stopping_threshold or 0.0
            if self.reference is None or metric_value < self.reference - share * abs(
                    self.reference):
                self.reference = float(metric_value)
                self.early_stopping_patience_counter = 0
            else:
                self.early_stopping_patience_counter += 1

        def state(self) -> dict[str, Any]:
            saved = super().state()
            saved["attributes"]["reference"] = self.reference
            return saved

    # checkpoints name a callback's saved state by its class name: under transformers' name,
    # a tune interrupted before this class existed resumes with its count of worse readings
    RelativeEarlyStopping.__name__ = RelativeEarlyStopping.__qualname__ = "EarlyStoppingCallback"
    return RelativeEarlyStopping(early_stopping_patience=patience)
