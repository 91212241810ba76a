"""Rung 2: the best prompt plus k demonstrations from train; k and how they are picked
chosen on val.

Fixed demonstrations go before every input: dealt round-robin across labels (stratified) so
a minority label is shown as soon as k allows, or drawn at random; their order is shuffled so
the last-shown label does not win by recency. Similar-example demonstrations (DSPy's
KNNFewShot) are each input's k nearest train examples by MiniLM similarity, chosen per input
when it is asked. For classification each fixed set is also tried with contextual calibration.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from rung.data.example import Example
from rung.pipeline import Pipeline, uncalibrated
from rung.rungs.base import Rung
from rung.rungs.prompt import with_calibrated
from rung.task import TaskSpec

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache


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


def selections(task: TaskSpec) -> list[str]:
    """The configured selections that mean something for this task: without labels,
    stratified is random, so it is tried once, as random."""
    wanted = task.few_shot.selection
    if task.task.kind != "classification":
        wanted = ["random" if s == "stratified" else s for s in wanted]
    return list(dict.fromkeys(wanted))


class FewShotRung(Rung):
    name = "few-shot"

    def __init__(self, base: Pipeline) -> None:
        self.base = base  # the prompt rung's winner: few-shot builds on the best phrasing

    def candidates(self, task: TaskSpec, train: Sequence[Example],
                   cache: "ResponseCache | None" = None) -> list[tuple[str, Pipeline]]:
        base = replace(uncalibrated(self.base), rung=self.name)  # each set calibrates anew
        pool = sorted(train, key=lambda e: (e.id, e.line))
        fixed, similar = [], []
        for selection in selections(task):
            for k in sorted(set(task.few_shot.k)):
                details = {**base.details, "k": k, "selection": selection}
                label = f"k={k} {selection}"
                if selection == "similar":
                    similar.append((label, replace(base, nearest=k, pool=pool, details=details)))
                else:
                    demos = choose_demonstrations(train, k, seed=task.task.seed,
                                                  stratified=selection == "stratified")
                    fixed.append((label, replace(base, demonstrations=demos, details=details)))
        if task.few_shot.calibrate:
            fixed = with_calibrated(task, fixed, cache)
        return fixed + similar
