"""What a test split of n examples can show: the McNemar floor and the size formula, checked
against the exact tests they stand for."""

from __future__ import annotations

import pytest
from scipy.stats import binom, binomtest

from rung.eval.power import examples_needed, mcnemar_floor, split_power


def test_the_mcnemar_floor_is_the_fewest_one_way_discordant_pairs_that_are_significant() -> None:
    # 6 discordant examples all one way: p = 2 * 0.5**6 = 0.031 < 0.05; 5: 0.0625, not
    assert binomtest(6, 6, 0.5).pvalue < 0.05 <= binomtest(5, 5, 0.5).pvalue
    assert mcnemar_floor(90) == pytest.approx(6 / 90)
    assert mcnemar_floor(6) == 1.0 and mcnemar_floor(3) == 1.0
    assert mcnemar_floor(600, alpha=0.01) == pytest.approx(8 / 600)  # 2 * 0.5**8 = 0.0078


@pytest.mark.parametrize("score, target", [(0.97, 0.85), (0.70, 0.85), (0.93, 0.90)])
def test_the_size_formula_gives_about_80_percent_power_to_the_exact_binomial_test(
        score: float, target: float) -> None:
    """At the size it names, an exact binomial test of "the score is the target" rejects
    about 80% of the time when the true score is `score` (discreteness moves it a little)."""
    n = examples_needed(score, target)
    rejects = [k for k in range(n + 1) if binomtest(k, n, target).pvalue < 0.05]
    power = sum(binom.pmf(k, n, score) for k in rejects)
    assert 0.7 <= power <= 0.92, (n, power)
    smaller = n // 2
    rejects = [k for k in range(smaller + 1) if binomtest(k, smaller, target).pvalue < 0.05]
    assert sum(binom.pmf(k, smaller, score) for k in rejects) < power


def test_a_score_on_the_target_cannot_be_told_apart_at_any_size() -> None:
    assert examples_needed(0.9, 0.9) is None
    power = split_power("prompt", 0.9, (0.85, 0.95), 500, 0.9, binary=True)
    assert power.underpowered and "sits on the target" in power.sentence()


def test_a_graded_metric_reads_its_spread_off_the_bootstrap_interval() -> None:
    # interval width 2 * 1.96 * sd / sqrt(n): sd 0.2 at n = 100 gives (0.4608, 0.5392)
    power = split_power("prompt", 0.5, (0.5 - 0.0392, 0.5 + 0.0392), 100, 0.6, binary=False)
    assert not power.exact
    assert power.min_detectable_difference == pytest.approx(2.8016 * 0.2 / 10, rel=1e-3)
    assert power.examples_needed == pytest.approx((2.8016 * 0.2 / 0.1) ** 2, abs=1)
    assert not power.underpowered  # 100 examples against about 32 needed
