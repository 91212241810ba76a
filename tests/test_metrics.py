import numpy as np
import pytest
from sklearn.metrics import f1_score

from rung.eval.metrics import (_macro_f1_rows, is_correct, macro_f1, metric_spec,
                               paired_macro_f1, per_class, score_predictions)
from rung.eval.stats import mcnemar_exact


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
