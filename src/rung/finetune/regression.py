"""Catastrophic-forgetting check: is the tuned model worse than its base on general tasks?

The seeds' pitfalls table names the symptom ("worse than base model on general tasks") and its
fix, and the task's own test split cannot see it: a fine-tune can win the task while losing
everyday skills. So a small general suite ships with rung (everyday instructions, simple
facts, arithmetic, formatting; written for rung, not taken from a benchmark) and both models
answer it. Items are scored by likelihood, not generation: a few forward passes per item and
no free text to parse, so the suite is fast and a model's phrasing cannot fail an answer.
Within an item the choices share one shape (all full sentences, all "2 + 3 = n"), so what
decides is the content: a fine-tune on short labels makes a model terser, and that change of
style must not pass for forgetting. Both models see identical prompts (one user turn, the
template's own system prompt), so the comparison is paired, item by item.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from rung.data.example import Message
from rung.eval.stats import mcnemar_exact
from rung.models.base import Model
from rung.models.registry import load_model

SUITE_FILE = "general.jsonl"
ALPHA = 0.05  # for calling the paired difference significant in the finding
# The seeds' pitfalls table, row "worse than base model on general tasks", in its words; the
# second half answers the seeds' other cause ("too homogeneous a dataset amplifies this risk").
FIX = "lower LR, fewer epochs, LoRA; mix general examples into the training data"


@dataclass(frozen=True)
class SuiteItem:
    id: str
    category: str
    prompt: str
    choices: tuple[str, ...]
    answer: int  # index into choices


def load_suite() -> list[SuiteItem]:
    """The bundled suite, read through importlib.resources so it works from a wheel too."""
    text = (resources.files("rung.finetune") / "suite" / SUITE_FILE).read_text("utf-8")
    items = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            items.append(SuiteItem(record["id"], record["category"], record["prompt"],
                                   tuple(record["choices"]), int(record["answer"])))
    return items


@dataclass(frozen=True)
class SuiteScore:
    """One model's answers to the suite, in suite order, so two scores pair item by item."""

    model: str
    ids: tuple[str, ...]
    categories: tuple[str, ...]
    correct: tuple[bool, ...]
    chosen: tuple[int, ...]
    seconds: float

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0

    @property
    def by_category(self) -> dict[str, float]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for category, ok in zip(self.categories, self.correct):
            groups[category].append(ok)
        return {c: sum(v) / len(v) for c, v in sorted(groups.items())}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accuracy": self.accuracy, "by_category": self.by_category}


def score_suite(model: Model, items: Sequence[SuiteItem] | None = None) -> SuiteScore:
    """Pick, per item, the choice with the highest mean log-probability per token.

    The backend returns each choice's summed log-probability (end-of-turn token included).
    Summed, every extra token costs probability, so a long correct answer ("The Pacific
    Ocean") would lose to a short wrong one ("Nice"); the mean per token compares how natural
    each answer is, not how short. The end-of-turn token still counts, so a model that would
    keep talking after "yes" is charged for stopping where an instruction said to stop.
    Backends share one choice list across a call's prompts, so items are grouped by choices.
    """
    items = load_suite() if items is None else list(items)
    groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[item.choices].append(i)
    chosen = [0] * len(items)
    start = time.perf_counter()
    for choices, members in groups.items():
        prompts = [[Message("user", items[i].prompt)] for i in members]
        for i, scores in zip(members, model.score_choices(prompts, list(choices))):
            means = [lp / max(n, 1) for lp, n in zip(scores.logprobs, scores.choice_tokens)]
            chosen[i] = max(range(len(means)), key=means.__getitem__)
    seconds = time.perf_counter() - start
    return SuiteScore(
        model=model.name,
        ids=tuple(item.id for item in items),
        categories=tuple(item.category for item in items),
        correct=tuple(c == item.answer for c, item in zip(chosen, items)),
        chosen=tuple(chosen),
        seconds=seconds,
    )


@dataclass(frozen=True)
class CategoryChange:
    base: float
    tuned: float
    drop: float  # base minus tuned: positive means the fine-tune lost ground


@dataclass(frozen=True)
class RegressionCheck:
    base_model: str
    tuned_model: str
    n: int
    base_accuracy: float
    tuned_accuracy: float
    drop: float  # base minus tuned, overall
    drop_ci: tuple[float, float]  # 95% paired bootstrap interval of the drop
    by_category: dict[str, CategoryChange]
    base_only: int  # items the base got right and the tuned model wrong
    tuned_only: int  # the reverse
    p_value: float  # exact McNemar on those discordant items
    threshold: float
    flagged: bool
    finding: str
    fix: str | None
    base_seconds: float
    tuned_seconds: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["drop_ci"] = list(self.drop_ci)
        return data


def compare_capability(base: SuiteScore, tuned: SuiteScore, threshold: float = 0.05) -> RegressionCheck:
    """Flag the fine-tune when its overall accuracy is more than `threshold` below the base's.

    The flag is on the size of the drop, which the user can act on; the McNemar p-value says
    whether a drop that size could be noise on this many items, and the finding says so.
    """
    if base.ids != tuned.ids:
        raise ValueError("the two scores cover different suite items: score both on the same suite")
    paired = mcnemar_exact(base.correct, tuned.correct)  # a = base, b = tuned
    drop = -paired.difference
    base_cat, tuned_cat = base.by_category, tuned.by_category
    by_category = {c: CategoryChange(base_cat[c], tuned_cat[c], base_cat[c] - tuned_cat[c])
                   for c in base_cat}
    flagged = drop > threshold
    worst = max(by_category, key=lambda c: by_category[c].drop)
    change = by_category[worst]
    evidence = (f"{base.accuracy:.0%} -> {tuned.accuracy:.0%} on {paired.n} general items, "
                f"{paired.a_only} items lost and {paired.b_only} gained, McNemar p={paired.p_value:.2g}")
    if flagged:
        noise = "" if paired.p_value < ALPHA else ", though a drop this size could still be noise"
        finding = (f"The tuned model is worse than the base on general tasks ({evidence}): "
                   f"{drop * 100:.1f} points lost, over the {threshold * 100:g}-point threshold, "
                   f"most in {worst} ({change.base:.0%} -> {change.tuned:.0%}){noise}.")
    else:
        moved = f"a {'drop' if drop >= 0 else 'gain'} of {abs(drop) * 100:.1f} points"
        finding = (f"General capability held ({evidence}): {moved}, within the "
                   f"{threshold * 100:g}-point threshold.")
    return RegressionCheck(
        base_model=base.model, tuned_model=tuned.model, n=paired.n,
        base_accuracy=base.accuracy, tuned_accuracy=tuned.accuracy, drop=drop,
        drop_ci=(-paired.ci[1], -paired.ci[0]), by_category=by_category,
        base_only=paired.a_only, tuned_only=paired.b_only, p_value=paired.p_value,
        threshold=threshold, flagged=flagged, finding=finding, fix=FIX if flagged else None,
        base_seconds=base.seconds, tuned_seconds=tuned.seconds,
    )


def capability_check(base_model_ref: str, tuned_model_ref: str, *, base_dir: Path | None = None,
                     threshold: float = 0.05) -> RegressionCheck:
    """Run the bundled suite on both models and compare them."""
    items = load_suite()
    base = score_suite(load_model(base_model_ref, base_dir=base_dir), items)
    tuned = score_suite(load_model(tuned_model_ref, base_dir=base_dir), items)
    return compare_capability(base, tuned, threshold)
