"""Scores of a set of predictions, each with a 95% bootstrap interval.

Every metric here is a mean over examples or a function of the confusion counts, so the
bootstrap resamples example indices once and scores all resamples with array arithmetic:
2,000 resamples of macro-F1 cost milliseconds, not the seconds a loop over scikit-learn
would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from rung.eval.custom_metrics import load_custom_metric
from rung.eval.stats import (PairedComparison, mcnemar_exact, paired_permutation,
                             paired_swap_test, row_chunks)
from rung.eval.json_metrics import json_schema_metric
from rung.eval.metric_spec import MetricSpec
from rung.eval.text_metrics import TEXT_METRICS


@dataclass(frozen=True)
class Score:
    metric: str
    value: float
    ci: tuple[float, float]
    n: int


def accuracy(expected: Sequence[str], predicted: Sequence[str]) -> float:
    return float(accuracy_score(list(expected), list(predicted)))


def macro_f1(expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> float:
    """Macro-F1 over the task's labels that occur, expected or predicted: a label the model
    never predicts but should have counts as 0, while one neither in the examples nor in the
    answers has no F1 at all (scikit-learn would count it 0, so a perfect classifier on a
    test split without a rare label would score 2/3 with three labels). Labels and answers
    are compared stripped, as accuracy compares them."""
    expected, predicted = _stripped(expected), _stripped(predicted)
    occurring = [label for label in _stripped(labels)
                 if label in set(expected) or label in set(predicted)]
    if not occurring:
        return 0.0
    return float(f1_score(expected, predicted, labels=occurring, average="macro",
                          zero_division=0))


def _stripped(texts: Sequence[str]) -> list[str]:
    return [text.strip() for text in texts]


def _label_codes(labels: Sequence[str], answers: Sequence[str], outside: int) -> np.ndarray:
    """Answers as label indices; an answer outside the label set is coded `outside`."""
    codes = {label: i for i, label in enumerate(_stripped(labels))}
    return np.array([codes.get(answer, outside) for answer in _stripped(answers)])


def _macro_f1_rows(ys: np.ndarray, ps: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 of each row of expected (`ys`) and predicted (`ps`) label codes, over the
    labels that occur in that row (as `macro_f1` does on the full set)."""
    total, occurring = np.zeros(len(ys)), np.zeros(len(ys))
    for label in range(n_labels):
        tp = ((ys == label) & (ps == label)).sum(axis=1)
        fp = ((ys != label) & (ps == label)).sum(axis=1)
        fn = ((ys == label) & (ps != label)).sum(axis=1)
        denom = 2 * tp + fp + fn
        total += np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
        occurring += denom > 0
    return np.where(occurring > 0, total / np.maximum(occurring, 1), 0.0)


@dataclass(frozen=True)
class CorpusStatistic:
    """What scoring and pairing a corpus-level classification metric need: `score(expected,
    predicted, labels)` is the metric on the full set, `rows(ys, ps, n_labels)` scores every
    row of (rows x n) matrices of expected and predicted label codes at once (so 2,000
    resamples or 10,000 swaps cost array arithmetic, not that many calls), and `title` names
    the metric to people and, lowercased, in the test's name ("permutation-macro-f1")."""

    title: str
    score: Callable[[Sequence[str], Sequence[str], Sequence[str]], float]
    rows: Callable[[np.ndarray, np.ndarray, int], np.ndarray]


# Every metric whose MetricSpec is corpus_level, by name. A flagged metric missing here is
# refused by paired_test rather than tested as some other statistic.
CORPUS_STATISTICS: dict[str, CorpusStatistic] = {
    "macro_f1": CorpusStatistic("macro-F1", macro_f1, _macro_f1_rows),
}


def corpus_statistic(spec: MetricSpec) -> CorpusStatistic:
    """The corpus-level statistic behind a spec flagged `corpus_level`."""
    if spec.name not in CORPUS_STATISTICS:
        raise ValueError(f"metric {spec.name!r} is flagged corpus-level but has no entry in "
                         "CORPUS_STATISTICS: its paired test would not know what to score")
    return CORPUS_STATISTICS[spec.name]


