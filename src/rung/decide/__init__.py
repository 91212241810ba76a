"""The decision: the seeds' tree walked on measurements, with a reason for every rung.

The seeds ask, in order: does this need an LLM at all (a plain classifier, "a different
architecture entirely")? Can prompting solve it (prompt, few-shot)? Is the gap missing
knowledge (retrieval)? Would a bigger model do (capacity)? Is it behaviour, format or style
(fine-tune), and is there the data for that? `decide` stops at the first rung whose score
reaches the target and says, for each rung below, why it was not enough, each reason read off
a measurement: the failure breakdown, a paired test, the audit. When no rung reaches the
target it names the next step the evidence points to, never a bare "no". When the test split
is too small to tell the decisive score from the target, the headline says so.

`reaches` is the stop rule, once: the climb asks it of each rung's choice on val (whether to
climb on), the decision asks it of the test scores (what to recommend).

This module chooses the rung and words the headline. The reasons a rung fell short are
shortfalls.py, the next step when none reached the target advice.py, the prices said in
the headline economics.py, and the terms all of them share (Reason, val_score, the latency
budget, how a score is said) rules.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rung.costs import CostsTable
from rung.decide.advice import labelling_clause, next_step, smaller_model, to_label
from rung.decide.economics import costs_clause, no_llm, priced_tune
from rung.decide.rules import SEEDS_ORDER, Compare, Criterion, Reason, bound, choice, \
    describe, fast_enough, interval, val_score
from rung.decide.shortfalls import measured_gaps, personal_data, too_slow, tune_health, \
    unready_data, why_not
from rung.eval.power import Power, split_power
from rung.eval.stats import PairedComparison
from rung.rungs.base import RungResult

__all__ = ["Decision", "Reason", "comparison_verdict", "decide", "fast_enough", "reaches",
           "val_score"]  # the decision, and what climb, the report and the terminal import


def reaches(score: float, ci: Sequence[float] | None, target: float,
            criterion: Criterion) -> bool:
    """The stop rule: the point estimate, or with "lower-bound" the 95% interval's low end,
    reaches the target."""
    if criterion == "lower-bound":
        return ci is not None and ci[0] >= target
    return score >= target


@dataclass(frozen=True)
class Decision:
    rung: str | None  # the rung to ship; None when none reached the target
    headline: str
    reasons: list[Reason]  # one or more per rung below the chosen one (all rungs if none)
    next_step: str | None  # when nothing reached the target: what the evidence points to
    criterion: Criterion
    target: float
    costs: dict[str, Any] | None = None  # a measured tune's build, upkeep and break-even
    power: Power | None = None  # what the test split can tell about the decisive score
    stopped: str | None = None  # the rung the climb stopped at (its choice reached it on val)
    # when the next step is more data: how many more examples and what labelling them costs
    labelling: dict[str, Any] | None = None
    # when none reached the target: the rung to fall back on (rung serve, rung gate), the
    # best on val
    best: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": [asdict(r) for r in self.reasons],
                "power": self.power.to_dict() if self.power else None}


def decide(results: Sequence[RungResult], *, target: float, criterion: Criterion = "point",
           audit: dict[str, Any] | None = None, prices: CostsTable | None = None,
           compare: Compare | None = None, stopped: str | None = None,
           binary: bool = True, max_latency_ms: float | None = None) -> Decision:
    """`audit` is the data's latest audit summary (verdict, reasons), if there is one;
    `prices` ([costs] in rung.toml, the seeds' figures by default) price a measured tune;
    `compare` pairs a costlier rung with the chosen one on test (without it, only a rung whose
    own `versus` is the chosen one gets a verdict); `stopped` names the rung whose choice
    reached the target on val, where the climb stopped; `binary`: the metric is 0/1;
    `max_latency_ms`: a rung must also answer within it (p95) to be chosen."""
    prices = prices or CostsTable()
    by_name = {r.rung: r for r in results}
    ordered = [by_name[name] for name in SEEDS_ORDER if name in by_name]
    chosen = next((r for r in ordered if _reaches(r, target, criterion)
                   and fast_enough(r, max_latency_ms)), None)
    below = ordered[:ordered.index(chosen)] if chosen else ordered
    gaps = measured_gaps(by_name, compare)
    reasons = [reason for r in below for reason in (
        [too_slow(r, max_latency_ms)] if _reaches(r, target, criterion)  # only the budget
        else why_not(r, target, criterion, gaps, audit, by_name, compare))]
    economics = priced_tune(ordered, prices)
    # with none at the target, the one to fall back on (what serve and gate take) is a
    # choice, so made on val (the first of equals, the cheaper), as climb.recommend does
    decisive = chosen or max(ordered, key=val_score)
    s = decisive.test.score
    power = split_power(decisive.rung, s.value, s.ci, s.n, target, binary=binary,
                        reached=chosen is not None,
                        paired_ci=decisive.versus[1].ci if decisive.versus else None)
    small = f"; {power.sentence()}" if power.underpowered else ""
    if chosen is not None:
        # a tune is shipped with its warning signs said, and what its data taught it
        cautions = tune_health(chosen) + personal_data(chosen, audit)
        unready = unready_data(chosen, audit)
        budget = (f"; it answers within the {max_latency_ms:g} ms budget "
                  f"({chosen.test.latency_ms['p95']:.0f} ms at p95)" if max_latency_ms else "")
        headline = (_headline(chosen, ordered, target, criterion, compare, prices) + budget
                    + _unmeasured(chosen, ordered, stopped)
                    + costs_clause(economics, chosen.rung == "finetune") + small
                    + _cautions_clause(cautions) + _unready_clause(unready))
        return Decision(chosen.rung, headline, reasons + cautions + unready, None, criterion,
                        target, economics, power, stopped)
    slow = [r for r in ordered if _reaches(r, target, criterion)]
    ready = audit is None or audit.get("verdict") != "not ready"  # else data comes first
    step, more_data = (smaller_model(slow[0], max_latency_ms, by_name), None) \
        if slow and ready else next_step(by_name, gaps, audit, stopped)
    labelling = None if more_data is None else to_label(audit, prices, more_data)
    if labelling is not None:
        step += labelling_clause(labelling)
    return Decision(None, f"no rung reaches {target} ({bound(criterion)}); the best on val is "
                    f"{describe(decisive)}{small}. Next: {step}", reasons, step, criterion,
                    target, economics, power, stopped, labelling, decisive.rung)


def _reaches(r: RungResult, target: float, criterion: Criterion) -> bool:
    s = r.test.score
    return reaches(s.value, s.ci, target, criterion)


def _unready_clause(unready: list[Reason]) -> str:
    if not unready:
        return ""
    leak = unready[0].evidence["leakage"]
    return ("; but the audit calls the data not ready" + (
        ", leakage among its reasons, so the test score may be inflated" if leak else "")
        + ": mend it and climb again before trusting this")


def _cautions_clause(cautions: list[Reason]) -> str:
    if not cautions:
        return ""
    signs = "; ".join(f"{c.kind} (fix: {c.evidence['fix']})" for c in cautions)
    return f"; check before shipping: the tune shows {signs}"


def _headline(chosen: RungResult, ordered: list[RungResult], target: float,
              criterion: Criterion, compare: Compare | None, prices: CostsTable) -> str:
    opening = "no LLM is needed for this task: " if chosen.rung == "classifier" else ""
    line = f"{opening}use {chosen.rung}{choice(chosen)}: it reaches {interval(chosen)}"
    line += f" against a target of {target} ({bound(criterion)})"
    if chosen.rung == "classifier":
        line += no_llm(chosen, prices)
    if chosen.versus is not None:  # what it adds over the cheaper rung it was paired with
        cheaper, c = chosen.versus
        line += f", {c.difference:+.3f} over {cheaper} (p={c.p_value:.2g})"
        if not c.meaningful:  # it reached the target, but it does not beat the cheaper rung
            verdict = comparison_verdict(c.meaningful, c.worse, c.significant, c.difference,
                                         c.min_gain)
            told = (f"on these {c.n} test examples it is not told apart from the cheaper "
                    f"{cheaper} ({c.a_score:.3f}), which may serve as well"
                    if not c.significant else
                    f"the cheaper {cheaper} ({c.a_score:.3f}) is better" if c.worse else
                    f"the cheaper {cheaper} ({c.a_score:.3f}) may serve as well")
            line += f", {verdict}: {told}"
    for r in ordered[ordered.index(chosen) + 1:]:  # what each costlier rung would add over
        c = _against(chosen, r, compare)            # it, paired on the same test examples
        if c is None:
            continue
        verdict = comparison_verdict(c.meaningful, c.worse, c.significant, c.difference,
                                     c.min_gain)
        line += f"; {r.rung} would add {c.difference:+.3f} (p={c.p_value:.2g}), {verdict}"
    return line


def comparison_verdict(meaningful: bool, worse: bool, significant: bool, difference: float,
                       min_gain: float) -> str:
    """A paired comparison in words, one wording for the headline and the report: a gain
    with p < alpha is never "not significant", though it may fall short of the gain the team
    asked for ([eval] min_gain) or its interval may still hold no gain."""
    if meaningful:
        return "significant"
    if worse:
        return "significantly worse"
    if significant and 0 < difference < min_gain:
        return f"significant but below [eval] min_gain ({min_gain:g})"
    if significant and difference > 0:
        return "significant by p, but its 95% CI includes no gain"
    return "not significant"


def _against(chosen: RungResult, r: RungResult, compare: Compare | None
             ) -> PairedComparison | None:
    if compare is not None:
        return compare(chosen, r)
    if r.versus is not None and r.versus[0] == chosen.rung:
        return r.versus[1]
    return None


def _unmeasured(chosen: RungResult, ordered: list[RungResult], stopped: str | None) -> str:
    """Says so when the costlier rungs were not measured because the climb stopped."""
    if stopped is None or stopped != chosen.rung or chosen is not ordered[-1]:
        return ""
    return ("; the climb stopped there (its choice reached the target on val), so the costlier "
            "rungs were not measured: `rung climb --all` measures them")
