"""Rung 1: the best plain prompt. Several phrasings of the task, chosen on val; for a
classification task each phrasing also with contextual calibration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rung.calibration import calibrated
from rung.data.example import Example
from rung.errors import ConfigError
from rung.pipeline import Pipeline
from rung.prompts import VARIANTS
from rung.rungs.base import Rung
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


def can_calibrate(task: TaskSpec, pipeline: Pipeline) -> bool:
    """Whether a candidate gets a calibrated twin: label scoring with the same demonstrations
    for every input (similar-example ones change with it)."""
    return task.task.kind == "classification" and not pipeline.nearest


def with_calibrated(task: TaskSpec, candidates: list[tuple[str, Pipeline]],
                    cache: "ResponseCache | None") -> list[tuple[str, Pipeline]]:
    """Each candidate, followed by its calibrated twin where calibration applies (a label-
    scoring pipeline with the same demonstrations for every input). With the response cache
    the twin's val answers are the original's, so it costs its three content-free prompts."""
    out = []
    for label, pipeline in candidates:
        out.append((label, pipeline))
        if can_calibrate(task, pipeline) and (twin := calibrated(pipeline, cache)) is not None:
            out.append((f"{label}, calibrated", twin))
    return out


class PromptRung(Rung):
    name = "prompt"

    def candidates(self, task: TaskSpec, train: Sequence[Example] = (),
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        names = task.prompt.variants or list(VARIANTS)
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise ConfigError(
                f"unknown prompt variant(s) {unknown}", file=task.path,
                fix=f"[prompt] variants may name: {', '.join(VARIANTS)}",
            )
        def pipeline(instruction: str, variant: str, **details: object) -> Pipeline:
            return Pipeline(
                rung=self.name, kind=task.task.kind, model=task.models.small,
                instruction=instruction, variant=variant, labels=list(task.task.labels),
                max_new_tokens=task.eval.max_new_tokens, base_dir=str(task.root),
                details={"variant": variant, **details})

        plain = [(name, pipeline(task.task.instruction, name)) for name in names] + [
            (own_label(number, text), pipeline(text, "instruction", own=number))
            for number, text in enumerate(task.prompt.instructions, start=1)]
        return with_calibrated(task, plain, cache) if task.prompt.calibrate else plain


def own_label(number: int, text: str) -> str:
    """'own #2 ("You sort tickets for…")': which of the team's prompts, and how it begins."""
    words = " ".join(text.split())
    shown = words if len(words) <= 40 else words[:41].rsplit(" ", 1)[0] + "…"
    return f'own #{number} ("{shown}")'
