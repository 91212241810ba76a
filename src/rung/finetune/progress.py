"""Training as a progress stage of optimizer steps, so the longest part of a climb shows it is
moving (and the climb's time left can count it) instead of sitting at 0 of 1 for an hour.

The stage opens when the Trainer begins, because only then is `max_steps` known (epochs x
batches per epoch / gradient accumulation, on this many processes). A resumed tune starts the
bar at its checkpoint's step. Early stopping ends the stage short of its total: the bar says
honestly how far training went.
"""

from __future__ import annotations

from typing import Any, Callable

from transformers import TrainerCallback

from rung.rungs.base import StageReporter


class StepProgress(TrainerCallback):
    """Reports each optimizer step to `reporter`'s stage `stage` (on the main process only:
    under `accelerate launch` every process trains the same steps)."""

    def __init__(self, reporter: StageReporter, stage: str) -> None:
        self.reporter, self.stage = reporter, stage
        self.advance: Callable[[int], None] | None = None
        self.reported = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.advance = self.reporter(self.stage, state.max_steps)
        self._catch_up(state.global_step)  # a resumed tune has done these already

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._catch_up(state.global_step)

    def _catch_up(self, step: int) -> None:
        if self.advance is not None and step > self.reported:
            self.advance(step - self.reported)
            self.reported = step
