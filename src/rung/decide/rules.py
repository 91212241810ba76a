"""The terms every part of the decision uses alike: the order of the ladder, a Reason, which
val score a rung is chosen by, the latency budget, and how a rung's score and its choice are
said. One place for them so the choice (decide), the reasons a rung fell short
(shortfalls.py), the next step (advice.py) and the costs (economics.py) never disagree on
what a rung scored or which one was best on val.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rung.eval.stats import PairedComparison
from rung.rungs import LADDER
from rung.rungs.base import RungResult
from rung.rungs.classifier import candidate_label

SEEDS_ORDER = LADDER  # classifier, prompt, few-shot, rag, bigger-model, finetune
LLM_PROMPTED = ("prompt", "few-shot", "rag", "bigger-model")  # what a tune is priced against
FORMAT_SHARE = 0.2  # of test answers breaking the output format: a behaviour problem
Criterion = Literal["point", "lower-bound"]
# B against A on the test split, paired (climb.py supplies it: it knows the metric)
Compare = Callable[[RungResult, RungResult], PairedComparison]


@dataclass(frozen=True)
class Reason:
    rung: str
    kind: str  # format, knowledge-gap, capacity-gap, data, no-gain, below-target; for a
    # measured tune also its warning signs: overfitting, memorisation, perfect-train-accuracy,
    # forgetting (see tune_health)
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)


def fast_enough(r: RungResult, max_latency_ms: float | None) -> bool:
    """Within the latency budget ([eval] max_latency_ms: p95 of single requests), if any."""
    return max_latency_ms is None or r.test.latency_ms.get("p95", float("inf")) <= max_latency_ms


def val_score(r: RungResult) -> float:
    """The score on val of the candidate a rung kept (-inf for a result built without)."""
    return max((c.val_score for c in r.candidates if c.chosen), default=float("-inf"))


def bound(criterion: Criterion) -> str:
    return "by the interval's lower bound" if criterion == "lower-bound" else "by point estimate"


def interval(r: RungResult) -> str:
    s = r.test.score
    return f"{s.value:.3f} ({s.ci[0]:.3f}-{s.ci[1]:.3f})"


def describe(r: RungResult) -> str:
    return f"{r.rung} at {interval(r)}"


def choice(r: RungResult) -> str:
    details = r.pipeline.details
    if r.pipeline.classifier:
        return f" ({candidate_label(r.pipeline.classifier)})"
    if "k" in details and r.pipeline.retrieval is None:
        selection = f" {details['selection']}" if "selection" in details else ""
        return f" with k={details['k']}{selection}"
    if r.pipeline.retrieval:
        return f" ({r.pipeline.retrieval.get('method')}, k={r.pipeline.retrieval.get('k')})"
    return ""
