"""Rung 5: fine-tuning on train, early-stopped on val, built on the best prompt.

It is the most expensive rung, so it runs only when asked ([finetune] in rung.toml, or
`rung eval --rung finetune`) and only on data the audit does not call "not ready" unless
forced. The tuned pipeline is the prompt rung's winner with the model swapped for the tuned
one, so the paired test against cheaper rungs isolates what training added. Each tune lives
in a folder named by everything that shaped it: a rerun picks a finished tune up, an
interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rung.data.example import Example
from rung.finetune.methods import METHODS
from rung.finetune.folder import tune_folder
from rung.finetune.record import TuneResult, save_record
from rung.finetune.train import fine_tune, require_ready
from rung.models.registry import fingerprint
from rung.pipeline import Pipeline, uncalibrated
from rung.rungs.base import Candidate, Rung, choose_on_val, val_work
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.finetune.artifacts import PastTune
    from rung.models.cache import ResponseCache
    from rung.rungs.base import StageReporter


class FineTuneRung(Rung):
    name = "finetune"

    def __init__(self, best_prompt: Pipeline, tunes: Path, *, force: bool = False,
                 past: "PastTune | None" = None) -> None:
        self.best_prompt, self.tunes, self.force, self.past = best_prompt, tunes, force, past
        self.tune: TuneResult | None = None

    def build(
        self, task: TaskSpec, train: Sequence[Example], val: Sequence[Example],
        reporter: "StageReporter | None" = None, cache: "ResponseCache | None" = None,
    ) -> tuple[Pipeline, list[Candidate]]:
        if self.past is not None:  # yesterday's tune, measured again beside today's rungs
            self.tune = self.past.tune
            return self._choose(task, self.past.pipeline, val, reporter, cache)
        self.tune = self.train(task, train, val, reporter)
        base = self.tuning_base(task)
        stale = (self.tune.regression or {}).get("threshold") not in (
            None, task.finetune.regression_threshold)  # a reused tune, a threshold changed since
        if self.tune.regression is None or stale:
            check = reporter("finetune: general-capability suite, base vs tuned", 1) \
                if reporter else None
            self.tune.regression = capability_regression(task, base, self.tune)
            save_record(self.tune, base)
            if check:
                check(1)
        settings = task.finetune
        details = {**base.details, "method": settings.method, "rank": settings.rank,
                   "alpha": settings.alpha, "best_step": self.tune.best_step,
                   "tune": self.tune.artifact.parent.name}
        pipeline = replace(base, rung=self.name, model=str(self.tune.artifact),
                           details=details)
        return self._choose(task, pipeline, val, reporter, cache)

    def tuning_base(self, task: TaskSpec) -> Pipeline:
        """The pipeline the tune is trained (and then asked) through: the best prompt, or
        the same with [finetune] instruction in place of its instruction. Never calibrated:
        the base model's content-free probabilities say nothing about the tuned model's."""
        base = uncalibrated(self.best_prompt)
        if task.finetune.instruction is None:
            return base
        return replace(base, instruction=task.finetune.instruction)

    def train(self, task: TaskSpec, train: Sequence[Example], val: Sequence[Example],
              reporter: "StageReporter | None" = None) -> TuneResult:
        """The tune alone, in the folder named by what shapes it (see `tune_folder`)."""
        require_ready(task, force=self.force)
        base = self.tuning_base(task)
        base_fp = fingerprint(base.model, base_dir=task.root)
        out = tune_folder(self.tunes, task, base, train, val, base_fp)
        callbacks: list[Any] = []
        if reporter is not None:  # a bar of optimizer steps, from when training begins
            from rung.finetune.progress import StepProgress

            stage = f"finetune: training ({task.finetune.method})"
            callbacks.append(StepProgress(reporter, stage))
        self.tune = fine_tune(task, base, train, val, out, callbacks=callbacks)
        return self.tune

    def _choose(self, task: TaskSpec, pipeline: Pipeline, val: Sequence[Example],
                reporter: "StageReporter | None", cache: "ResponseCache | None",
                ) -> tuple[Pipeline, list[Candidate]]:
        progress = reporter(f"{self.name}: scoring on val",
                            val_work(task, 1, len(val))) if reporter else None
        method = pipeline.details.get("method", "lora")
        label = method + (f" r={pipeline.details.get('rank')}"
                          if METHODS[method].trains == "lora" else "")
        return choose_on_val(task, [(label, pipeline)], val, progress, cache)


def capability_regression(task: TaskSpec, base: Pipeline, tune: TuneResult) -> dict:
    """The bundled general-capability suite on the base and the tuned model: forgetting the
    rest of the world is the seeds' fourth overfitting signal, and curves cannot show it."""
    from rung.finetune.regression import capability_check

    check = capability_check(base.model, str(tune.artifact), base_dir=task.root,
                             threshold=task.finetune.regression_threshold)
    return check.to_dict()
