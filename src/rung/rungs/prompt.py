"""Rung 1: the best plain prompt. Several phrasings of the task, chosen on val."""

from __future__ import annotations

from typing import Sequence

from rung.data.example import Example
from rung.errors import ConfigError
from rung.pipeline import Pipeline
from rung.prompts import VARIANTS
from rung.rungs.base import Rung
from rung.task import TaskSpec


class PromptRung(Rung):
    name = "prompt"

    def candidates(self, task: TaskSpec, train: Sequence[Example] = ()) -> list[tuple[str, Pipeline]]:
        names = task.prompt.variants or list(VARIANTS)
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise ConfigError(
                f"unknown prompt variant(s) {unknown}", file=task.path,
                fix=f"[prompt] variants may name: {', '.join(VARIANTS)}",
            )
        return [
            (name, Pipeline(
                rung=self.name, kind=task.task.kind, model=task.models.small,
                instruction=task.task.instruction, variant=name, labels=list(task.task.labels),
                max_new_tokens=task.eval.max_new_tokens, base_dir=str(task.root),
                details={"variant": name},
            ))
            for name in names
        ]
