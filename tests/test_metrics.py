from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import f1_score

from rung.eval.metric_spec import MetricSpec
from rung.eval.metrics import (CORPUS_STATISTICS, CorpusStatistic, _macro_f1_rows,
                               is_correct, macro_f1, metric_spec, paired_macro_f1,
                               paired_test, per_class, score_predictions)
from rung.eval.stats import mcnemar_exact, paired_permutation, paired_swap_test


def test_accuracy_and_macro_f1_hand_worked():
    expected = ["A", "A", "A", "B", "B", "C"]
    predicted = ["A", "A", "B", "B", "C", "C"]
    # A: tp2 fp0 fn1 -> F1 = 4/5; B: tp1 fp1 fn1 -> 1/2; C: tp1 fp1 fn0 -> 2/3
    assert macro_f1(expected, predicted, ["A", "B", "C"]) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    score = score_predictions("accuracy", expected, predicted)
    assert score.value == pytest.approx(4 / 6)
    assert score.ci[0] <= score.value <= score.ci[1]


def test_label_never_predicted_counts_as_zero_and_one_nowhere_is_left_out():
    # B is expected but never predicted: 0. C is neither expected nor predicted: no F1 at all
    assert macro_f1(["A", "B"], ["A", "A"], ["A", "B", "C"]) == pytest.approx((2 / 3 + 0) / 2)
    # predicted but never expected still counts (a false alarm of C): F1 0
    assert macro_f1(["A", "B"], ["A", "C"], ["A", "B", "C"]) == pytest.approx((1 + 0 + 0) / 3)


def test_a_perfect_classifier_on_a_split_without_a_rare_label_scores_one():
    """30 A, 18 B, 2 C, all right: 1.0 with the interval (1, 1), though many resamples draw
    no C; and a test split holding no C at all is 1.0, not 2/3."""
    expected = ["A"] * 30 + ["B"] * 18 + ["C"] * 2
    score = score_predictions("macro_f1", expected, expected, labels=["A", "B", "C"])
    assert score.value == 1.0 and score.ci[1] == 1.0
    no_c = ["A"] * 30 + ["B"] * 18
    assert score_predictions("macro_f1", no_c, no_c, labels=["A", "B", "C"]).value == 1.0


def test_labels_and_answers_compare_stripped_as_accuracy_compares_them():
    expected = ["BILLING ", "TECH", "BILLING ", "TECH"]  # a CSV cell keeps its space
    predicted = ["BILLING", "TECH", "BILLING", "TECH"]
    assert score_predictions("accuracy", expected, predicted).value == 1.0
    f1 = score_predictions("macro_f1", expected, predicted, labels=["BILLING", "TECH"])
    assert f1.value == 1.0 and f1.ci[1] == 1.0
    assert per_class(expected, predicted, ["BILLING", "TECH"])["support"] == [2, 2]


def test_vectorised_resampled_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    p = np.where(rng.random(50) < 0.6, y, rng.integers(0, 4, 50))
    idx = rng.integers(0, 50, (20, 50))
    ours = _macro_f1_rows(y[idx], p[idx], 4)
    theirs = [f1_score(y[i], p[i], labels=sorted(set(y[i]) | set(p[i])), average="macro",
                       zero_division=0) for i in idx]
    assert np.allclose(ours, theirs)
    rare = np.array([0] * 45 + [3] * 5)  # label 3 absent from some resamples: left out there
    idx = rng.integers(0, 50, (200, 50))
    ours = _macro_f1_rows(rare[idx], rare[idx], 4)
    assert np.all(ours == 1.0)


def test_macro_f1_is_compared_as_macro_f1_not_as_the_accuracy_behind_it():
    """Answering the majority label always is more often right than a rung that confuses
    half the majority with a rare label, yet has under half its macro-F1. The paired test
    must say the majority rung is worse; McNemar on correctness says it is better."""
    expected = ["A"] * 80 + ["B"] * 10 + ["C"] * 10
    mixed = ["A"] * 40 + ["B"] * 50 + ["C"] * 10
    majority = ["A"] * 100
    labels = ["A", "B", "C"]
    c = paired_macro_f1(expected, mixed, majority, labels, seed=3)
    assert c.a_score == pytest.approx(macro_f1(expected, mixed, labels))
    assert c.b_score == pytest.approx(macro_f1(expected, majority, labels))
    assert c.difference == pytest.approx(c.b_score - c.a_score) and c.difference < -0.3
    assert c.worse and c.ci[1] < 0 and c.test == "permutation-macro-f1"
    assert (c.b_only, c.a_only) == (40, 20)  # the examples that changed, for the report
    by_correctness = mcnemar_exact([e == p for e, p in zip(expected, mixed)],
                                   [e == p for e, p in zip(expected, majority)])
    assert by_correctness.difference > 0 and by_correctness.significant  # the old answer