def paired_test(spec: MetricSpec, expected: Sequence[str], a_outputs: Sequence[str],
                b_outputs: Sequence[str], labels: Sequence[str] = (), *,
                min_gain: float = 0.0, n_bootstrap: int = 2000, seed: int = 0,
                values: tuple[Sequence[float], Sequence[float]] | None = None,
                ) -> PairedComparison:
    """B's answers against A's on the same examples, by the test that asks the metric's own
    question; the one place that choice is made, so rung-to-rung (climb) and run-to-run
    (compare) comparisons cannot drift apart:

    - a corpus-level metric (`spec.corpus_level`: macro-F1) by the test that swaps the two
      sides' answers per example and scores the statistic itself (paired_corpus): McNemar on
      the correctness behind it answers another question;
    - a 0/1 metric (accuracy, exact match, JSON checks) by McNemar's exact test on the
      examples that changed;
    - a graded one (ROUGE-L, BLEU, chrF, most custom ones) by the sign-flip permutation test
      on per-example values (exact up to 16 examples), with a paired bootstrap interval: the
      bootstrap's own shift-method p-value called a difference that was not there about
      twice as often as it should on small splits (9.5% at n = 10, 6.7% at n = 20, against
      5%).

    The flag decides, never the metric's name: a new corpus-level metric is tested as one
    as soon as its spec says so. `values` are each side's per-example values where the caller
    already has them (the evaluator's stored correctness, values shown beside the test):
    a judge-backed metric is then not asked twice, nor allowed to answer differently.
    """
    if spec.corpus_level:
        return paired_corpus(spec, expected, a_outputs, b_outputs, labels, min_gain=min_gain,
                             n_bootstrap=n_bootstrap, seed=seed)
    if values is None:
        values = (per_example_values(spec, expected, a_outputs),
                  per_example_values(spec, expected, b_outputs))
    x, y = (np.asarray(side, dtype=float) for side in values)
    if spec.binary:
        return mcnemar_exact(x >= 1.0, y >= 1.0, min_gain=min_gain, n_resamples=n_bootstrap,
                             seed=seed)
    return paired_permutation(x, y, min_gain=min_gain, n_bootstrap=n_bootstrap, seed=seed)


def paired_corpus(spec: MetricSpec, expected: Sequence[str], a_predicted: Sequence[str],
                  b_predicted: Sequence[str], labels: Sequence[str], *,
                  min_gain: float = 0.0, n_bootstrap: int = 2000,
                  seed: int = 0) -> PairedComparison:
    """B's score against A's on the same examples for a corpus-level metric, tested as that
    metric: the swap test (stats.paired_swap_test) on label codes. The discordant counts
    (b_only, a_only) still say how many examples each side alone got right."""
    statistic = corpus_statistic(spec)
    y = _label_codes(labels, expected, len(labels))
    # an answer outside the labels is wrong for every label: coded past the end
    a, b = (_label_codes(labels, said, len(labels) + 1) for said in (a_predicted, b_predicted))
    right_a, right_b = a == y, b == y
    return paired_swap_test(
        a, b, lambda idx, ps: statistic.rows(y[idx], ps, len(labels)),
        test="permutation-" + statistic.title.lower(), min_gain=min_gain,
        n_bootstrap=n_bootstrap, seed=seed,
        b_only=int((right_b & ~right_a).sum()), a_only=int((right_a & ~right_b).sum()))


