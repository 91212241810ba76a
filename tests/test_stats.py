"""Paired tests on constructed cases whose answers come from closed forms worked here."""

import json
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.stats import permutation_test

from rung.eval.stats import (
    PairedComparison,
    compare,
    mcnemar_exact,
    paired_bootstrap,
    paired_permutation,
    paired_swap_test,
)


def _outcomes(both: int, b_only: int, a_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Per-example correctness of A and B built from the four cells of McNemar's table."""
    a = [True] * both + [False] * b_only + [True] * a_only + [False] * neither
    b = [True] * both + [True] * b_only + [False] * a_only + [False] * neither
    return a, b


def _two_sided_binomial_half(k: int, n: int) -> float:
    """2 * P(X <= min(k, n-k)) for X ~ Binomial(n, 1/2), capped at 1, in exact arithmetic."""
    tail = Fraction(sum(comb(n, i) for i in range(min(k, n - k) + 1)), 2**n)
    return float(min(2 * tail, Fraction(1)))


# --- McNemar ------------------------------------------------------------------------------


def test_mcnemar_ten_discordant_all_for_b():
    a, b = _outcomes(0, 10, 0, 0)
    result = mcnemar_exact(a, b)
    assert (result.b_only, result.a_only) == (10, 0)
    assert result.p_value == pytest.approx(2 * 0.5**10, rel=1e-12)
    assert result.p_value == pytest.approx(0.001953125, rel=1e-12)
    assert result.difference == 1.0
    assert result.test == "mcnemar-exact"


@pytest.mark.parametrize(("b_only", "a_only"), [(5, 5), (1, 0), (0, 1)])
def test_mcnemar_balanced_or_single_discordant_pair_is_no_evidence(b_only, a_only):
    a, b = _outcomes(3, b_only, a_only, 2)
    result = mcnemar_exact(a, b)
    assert result.p_value == 1.0
    assert not result.significant and not result.meaningful


def test_mcnemar_no_discordant_pairs():
    a, b = _outcomes(7, 0, 0, 3)
    result = mcnemar_exact(a, b)
    assert result.p_value == 1.0
    assert result.difference == 0.0
    assert result.ci == (0.0, 0.0)
    assert result.a_score == result.b_score == 0.7


def test_mcnemar_textbook_table_15_vs_5():
    a, b = _outcomes(0, 15, 5, 0)
    result = mcnemar_exact(a, b)
    # 2 * (C(20,0)+...+C(20,5)) / 2**20 = 2 * 21700 / 1048576
    assert 2 * 21700 / 2**20 == 0.04138946533203125
    assert result.p_value == pytest.approx(0.04138946533203125, rel=1e-12)
    assert result.significant


@pytest.mark.parametrize(("b_only", "a_only"), [(15, 5), (9, 2), (4, 12), (30, 18)])
def test_mcnemar_matches_exact_binomial_tail(b_only, a_only):
    a, b = _outcomes(20, b_only, a_only, 10)
    expected = _two_sided_binomial_half(b_only, b_only + a_only)
    assert mcnemar_exact(a, b).p_value == pytest.approx(expected, rel=1e-10)


def test_mcnemar_difference_is_exact_and_concordant_pairs_do_not_change_p():
    small = mcnemar_exact(*_outcomes(0, 15, 5, 0))
    large = mcnemar_exact(*_outcomes(100, 15, 5, 50))
    assert small.p_value == large.p_value
    assert small.difference == (15 - 5) / 20
    assert large.difference == (15 - 5) / 170
    assert large.n == 170
    assert large.a_score == pytest.approx(105 / 170) and large.b_score == pytest.approx(115 / 170)


def test_mcnemar_accepts_ones_and_zeros():
    result = mcnemar_exact([1, 0, 1, 1], [1, 1, 1, 1])
    assert (result.b_only, result.a_only) == (1, 0)


def test_mcnemar_big_consistent_gain():
    # 300 examples: B fixes 60 of A's errors and breaks 5 of its successes.
    a, b = _outcomes(150, 60, 5, 85)
    result = mcnemar_exact(a, b, min_gain=0.1)
    assert result.p_value < 0.001
    assert result.ci[0] > 0
    assert result.difference == pytest.approx(55 / 300)
    assert result.meaningful and not result.worse
    assert not mcnemar_exact(a, b, min_gain=0.3).meaningful
    backwards = mcnemar_exact(b, a)  # the same pairs the other way round: B is behind
    assert backwards.worse and not backwards.meaningful and backwards.to_dict()["worse"]


# --- identical inputs ---------------------------------------------------------------------


def test_identical_inputs_are_no_difference():
    scores = list(np.random.default_rng(3).random(50))
    for result in (paired_bootstrap(scores, scores), paired_permutation(scores, scores)):
        assert result.difference == 0.0
        assert result.p_value == 1.0
        assert result.ci == (0.0, 0.0)
        assert not result.significant and not result.meaningful
    correct = [True, False, True, True, False]
    same = mcnemar_exact(correct, correct)
    assert same.difference == 0.0 and same.p_value == 1.0 and not same.significant


# --- continuous: a large consistent shift -------------------------------------------------


def _shifted(n: int = 200, shift: float = 0.2, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 0.7, n)
    return a, a + shift + rng.normal(0.0, 0.05, n)


@pytest.mark.parametrize("test", [paired_bootstrap, paired_permutation])
def test_big_consistent_shift(test):
    a, b = _shifted()
    result = test(a, b, min_gain=0.1)
    assert result.p_value < 0.001
    assert result.ci[0] > 0
    assert result.ci[0] < result.difference < result.ci[1]
    # sd of the mean difference is 0.05 / sqrt(200) = 0.0035: the CI sits within 0.2 +- 0.02
    assert result.difference == pytest.approx(0.2, abs=0.015)
    assert 0.17 < result.ci[0] and result.ci[1] < 0.23
    assert result.meaningful
    assert not test(a, b, min_gain=0.3).meaningful


def test_shift_method_p_value_has_floor_of_one_over_b_plus_one():
    a, b = _shifted()
    assert paired_bootstrap(a, b, n_resamples=999).p_value == 1 / 1000
    assert paired_permutation(a, b, n_resamples=999).p_value == 1 / 1000


def test_pairing_finds_a_gain_that_overlapping_intervals_would_hide():
    # Examples differ wildly in difficulty (0 to 1); B is 0.02 better on every one of them.
    rng = np.random.default_rng(5)
    a = rng.uniform(0.0, 1.0, 100)
    b = a + 0.02 + rng.normal(0.0, 0.01, 100)
    unpaired_half_width = 1.96 * a.std(ddof=1) / np.sqrt(100)  # about 0.056, > 0.02
    assert unpaired_half_width > 0.04
    result = paired_bootstrap(a, b)
    assert result.significant and result.ci[0] > 0


def test_bootstrap_other_statistic():
    a = np.zeros(41)
    b = np.concatenate([np.full(21, 1.0), np.full(20, -100.0)])
    # The median of B is 1 while its mean is strongly negative.
    result = paired_bootstrap(a, b, statistic=np.median)
    assert result.b_score == 1.0 and result.difference == 1.0
    assert paired_bootstrap(a, b).difference == pytest.approx((21 - 2000) / 41)


# --- permutation: exact enumeration -------------------------------------------------------


def test_permutation_exact_all_positive_n4():
    result = paired_permutation([0.0] * 4, [0.1, 0.2, 0.3, 0.4])
    # Only the all-positive and all-negative sign patterns are as extreme: 2 of 16.
    assert result.p_value == 2 / 16 == 0.125
    assert result.test == "permutation"


def test_permutation_exact_mixed_signs_n4():
    # Differences 1, 2, 3, -4 sum to 2. Flipping subset S gives 10 - 2*sum(S); |.| >= 2 unless
    # sum(S) = 5, i.e. S = {1,4} or {2,3}: 14 of 16 patterns.
    result = paired_permutation([0, 0, 0, 4], [1, 2, 3, 0])
    assert result.p_value == 14 / 16


def test_permutation_enumerates_exactly_up_to_16_examples():
    # At n = 16 the exact p is 2 / 2**16, below what 10,000 random patterns could report.
    result = paired_permutation(np.zeros(16), np.arange(1, 17, dtype=float))
    assert result.p_value == 2 / 2**16
    beyond = paired_permutation(np.zeros(17), np.arange(1, 18, dtype=float), n_resamples=500)
    assert beyond.p_value == 1 / 501


def test_permutation_exact_agrees_with_scipy_enumeration():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=10), rng.normal(0.5, 1.0, size=10)
    theirs = permutation_test(
        (b - a,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    )
    assert paired_permutation(a, b).p_value == pytest.approx(theirs.pvalue, rel=1e-12)


# --- swapping answers per example (macro-F1 and other metrics that are no mean) --------------


def _mean_rows(examples: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    return outcomes.mean(axis=1)


def test_swapping_answers_under_a_mean_is_the_sign_flip_test():
    """For a mean, swapping A's and B's values of an example flips the sign of its difference,
    so the swap test must give the sign-flip test's exact p-value."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=12), rng.normal(0.6, 1.0, size=12)
    swapped = paired_swap_test(a, b, _mean_rows, test="swap")
    flipped = paired_permutation(a, b)
    assert swapped.p_value == pytest.approx(flipped.p_value, rel=1e-12)
    assert swapped.difference == pytest.approx(flipped.difference)


def test_swap_test_agrees_with_scipy_paired_permutation_for_a_non_mean_statistic():
    """A statistic no sign flip can express (the median's difference): scipy's paired
    permutation test, enumerated, is the reference."""
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=11), rng.normal(0.8, 1.0, size=11)
    theirs = permutation_test((a, b), lambda x, y, axis: np.median(y, axis=axis)
                              - np.median(x, axis=axis), permutation_type="samples",
                              n_resamples=np.inf, alternative="two-sided", vectorized=True)
    ours = paired_swap_test(a, b, lambda ex, rows: np.median(rows, axis=1), test="swap")
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    beyond = paired_swap_test(np.r_[a, a], np.r_[b, b], lambda ex, rows: np.median(rows, axis=1),
                              test="swap", n_resamples=3000, seed=1)
    assert beyond.p_value < ours.p_value  # twice the evidence; random patterns past 16


# --- determinism, dispatch, validation, serialisation -------------------------------------


def test_same_seed_same_result_and_seed_matters():
    a, b = _shifted(n=60, shift=0.01, seed=4)
    for test in (paired_bootstrap, paired_permutation):
        assert test(a, b, seed=7) == test(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7).ci != paired_bootstrap(a, b, seed=8).ci
    correct_a, correct_b = _outcomes(20, 6, 3, 11)
    assert mcnemar_exact(correct_a, correct_b, seed=7) == mcnemar_exact(correct_a, correct_b, seed=7)


def test_compare_dispatches_on_kind():
    a, b = _outcomes(0, 15, 5, 0)
    assert compare(a, b, kind="binary") == mcnemar_exact(a, b)
    x, y = _shifted()
    assert compare(x, y, kind="continuous", seed=3) == paired_permutation(x, y, seed=3)
    with pytest.raises(ValueError, match="kind"):
        compare(a, b, kind="ordinal")


def _swap_of_means(a, b):
    return paired_swap_test(a, b, _mean_rows, test="swap")


@pytest.mark.parametrize("test", [mcnemar_exact, paired_bootstrap, paired_permutation,
                                  _swap_of_means])
def test_length_mismatch_raises(test):
    with pytest.raises(ValueError, match="same examples"):
        test([1, 0, 1], [1, 0])


@pytest.mark.parametrize("test", [mcnemar_exact, paired_bootstrap, paired_permutation,
                                  _swap_of_means])
def test_empty_raises(test):
    with pytest.raises(ValueError, match="empty"):
        test([], [])


def test_bad_values_raise():
    with pytest.raises(ValueError, match="True/False"):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap([0.1, float("nan")], [0.2, 0.3])


def test_meaningful_needs_significance_gain_and_interval():
    base = dict(test="x", a_score=0.5, b_score=0.7, n=100, min_gain=0.1)
    good = PairedComparison(difference=0.2, ci=(0.1, 0.3), p_value=0.001, **base)
    assert good.significant and good.meaningful
    assert not PairedComparison(difference=0.2, ci=(0.1, 0.3), p_value=0.2, **base).meaningful
    assert not PairedComparison(difference=0.05, ci=(0.01, 0.09), p_value=0.001, **base).meaningful
    assert not PairedComparison(difference=0.2, ci=(-0.01, 0.4), p_value=0.04, **base).meaningful
    strict = PairedComparison(difference=0.2, ci=(0.1, 0.3), p_value=0.02, alpha=0.01, **base)
    assert not strict.significant


def test_to_dict_is_json_ready():
    result = mcnemar_exact(*_outcomes(100, 15, 5, 50), min_gain=0.1)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["test"] == "mcnemar-exact"
    assert data["b_only"] == 15 and data["a_only"] == 5 and data["n"] == 170
    assert data["ci"] == list(result.ci)
    assert data["significant"] is True and data["meaningful"] is False


def test_chunked_resampling_gives_the_same_answer(monkeypatch):
    import rung.eval.stats as stats

    a, b = _shifted(n=300, shift=0.01, seed=9)
    whole = (paired_bootstrap(a, b), paired_permutation(a, b), _swap_of_means(a, b))
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 1000)
    assert (paired_bootstrap(a, b), paired_permutation(a, b), _swap_of_means(a, b)) == whole


def test_graded_comparisons_hold_their_level_on_small_splits() -> None:
    """No true difference, 10 examples a side, 600 trials: the test the ladder uses for
    graded metrics rejects at most about 5% of them; the bootstrap's shift-method p-value,
    which it used before, rejects nearer 10%."""
    rng = np.random.default_rng(11)
    ours = shifted = 0
    for trial in range(600):
        a, b = rng.random(10), rng.random(10)
        ours += compare(a, b, kind="continuous", seed=trial).p_value < 0.05
        shifted += paired_bootstrap(a, b, seed=trial).p_value < 0.05
    assert ours / 600 <= 0.065 < shifted / 600
