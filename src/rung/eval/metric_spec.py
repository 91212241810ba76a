"""What a metric is: the task kinds and the MetricSpec every metric is described by.

Why a module of its own: the built-in text metrics (text_metrics.py), the JSON metrics
(json_metrics.py) and a user's own (custom_metrics.py) all build MetricSpecs, and the evaluator
(metrics.py) reads them; none of those should have to import another's metrics to get the type.

Every metric scores one example, (expected, predicted) -> float in [0, 1], so the evaluator can
bootstrap the mean over examples and run paired tests between rungs the same way it does for
accuracy. `MetricSpec.binary` says when the values are only ever 0 or 1 (exact match, JSON
validity), where a McNemar test applies instead of a paired bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

KINDS = ("classification", "extraction", "generation")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kinds: tuple[str, ...]
    per_example: Callable[[str, str], float]
    description: str
    binary: bool = False
    # The score is a statistic of the whole set (macro-F1, from the confusion counts), not a
    # mean of `per_example`, which is then only the right-or-wrong view of an example: the
    # paired test swaps whole answers (metrics.paired_test), and the stop rule's power is read
    # off the interval rather than a share of examples.
    corpus_level: bool = False