def corpus_shift(spec: MetricSpec, labels: Sequence[str], expected: Sequence[str],
                 predicted: Sequence[str], before_expected: Sequence[str],
                 before_predicted: Sequence[str], *, n_permutations: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """Whether a corpus-level metric is lower on one set of examples than on another (new
    inputs against the test set: unpaired), as that metric: a one-sided permutation test that
    deals the pooled examples into two groups of the same sizes, as many times, and scores the
    statistic on each. Returns (p, score on the new set, score on the old one). The share of
    right answers could hold still while a minority label's F1 collapsed."""
    statistic = corpus_statistic(spec)
    n_labels, n_new = len(labels), len(expected)
    ys = _label_codes(labels, [*expected, *before_expected], n_labels)
    ps = _label_codes(labels, [*predicted, *before_predicted], n_labels + 1)
    new = float(statistic.rows(ys[None, :n_new], ps[None, :n_new], n_labels)[0])
    old = float(statistic.rows(ys[None, n_new:], ps[None, n_new:], n_labels)[0])
    if n_new == 0 or len(ys) == n_new:
        return 1.0, new, old
    rng = np.random.default_rng(seed)
    at_most = 0
    for rows in row_chunks(n_permutations, len(ys)):
        order = np.argsort(rng.random((rows, len(ys))), axis=1)
        drop = (statistic.rows(ys[order[:, :n_new]], ps[order[:, :n_new]], n_labels)
                - statistic.rows(ys[order[:, n_new:]], ps[order[:, n_new:]], n_labels))
        at_most += int((drop <= new - old + 1e-12).sum())
    return (at_most + 1) / (n_permutations + 1), new, old


def paired_macro_f1(expected: Sequence[str], a_predicted: Sequence[str],
                    b_predicted: Sequence[str], labels: Sequence[str], *,
                    min_gain: float = 0.0, n_bootstrap: int = 2000,
                    seed: int = 0) -> PairedComparison:
    """B's macro-F1 against A's on the same examples, tested as macro-F1: McNemar on the
    correctness behind it answered another question, and could call a rung that always says
    the majority label a gain over one with twice its macro-F1."""
    return paired_corpus(metric_spec("macro_f1"), expected, a_predicted, b_predicted, labels,
                         min_gain=min_gain, n_bootstrap=n_bootstrap, seed=seed)


def score_predictions(
    metric: str,
    expected: Sequence[str],
    predicted: Sequence[str],
    *,
    labels: Sequence[str] = (),
    n_resamples: int = 2000,
    seed: int = 0,
    schema: dict | None = None,
) -> Score:
    """The metric on the full set, and its percentile bootstrap interval over examples."""
    n = len(expected)
    if n == 0:
        return Score(metric, float("nan"), (float("nan"), float("nan")), 0)
    rng = np.random.default_rng(seed)
    spec = metric_spec(metric, schema)
    if spec.corpus_level:  # no mean over examples: scored from the label codes, as a whole
        statistic = corpus_statistic(spec)
        # A prediction outside the label set is wrong for every label: code it past the end.
        y = _label_codes(labels, expected, len(labels))
        p = _label_codes(labels, predicted, len(labels) + 1)
        value = statistic.score(expected, predicted, labels)

        def resampled(idx: np.ndarray) -> np.ndarray:
            return statistic.rows(y[idx], p[idx], len(labels))
    else:
        values = per_example_values(spec, expected, predicted)
        value = float(values.mean())

        def resampled(idx: np.ndarray) -> np.ndarray:
            return values[idx].mean(axis=1)
    # in chunks of resamples, so a large test split cannot exhaust memory (stats.py does too)
    samples = np.concatenate([resampled(rng.integers(0, n, size=(rows, n)))
                              for rows in row_chunks(n_resamples, n)])
    low, high = np.percentile(samples, [2.5, 97.5])
    if low == high and value in (0.0, 1.0):
        return Score(metric, value, _wilson(round(value * n), n), n)
    return Score(metric, value, (float(low), float(high)), n)


def _wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson's 95% interval for `successes` of `n`. Where every example scored the best (or
    the worst) value, every resample does too and the bootstrap interval shrinks to the point:
    8 of 8 would read (1.000-1.000), as sure as 800 of 800, and pass a lower-bound stop rule at
    any target. Wilson's interval still says how little 8 examples show (0.676-1.000)."""
    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def per_class(expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """Precision, recall, F1 and support per label, and the confusion matrix (rows: expected,
    columns: predicted, in `labels` order; a prediction outside the labels is counted under
    the extra column "(other)")."""
    labels, expected = _stripped(labels), _stripped(expected)
    columns = list(labels) + ["(other)"]
    mapped = [p if p in labels else "(other)" for p in _stripped(predicted)]
    p, r, f, support = precision_recall_fscore_support(
        expected, mapped, labels=labels, zero_division=0
    )
    matrix = confusion_matrix(expected, mapped, labels=columns)[: len(labels)]
    return {
        "labels": list(labels),
        "precision": [round(float(x), 4) for x in p],
        "recall": [round(float(x), 4) for x in r],
        "f1": [round(float(x), 4) for x in f],
        "support": [int(x) for x in support],
        "confusion": {"columns": columns, "rows": matrix.tolist()},
    }


def _same_label(expected: str, predicted: str) -> float:
    return float(expected.strip() == predicted.strip())


def metric_spec(metric: str, schema: dict | None = None) -> MetricSpec:
    """Resolve a metric name once: the registry, the task's schema, or user code (which is
    imported and probed, so callers keep the spec rather than asking per example).

    For macro-F1 the per-example view is label correctness; the score itself is computed from
    the confusion counts in `score_predictions`, and the spec is `corpus_level` so its paired
    test scores macro-F1 too (its statistic is in CORPUS_STATISTICS).
    """
    if metric in ("accuracy", "macro_f1"):
        return MetricSpec(metric, ("classification",), _same_label, "exact label", binary=True,
                          corpus_level=metric == "macro_f1")
    if metric == "json_schema" and schema is not None:
        return json_schema_metric(schema)
    if metric in TEXT_METRICS:
        return TEXT_METRICS[metric]
    return load_custom_metric(metric)


def per_example_values(spec: MetricSpec, expected: Sequence[str], predicted: Sequence[str]) -> np.ndarray:
    return np.array([float(spec.per_example(e, p)) for e, p in zip(expected, predicted)])


def is_correct(spec: MetricSpec, expected: str, predicted: str) -> bool:
    """Right or wrong per example, for paired tests and the review pages: the metric itself
    when it is 0/1, exact match (normalised) when it is graded."""
    if spec.binary:
        return spec.per_example(expected, predicted) >= 1.0
    return TEXT_METRICS["exact_match"].per_example(expected, predicted) >= 1.0
