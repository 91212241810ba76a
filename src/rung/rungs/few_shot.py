"""Rung 2: the best prompt plus k demonstrations from train, k chosen on val.

Demonstrations are dealt round-robin across labels (stratified) so a minority label is shown
as soon as k allows; their order is shuffled so the last-shown label does not win by recency.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import Sequence

from rung.data.example import Example
from rung.pipeline import Pipeline
from rung.rungs.base import Rung
from rung.task import TaskSpec


def choose_demonstrations(
    train: Sequence[Example], k: int, *, seed: int, stratified: bool = True
) -> list[Example]:
    rng = random.Random(seed)
    pool = sorted(train, key=lambda e: (e.id, e.line))
    if not stratified:
        chosen = rng.sample(pool, min(k, len(pool)))
    else:
        by_label: dict[str, list[Example]] = defaultdict(list)
        for ex in pool:
            by_label[ex.output].append(ex)
        for members in by_label.values():
            rng.shuffle(members)
        chosen = []
        labels = sorted(by_label)
        while len(chosen) < min(k, len(pool)):
            for label in labels:
                if by_label[label] and len(chosen) < k:
                    chosen.append(by_label[label].pop())
    rng.shuffle(chosen)
    return chosen


class FewShotRung(Rung):
    name = "few-shot"

    def __init__(self, base: Pipeline) -> None:
        self.base = base  # the prompt rung's winner: few-shot builds on the best phrasing

    def candidates(self, task: TaskSpec, train: Sequence[Example]) -> list[tuple[str, Pipeline]]:
        stratified = task.few_shot.selection == "stratified" and task.task.kind == "classification"
        out = []
        for k in sorted(set(task.few_shot.k)):
            demos = choose_demonstrations(train, k, seed=task.task.seed, stratified=stratified)
            details = {**self.base.details, "k": k, "selection": task.few_shot.selection}
            out.append((f"k={k}", replace(self.base, rung=self.name, demonstrations=demos, details=details)))
        return out
