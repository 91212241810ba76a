"""Is the test split big enough to decide? Power, stated before anyone trusts a verdict.

A decision read off 6 test examples sounds as sure as one read off 600 unless it says how
little it could see. Two figures, both about the split as it is:

- the smallest difference the paired test could call significant at this n. For a 0/1
  metric that is exact: McNemar's test needs d discordant examples, all one way, with
  2 * 0.5**d < alpha (d = 6 at 0.05), so no difference below d / n can ever be significant.
  For a graded metric it is about z_alpha/2 * sd_diff / sqrt(n), with the sd of the paired
  per-example differences read off the decisive rung's own paired interval (with the rung it
  was compared with); without one, sqrt(2) times its own per-example sd, the spread of two
  unrelated rungs: an approximation either way, said as "about".
- the test size that would tell the decisive score from the target with 80% power at
  alpha 0.05: the one-sample size formula for a proportion (the target as the null, the
  measured score as the alternative), or with the sd above for a graded metric.

A decision is under-powered when the split is smaller than that size and the score's own
95% interval still holds the target (its verdict about the target could as well flip on a
fresh sample; an interval clear of the target has decided, whatever the size formula says) or, when no rung reached the target, when the
paired test could not even see a rung gain the whole gap to it: then "nothing cheaper helped,
train next" rests on comparisons that could never have come out significant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import norm

ALPHA = 0.05
POWER = 0.8
Z_CI = 1.959963984540054  # the bootstrap intervals are 95% percentile intervals


def mcnemar_floor(n: int, alpha: float = ALPHA) -> float:
    """The smallest accuracy difference an exact McNemar test on n examples can call
    significant: every discordant example one way, just enough of them."""
    d = 1
    while 2 * 0.5 ** d >= alpha:
        d += 1
    return min(1.0, d / n) if n else 1.0


def examples_needed(score: float, target: float, *, sd: float | None = None,
                    alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Test examples that tell `score` from `target` with `power` at two-sided `alpha`;
    `sd` None means a proportion (0/1 outcomes). None when they are equal: no size can."""
    gap = abs(score - target)
    if gap < 1e-9:
        return None
    za, zb = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    if sd is None:
        spread = za * math.sqrt(target * (1 - target)) + zb * math.sqrt(score * (1 - score))
    else:
        spread = (za + zb) * sd
    return max(1, math.ceil((spread / gap) ** 2))


@dataclass(frozen=True)
class Power:
    n: int
    rung: str  # whose score decided: the chosen rung, or the best when none reached
    score: float
    target: float
    min_detectable_difference: float
    examples_needed: int | None  # None: the score equals the target
    exact: bool  # the floor is McNemar's exact one (0/1 metric), not an approximation
    reached: bool = True  # the score reaches the target (no gap left to close)
    settled: bool = False  # the score's 95% interval lies clear of the target

    @property
    def too_few_for_target(self) -> bool:
        if self.settled:
            return False
        return self.examples_needed is None or self.n < self.examples_needed

    @property
    def gap_invisible(self) -> bool:
        """Nothing reached the target, and a gain of the whole gap would not be significant.
        A score at or over the target that missed it by its interval's lower bound has no
        gap to gain: its trouble is the interval, which `too_few_for_target` says."""
        gap = self.target - self.score
        return not self.reached and gap > 0 and self.min_detectable_difference > gap

    @property
    def underpowered(self) -> bool:
        return self.too_few_for_target or self.gap_invisible

    def sentence(self) -> str:
        about = "" if self.exact else "about "
        line = (f"the test split is too small to decide: with {self.n} examples the paired "
                f"test cannot call a difference under {about}"
                f"{self.min_detectable_difference:.2f} significant")
        if self.gap_invisible:
            line += f", more than the gap of {self.target - self.score:.3f} to the target"
        if self.examples_needed is None:
            line += (f", and {self.score:.3f} sits on the target {self.target}, which no test "
                     "size can tell apart")
        elif self.too_few_for_target:
            line += (f", and telling {self.score:.3f} from the target {self.target} takes about "
                     f"{self.examples_needed:,} test examples")
        return line

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "underpowered": bool(self.underpowered)}


def split_power(rung: str, score: float, ci: tuple[float, float], n: int, target: float, *,
               binary: bool, reached: bool = True, paired_ci: tuple[float, float] | None = None,
               alpha: float = ALPHA, power: float = POWER) -> Power:
    """What the test split can show about the decisive rung (`score` with its 95% interval
    `ci` on `n` examples); `binary`: the metric is 0/1 per example; `reached`: it is the
    chosen rung (False: the best of rungs that all fell short); `paired_ci`: the 95% interval
    of its paired difference with the rung it was compared with, if any."""
    settled = bool(ci[0] > target or ci[1] < target)
    if binary:
        return Power(n, rung, score, target, mcnemar_floor(n, alpha),
                     examples_needed(score, target, alpha=alpha, power=power), exact=True,
                     reached=reached, settled=settled)
    sd = max(_sd(ci, n), 1e-6)
    sd_diff = _sd(paired_ci, n) if paired_ci is not None else math.sqrt(2) * sd
    za = float(norm.ppf(1 - alpha / 2))
    mde = min(1.0, za * sd_diff / math.sqrt(n)) if n else 1.0
    return Power(n, rung, score, target, mde,
                 examples_needed(score, target, sd=sd, alpha=alpha, power=power), exact=False,
                 reached=reached, settled=settled)


def _sd(ci: tuple[float, float], n: int) -> float:
    """The per-example sd behind a 95% interval of a mean over n examples."""
    return (ci[1] - ci[0]) / (2 * Z_CI) * math.sqrt(n)
