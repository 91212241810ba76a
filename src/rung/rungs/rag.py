"""Rung 3: the best prompt with retrieved documentation; retriever and top-k chosen on val.

It builds on the prompt rung's winner, not on few-shot: the question this rung answers is
whether the failures were missing knowledge, so the only thing added is the knowledge.
With `[rag] shots`, candidates may also show the most similar train questions, each with its
own retrieved passages and its answer, so a small model sees how an answer is read off the
documentation; whether that helps is chosen on val like the rest.
The index is refreshed before the rung is built, so it answers from the corpus as it is now.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from rung.data.example import Example
from rung.pipeline import Pipeline, uncalibrated
from rung.rag.service import retrieval_settings
from rung.rungs.base import Rung
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


class RagRung(Rung):
    name = "rag"

    def __init__(self, base: Pipeline) -> None:
        self.base = base

    def candidates(self, task: TaskSpec, train: Sequence[Example],
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        base = uncalibrated(self.base)  # a content-free input retrieves nothing worth dividing out
        pool = sorted(train, key=lambda e: (e.id, e.line))
        out = []
        for shots in sorted(set(task.rag.shots)):
            for method in task.rag.methods:
                for k in sorted(set(task.rag.k)):
                    details = {**base.details, "method": method, "k": k}
                    label = f"{method}, k={k}"
                    if shots:
                        details["shots"] = shots
                        label += f", {shots} similar shot{'s' if shots > 1 else ''}"
                    out.append((label, replace(
                        base, rung=self.name, details=details, nearest=shots,
                        pool=pool if shots else [],
                        retrieval=retrieval_settings(task, method, k))))
        return out