# --- which paired test a metric gets: read off its spec, never its name --------------------


def _worst_recall_rows(ys: np.ndarray, ps: np.ndarray, n_labels: int) -> np.ndarray:
    """The lowest recall of any label present in a row: a corpus-level statistic no mean over
    examples can express, standing in for a metric added after macro-F1."""
    recalls = []
    for label in range(n_labels):
        support = (ys == label).sum(axis=1)
        hits = ((ys == label) & (ps == label)).sum(axis=1)
        recalls.append(np.where(support > 0, hits / np.maximum(support, 1), np.inf))
    return np.min(recalls, axis=0)


def _worst_recall(expected: list[str], predicted: list[str], labels: list[str]) -> float:
    codes = {label: i for i, label in enumerate(labels)}
    y, p = (np.array([[codes.get(x, len(labels)) for x in side]]) for side in (expected, predicted))
    return float(_worst_recall_rows(y, p, len(labels))[0])


# A, B right per label: A gets every "A" and half the "B"s (worst recall 1/2, accuracy 10/12);
# B gets 7 of 8 "A"s and 3 of 4 "B"s (worst recall 3/4, accuracy the same 10/12)
_EXPECTED = ["A"] * 8 + ["B"] * 4
_SIDE_A = ["A"] * 8 + ["B", "B", "A", "A"]
_SIDE_B = ["A"] * 7 + ["B"] + ["B", "B", "B", "A"]


def test_a_new_corpus_level_metric_is_tested_by_its_flag_not_its_name(monkeypatch):
    """A corpus-level metric added beside macro-F1 is scored as itself by the swap test as
    soon as its spec is flagged: a dispatcher that looked for the name "macro_f1" would
    fall through to McNemar (the accuracy behind it, no difference here) and fail this."""
    monkeypatch.setitem(CORPUS_STATISTICS, "worst_recall",
                        CorpusStatistic("worst-recall", _worst_recall, _worst_recall_rows))
    spec = MetricSpec("worst_recall", ("classification",),
                      lambda e, p: float(e.strip() == p.strip()), "exact label", binary=True,
                      corpus_level=True)
    c = paired_test(spec, _EXPECTED, _SIDE_A, _SIDE_B, ["A", "B"], seed=4)
    assert c.test == "permutation-worst-recall"
    assert (c.a_score, c.b_score) == (0.5, 0.75) and c.difference == pytest.approx(0.25)
    codes = {"A": 0, "B": 1}
    y = np.array([codes[e] for e in _EXPECTED])
    by_hand = paired_swap_test(np.array([codes[p] for p in _SIDE_A]),
                               np.array([codes[p] for p in _SIDE_B]),
                               lambda idx, ps: _worst_recall_rows(y[idx], ps, 2),
                               test="permutation-worst-recall", seed=4, b_only=1, a_only=1)
    assert c == by_hand
    # scored as itself too, not as the share right (10/12), once metric_spec knows its spec
    import rung.eval.metrics as metrics

    known = metrics.metric_spec
    monkeypatch.setattr(metrics, "metric_spec",
                        lambda name, schema=None: spec if name == spec.name else known(name))
    assert score_predictions("worst_recall", _EXPECTED, _SIDE_A, labels=["A", "B"]).value == 0.5
    # the same metric unflagged is a 0/1 metric like any other: McNemar on correctness
    plain = paired_test(replace(spec, corpus_level=False), _EXPECTED, _SIDE_A, _SIDE_B,
                        ["A", "B"], seed=4)
    assert plain.test == "mcnemar-exact" and plain.difference == 0.0


def test_the_flag_decides_for_macro_f1_too_and_a_flag_without_a_statistic_is_refused():
    """macro_f1's own spec is flagged, and it is the flag that routes it: unflagged, the
    name alone gets McNemar. A flagged metric with no statistic to score is refused rather
    than tested as macro-F1 or as a mean."""
    spec = metric_spec("macro_f1")
    assert spec.corpus_level and not metric_spec("accuracy").corpus_level
    assert paired_test(spec, _EXPECTED, _SIDE_A, _SIDE_B, ["A", "B"]).test == "permutation-macro-f1"
    assert paired_test(replace(spec, corpus_level=False), _EXPECTED, _SIDE_A, _SIDE_B,
                       ["A", "B"]).test == "mcnemar-exact"
    with pytest.raises(ValueError, match="CORPUS_STATISTICS"):
        paired_test(replace(spec, name="micro_f1"), _EXPECTED, _SIDE_A, _SIDE_B, ["A", "B"])


