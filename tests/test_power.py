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
    # the smallest significant difference: z_0.025 * sd of a paired difference / sqrt(n),
    # with no paired interval to hand the spread of two unrelated rungs, sqrt(2) * sd
    assert power.min_detectable_difference == pytest.approx(1.96 * 2 ** 0.5 * 0.2 / 10,
                                                            rel=1e-3)
    assert power.examples_needed == pytest.approx((2.8016 * 0.2 / 0.1) ** 2, abs=1)
    assert not power.underpowered  # 100 examples against about 32 needed


def test_a_graded_metric_takes_the_paired_spread_from_the_rungs_own_comparison() -> None:
    """A consistent small gain: per-example differences of sd 0.028 at n = 60 make +0.035
    plainly significant, though one rung's scores spread with sd 0.2. Read off the paired
    interval, the floor is about 0.007 and a mean difference there is just significant."""
    import numpy as np
    from scipy.stats import ttest_1samp

    half = 1.96 * 0.028 / 60 ** 0.5
    power = split_power("few-shot", 0.55, (0.55 - 0.0506, 0.55 + 0.0506), 60, 0.6,
                        binary=False, reached=False, paired_ci=(0.035 - half, 0.035 + half))
    assert power.min_detectable_difference == pytest.approx(1.96 * 0.028 / 60 ** 0.5, rel=1e-3)
    assert not power.gap_invisible  # a gain of the whole 0.05 gap would be seen
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(60)
    differences = power.min_detectable_difference + 0.028 * (noise - noise.mean()) / noise.std(ddof=1)
    assert 0.04 < ttest_1samp(differences, 0).pvalue < 0.07
    # still too few to tell 0.55 from the target, and the sentence says its floor is rough
    assert power.underpowered and "under about 0.01 significant" in power.sentence()


def test_an_interval_clear_of_the_target_has_decided_whatever_the_size_formula_says() -> None:
    """188 of 200 right against a 0.9 target: the size formula asks for about 388 examples
    to tell 0.94 from 0.9, but the 95% interval (0.905, 0.97) already excludes it."""
    power = split_power("prompt", 0.94, (0.905, 0.97), 200, 0.9, binary=True)
    assert power.examples_needed > 200 and power.settled
    assert not power.too_few_for_target and not power.underpowered
    straddles = split_power("prompt", 0.94, (0.895, 0.97), 200, 0.9, binary=True)
    assert straddles.underpowered


def test_power_is_plain_json() -> None:
    import json

    power = split_power("rag", 0.55, (0.45, 0.65), 60, 0.6, binary=False, reached=False)
    assert json.loads(json.dumps(power.to_dict()))["underpowered"] is True


def test_a_score_over_the_target_that_missed_by_its_lower_bound_has_no_gap_to_gain() -> None:
    """decide_on = "lower-bound": 3 of 3 right against 0.99 misses by its interval, not its
    score. The sentence said "more than the gap of -0.010 to the target"."""
    power = split_power("classifier", 1.0, (0.439, 1.0), 3, 0.99, binary=True, reached=False)
    assert not power.gap_invisible and power.underpowered  # the interval is the trouble
    sentence = power.sentence()
    assert "gap of" not in sentence and "-0.010" not in sentence
    assert "telling 1.000 from the target 0.99 takes about" in sentence
