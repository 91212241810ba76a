"""Rung 4: LoRA fine-tuning on train, early-stopped on val, built on the best prompt.

It is the most expensive rung, so it runs only when asked ([finetune] in rung.toml, or
`rung eval --rung finetune`) and only on data the audit does not call "not ready" unless
forced. The tuned pipeline is the prompt rung's winner with the model swapped for base +
adapter, so the paired test against cheaper rungs isolates what training added.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from rung.data.example import Example
from rung.finetune.train import TuneResult, require_ready, train_lora
from rung.pipeline import Pipeline
from rung.rungs.base import Candidate, Rung, choose_on_val
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache
    from rung.rungs.base import StageReporter


class FineTuneRung(Rung):
    name = "finetune"

    def __init__(self, base: Pipeline, out: Path, *, force: bool = False) -> None:
        self.base, self.out, self.force = base, out, force
        self.tune: TuneResult | None = None

    def build(
        self, task: TaskSpec, train: Sequence[Example], val: Sequence[Example],
        reporter: "StageReporter | None" = None, cache: "ResponseCache | None" = None,
    ) -> tuple[Pipeline, list[Candidate]]:
        require_ready(task, force=self.force)
        advance = reporter("finetune: training (LoRA)", 1) if reporter else None
        self.tune = train_lora(task, self.base, train, val, self.out)
        if advance:
            advance(1)
        settings = task.finetune
        details = {**self.base.details, "method": settings.method, "rank": settings.rank,
                   "alpha": settings.alpha, "best_step": self.tune.best_step}
        pipeline = replace(self.base, rung=self.name, model=str(self.tune.adapter),
                           details=details)
        n_val = min(len(val), task.eval.val_limit or len(val))
        progress = reporter(f"{self.name}: scoring on val", n_val) if reporter else None
        label = f"{settings.method} r={settings.rank}"
        return choose_on_val(task, [(label, pipeline)], val, progress, cache)