@pytest.mark.parametrize("name", sorted(CORPUS_STATISTICS))
def test_every_corpus_statistic_belongs_to_a_flagged_spec(name):
    """A statistic registered for a metric whose spec is not flagged would never be used:
    the metric would be tested as the mean of its per-example view."""
    spec = metric_spec(name)
    assert spec.corpus_level
    c = paired_test(spec, _EXPECTED, _SIDE_A, _SIDE_B, ["A", "B"])
    assert c.test == "permutation-" + CORPUS_STATISTICS[name].title.lower()


def test_paired_test_gives_the_tests_it_chooses_between_their_own_answers():
    """0/1 metrics by McNemar on correctness, graded ones by the sign-flip test on values,
    macro-F1 by paired_macro_f1; values the caller holds are used as given."""
    expected = ["the cat sat", "a dog", "red", "blue sky"] * 5
    a = ["the cat", "a dog", "green", "blue sky"] * 5
    b = ["the cat sat", "dog", "red", "sky"] * 5
    em, rouge = metric_spec("exact_match"), metric_spec("rouge_l")
    right = [[float(e.lower() == p.lower()) for e, p in zip(expected, s)] for s in (a, b)]
    assert paired_test(em, expected, a, b, seed=2) == mcnemar_exact(
        *(np.array(r) >= 1 for r in right), seed=2)
    got = paired_test(rouge, expected, a, b, seed=2, min_gain=0.1)
    values = [[rouge.per_example(e, p) for e, p in zip(expected, s)] for s in (a, b)]
    assert got == paired_permutation(*values, seed=2, min_gain=0.1)
    given = paired_test(rouge, expected, a, b, seed=2, values=([0.0] * 20, [1.0] * 20))
    assert given.difference == 1.0  # not recomputed
    labels = ["A", "B"]
    assert (paired_test(metric_spec("macro_f1"), _EXPECTED, _SIDE_A, _SIDE_B, labels, seed=5)
            == paired_macro_f1(_EXPECTED, _SIDE_A, _SIDE_B, labels, seed=5))


def test_interval_narrows_with_more_examples():
    small = score_predictions("accuracy", ["A"] * 20, ["A"] * 14 + ["B"] * 6, seed=1)
    large = score_predictions("accuracy", ["A"] * 2000, ["A"] * 1400 + ["B"] * 600, seed=1)
    assert small.value == large.value == pytest.approx(0.7)
    assert (large.ci[1] - large.ci[0]) < (small.ci[1] - small.ci[0]) / 5
    # the normal approximation for 2000 examples: +-1.96*sqrt(.7*.3/2000) = +-0.020
    assert large.ci[0] == pytest.approx(0.68, abs=0.006) and large.ci[1] == pytest.approx(0.72, abs=0.006)


def test_perfect_and_empty():
    perfect = score_predictions("macro_f1", ["A", "B"] * 5, ["A", "B"] * 5, labels=["A", "B"])
    assert perfect.value == 1.0 and perfect.ci[1] == 1.0 and perfect.ci[0] < 0.75
    assert score_predictions("accuracy", [], []).n == 0


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1", "exact_match", "rouge_l"])
def test_a_perfect_or_null_score_keeps_an_interval_that_says_how_few_examples_showed_it(metric):
    """Every resample of 8 perfect answers is perfect, so the percentile bootstrap read
    (1.000-1.000): as sure as 800 of 800, and through a lower-bound stop rule at any target.
    Wilson's interval for 8 of 8 is (0.676-1.000); 800 of 800 narrows it."""
    labels = ["A", "B"]
    expected = ["A", "B"] * 4
    perfect = score_predictions(metric, expected, expected, labels=labels)
    assert perfect.value == 1.0
    assert perfect.ci == pytest.approx((8 / (8 + 1.959964 ** 2), 1.0), abs=1e-4)
    many = score_predictions(metric, expected * 100, expected * 100, labels=labels)
    assert 0.99 < many.ci[0] < 1.0
    wrong = ["B", "A"] * 4
    null = score_predictions(metric, expected, wrong, labels=labels)
    assert null.value == 0.0 and null.ci[0] == 0.0 and null.ci[1] == pytest.approx(1 - perfect.ci[0])
    nearly = score_predictions("accuracy", ["A"] * 12, ["A"] * 11 + ["B"])  # not degenerate
    assert nearly.ci[0] < 0.9 and nearly.ci[1] == 1.0


def test_text_metrics_score_through_the_same_bootstrap():
    em = score_predictions("exact_match", ["Paris  is nice", "Lyon"], [" paris is NICE", "Nice"])
    assert em.value == 0.5 and em.ci[0] <= 0.5 <= em.ci[1]
    # ROUGE-L F for "the cat sat on the mat" vs "the cat on the mat": LCS 5, P 1, R 5/6 -> 10/11
    rouge = score_predictions("rouge_l", ["the cat sat on the mat"], ["the cat on the mat"])
    assert rouge.value == pytest.approx(10 / 11)
    json_valid, rouge = metric_spec("json_valid"), metric_spec("rouge_l")
    assert is_correct(json_valid, "{}", '{"a": 1}') and not is_correct(json_valid, "{}", "nope")
    assert is_correct(rouge, "The cat", "the  cat") and not is_correct(rouge, "a b", "a")


def test_custom_metric_by_reference(tmp_path, monkeypatch):
    (tmp_path / "mymetric.py").write_text("def starts(e, p):\n    return p.startswith(e)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    score = score_predictions("mymetric:starts", ["ab", "x"], ["abc", "y"])
    assert score.value == 0.5


def test_per_class_report_and_confusion_matrix_hand_worked():
    from rung.eval.metrics import per_class

    expected = ["A", "A", "A", "B", "B", "C"]
    predicted = ["A", "A", "B", "B", "zzz", "C"]
    report = per_class(expected, predicted, ["A", "B", "C"])
    # A: tp2 fp0 fn1; B: tp1 fp1 fn1; C: tp1 fp0 fn0
    assert report["precision"] == [1.0, 0.5, 1.0]
    assert report["recall"] == [pytest.approx(0.6667, abs=1e-4), 0.5, 1.0]
    assert report["support"] == [3, 2, 1]
    assert report["confusion"]["columns"] == ["A", "B", "C", "(other)"]
    assert report["confusion"]["rows"] == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]]


def test_a_custom_metric_file_is_loaded_per_evaluation_not_per_example(tmp_path, fake_model):
    from rung.data.example import make_example
    from rung.eval.runner import evaluate
    from rung.pipeline import Pipeline

    counter = tmp_path / "loads.txt"
    (tmp_path / "m.py").write_text(
        f"open({str(counter)!r}, 'a').write('x')\n"
        "def same(e, p):\n    return float(e == p)\n"
    )
    examples = [make_example(f"q{i}", "BILLING") for i in range(20)]
    pipeline = Pipeline(rung="prompt", kind="generation", model="fake", instruction="Answer.")
    result = evaluate(pipeline, examples, metric=f"{tmp_path / 'm.py'}:same")
    assert result.score.value == 1.0
    assert len(counter.read_text()) <= 2  # once for correctness, once for the score


def test_a_custom_metric_an_empty_answer_breaks_fails_when_loaded_not_after_the_model(tmp_path):
    """A format failure reaches the metric as "": dividing by the answer's words crashed
    only once every example had been answered."""
    from rung.errors import ConfigError

    (tmp_path / "m.py").write_text(
        "def per_word(e, p):\n    return len(set(e.split()) & set(p.split())) / len(p.split())\n")
    with pytest.raises(ConfigError, match=r"ZeroDivisionError.*\('a', ''\)") as info:
        metric_spec(f"{tmp_path / 'm.py'}:per_word")
    assert "per_word" in str(info.value) and info.value.fix


def test_a_custom_metric_failing_on_one_answer_is_a_config_error_naming_the_pair(tmp_path):
    from rung.errors import ConfigError

    (tmp_path / "m.py").write_text(
        "GRADES = {'': 0.0, 'partly': 0.5}\n"
        "def graded(e, p):\n    return 1.0 if e == p else GRADES[p]\n")
    ref = f"{tmp_path / 'm.py'}:graded"
    assert score_predictions(ref, ["x", "x"], ["x", "partly"]).value == 0.75
    with pytest.raises(ConfigError, match=r"KeyError.*\('x', 'nonsense'\)") as info:
        score_predictions(ref, ["x", "x"], ["x", "nonsense"])
    assert ref in str(info.value) and "graded" in info.value.fix


def test_a_custom_metric_file_runs_once_until_it_changes(tmp_path):
    """Each score resolves the metric again; the user's file ran on every one of them
    (a print on import printed once per score)."""
    import os

    counter, metric = tmp_path / "loads.txt", tmp_path / "m.py"
    metric.write_text(f"open({str(counter)!r}, 'a').write('x')\n"
                      "def half(e, p):\n    return 0.5\n")
    ref = f"{metric}:half"
    for _ in range(3):
        assert score_predictions(ref, ["a", "b"], ["a", "c"]).value == 0.5
    assert counter.read_text() == "x"
    metric.write_text(metric.read_text().replace("0.5", "0.25"))  # an edit is seen
    os.utime(metric, ns=(metric.stat().st_atime_ns, metric.stat().st_mtime_ns + 10**9))
    assert score_predictions(ref, ["a"], ["a"]).value == 0.25
    assert counter.read_text() == "xx"
