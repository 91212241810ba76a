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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rung.costs import CostsTable, cpu_serving_cost, labelling_cost, tune_economics
from rung.data.audit.size import to_collect
from rung.eval.power import Power, split_power
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


def reaches(score: float, ci: Sequence[float] | None, target: float,
            criterion: Criterion) -> bool:
    """The stop rule: the point estimate, or with "lower-bound" the 95% interval's low end,
    reaches the target."""
    if criterion == "lower-bound":
        return ci is not None and ci[0] >= target
    return score >= target


@dataclass(frozen=True)
class Reason:
    rung: str
    kind: str  # format, knowledge-gap, capacity-gap, data, no-gain, below-target; for a
    # measured tune also its warning signs: overfitting, memorisation, perfect-train-accuracy,
    # forgetting (see tune_health)
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)


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


def fast_enough(r: RungResult, max_latency_ms: float | None) -> bool:
    """Within the latency budget ([eval] max_latency_ms: p95 of single requests), if any."""
    return max_latency_ms is None or r.test.latency_ms.get("p95", float("inf")) <= max_latency_ms


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
    gaps = _gaps(by_name, compare)
    reasons = [reason for r in below for reason in (
        [_too_slow(r, max_latency_ms)] if _reaches(r, target, criterion)  # only the budget
        else _why_not(r, target, criterion, gaps, audit, by_name, compare))]
    economics = _economics(ordered, prices)
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
        cautions = tune_health(chosen) + _personal_data(chosen, audit)
        unready = _unready_data(chosen, audit)
        budget = (f"; it answers within the {max_latency_ms:g} ms budget "
                  f"({chosen.test.latency_ms['p95']:.0f} ms at p95)" if max_latency_ms else "")
        headline = (_headline(chosen, ordered, target, criterion, compare, prices) + budget
                    + _unmeasured(chosen, ordered, stopped)
                    + _costs_clause(economics, chosen.rung == "finetune") + small
                    + _cautions_clause(cautions) + _unready_clause(unready))
        return Decision(chosen.rung, headline, reasons + cautions + unready, None, criterion,
                        target, economics, power, stopped)
    slow = [r for r in ordered if _reaches(r, target, criterion)]
    ready = audit is None or audit.get("verdict") != "not ready"  # else data comes first
    step, more_data = (_smaller_model(slow[0], max_latency_ms, by_name), None) \
        if slow and ready else next_step(by_name, gaps, audit, stopped)
    labelling = None if more_data is None else _labelling(audit, prices, more_data)
    if labelling is not None:
        step += _labelling_clause(labelling)
    return Decision(None, f"no rung reaches {target} ({_bound(criterion)}); the best on val is "
                    f"{_describe(decisive)}{small}. Next: {step}", reasons, step, criterion,
                    target, economics, power, stopped, labelling, decisive.rung)


def _labelling(audit: dict[str, Any] | None, prices: CostsTable,
               tier: str) -> dict[str, Any] | None:
    """The examples still to label to reach the seeds' `tier` ("minimum" while the audit
    says not ready, else "good"), read off the audit's size check, and their price: the
    seeds' "hidden boss" of a fine-tune's bill. None when the audit asks for none."""
    size = next((c for c in (audit or {}).get("checks", []) if c.get("check") == "size"), None)
    details = (size or {}).get("details") or {}
    if "table" not in details:
        return None
    wanted = to_collect(details)[tier]
    if not wanted:
        return None
    table = details["table"]
    return {"tier": tier, "reaches": table[tier], **labelling_cost(wanted, prices)}


def _labelling_clause(labelling: dict[str, Any]) -> str:
    wanted = (f"{labelling['examples']:,} more distinct labelled examples reach the seeds' "
              f"{labelling['tier']} ({labelling['reaches']:,}")
    if labelling["dollars"] is None:
        return (f"; {wanted}); set [costs] label_minutes_per_example to price labelling them, "
                "the seeds' \"hidden boss\" of the bill")
    return (f"; {wanted}), about {labelling['person_hours']:,.1f} person-hours to label at "
            f"{labelling['minutes_per_example']:g} min each (${labelling['dollars']:,.0f})")


def _too_slow(r: RungResult, max_latency_ms: float | None) -> Reason:
    p95 = r.test.latency_ms.get("p95")
    took = f"{p95:.0f} ms at p95" if p95 is not None else "no measured latency"
    return Reason(r.rung, "too-slow", f"{r.rung}: reaches the target ({_interval(r)}) but "
                  f"answers in {took}, over the {max_latency_ms:g} ms budget",
                  {"p95_ms": p95, "max_latency_ms": max_latency_ms})


def _smaller_model(r: RungResult, max_latency_ms: float | None,
                   by_name: dict[str, RungResult]) -> str:
    """The seeds' "is the base model too slow or expensive? fine-tune a smaller model": a
    rung reached the score but not the budget, so the score is there to be had cheaper."""
    if r.rung == "classifier":  # no model to shrink: the classifier's own choices are slow
        return (f"a faster classifier: {r.rung}{_choice(r)} reaches the target but answers in "
                f"{r.test.latency_ms.get('p95', float('nan')):.0f} ms at p95 against a "
                f"{max_latency_ms:g} ms budget; TF-IDF features ([classifier] features) skip "
                "the embedding model, or serve it where the embedding is faster (a GPU)")
    tuned = by_name.get("finetune")
    also = ("; the tune measured here is too slow as well: a smaller base model to tune, or "
            "faster serving (a GPU, quantised weights, batching)"
            if tuned is r or (tuned is not None and not fast_enough(tuned, max_latency_ms))
            else "")
    return (f"fine-tune a smaller model: {r.rung} reaches the target but answers in "
            f"{r.test.latency_ms.get('p95', float('nan')):.0f} ms at p95 against a "
            f"{max_latency_ms:g} ms budget; a tune of a smaller model can learn what it does"
            + also)


def val_score(r: RungResult) -> float:
    """The score on val of the candidate a rung kept (-inf for a result built without)."""
    return max((c.val_score for c in r.candidates if c.chosen), default=float("-inf"))


def _economics(ordered: list[RungResult], prices: CostsTable) -> dict[str, Any] | None:
    """A measured tune priced against the best prompted rung, best by its score on val (a
    tie goes to the cheaper): a choice, so never made on test."""
    tuned = next((r for r in ordered if r.rung == "finetune"), None)
    prompted = [r for r in ordered if r.rung in LLM_PROMPTED]
    if tuned is None or not prompted:
        return None
    best = max(prompted, key=val_score)
    return tune_economics(_tokens(tuned), _tokens(best), prices)


def _tokens(r: RungResult) -> dict[str, Any]:
    return {"rung": r.rung, "tokens_in": r.test.tokens_in, "tokens_out": r.test.tokens_out,
            "training": r.training}


def _costs_clause(economics: dict[str, Any] | None, chosen: bool) -> str:
    """The issue's "would cost $X to build and Y hours of upkeep a quarter", and for a chosen
    tune the volume from which it pays for itself against the best prompted pipeline."""
    if economics is None:
        return ""
    e = economics
    devices = e.get("devices", 1)
    hours = (f"{e['build_hours']:.2f} {e['device'].upper()}-hours at ${e['hour_price']:.2f}/h: "
             f"{devices} GPUs for the wall-clock time of the measured run"
             if devices > 1 else
             f"{e['build_hours']:.2f} h at ${e['hour_price']:.2f}/h, a {e['device'].upper()} "
             "hour at the throughput measured on one")
    line = (f"; the tune {'costs' if chosen else 'would cost'} ${e['build']:,.2f} to build "
            f"({hours}) and "
            f"{e['upkeep_hours_per_quarter']:g} hours of upkeep a quarter "
            f"(${e['upkeep_per_quarter']:,.0f} with retraining)")
    if chosen:
        line += (f"; against {e['prompted']} it pays for itself (requests a quarter): "
                 + ", ".join(_pays_off(name, point["requests_per_quarter"])
                             for name, point in e["break_even"].items()))
    return line


def _pays_off(serving: str, requests: float | None) -> str:
    where = "self-hosted" if serving == "self_hosted" else f"on {serving}"
    return f"never {where}" if requests is None else f"past {_volume(requests)} {where}"


def _volume(requests: float | None) -> str:
    if requests is None:
        return "never"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if requests >= size:
            return f"{requests / size:.1f}{unit}"
    return f"{requests:.0f}"


def _reaches(r: RungResult, target: float, criterion: Criterion) -> bool:
    s = r.test.score
    return reaches(s.value, s.ci, target, criterion)


def _bound(criterion: Criterion) -> str:
    return "by the interval's lower bound" if criterion == "lower-bound" else "by point estimate"


def _interval(r: RungResult) -> str:
    s = r.test.score
    return f"{s.value:.3f} ({s.ci[0]:.3f}-{s.ci[1]:.3f})"


def _describe(r: RungResult) -> str:
    return f"{r.rung} at {_interval(r)}"


def _gaps(by_name: dict[str, RungResult], compare: Compare | None) -> dict[str, Any]:
    """What the costlier rungs' paired tests say about the cheaper LLM rungs. A gap is read
    against an LLM rung, never the classifier: where a rung was paired with the classifier
    (it scored best on val), it is paired again, on the same test examples, with the LLM rung
    below it that scored best on val."""
    gaps: dict[str, Any] = {}
    # "tuning": what the tune adds to the base model with its best prompt, the comparison the
    # seeds ask of every tune; not to the classifier or the bigger model it may have been
    # paired with because they scored best on val
    for rung, gap, without in (("rag", "knowledge", ("prompt", "few-shot")),
                               ("bigger-model", "capacity", ("prompt", "few-shot", "rag")),
                               ("finetune", "tuning", ("prompt", "few-shot", "rag"))):
        r = by_name.get(rung)
        if r is None:
            continue
        c = r.versus if r.versus is not None and r.versus[0] in without else None
        cheaper = [by_name[name] for name in without if name in by_name]
        if c is None and compare is not None and cheaper:
            partner = max(cheaper, key=val_score)  # the first of equals: the cheaper
            c = (partner.rung, compare(partner, r))
        if c is None and not cheaper and gap == "tuning" and r.versus is not None:
            c = r.versus  # no prompted rung was measured: its own pairing is all there is
        if c is not None and c[1].meaningful:
            gaps[gap] = c[1]
            gaps[f"{gap}-against"] = c[0]  # the rung the gap was measured against
    return gaps


def _gap_of(r: RungResult, gap: str, costlier: str, gaps: dict[str, Any],
            by_name: dict[str, RungResult], compare: Compare | None
            ) -> PairedComparison | None:
    """The `costlier` rung's meaningful gain over `r` itself, on the same test examples: a
    gap found against the prompt is no reason why few-shot fell short (few-shot may even
    beat retrieval). The capacity gap is only ever the bigger model against the pipeline it
    ran: against another rung the gain mixes the model with the pipeline."""
    if gaps.get(f"{gap}-against") == r.rung:
        return gaps[gap]
    if gap == "capacity" or costlier not in by_name:
        return None
    versus = by_name[costlier].versus  # compare_with_cheaper may have paired them already
    if versus is not None and versus[0] == r.rung:
        c = versus[1]
    elif compare is not None:
        c = compare(r, by_name[costlier])
    else:
        return None
    return c if c.meaningful else None


def _why_not(r: RungResult, target: float, criterion: Criterion, gaps: dict[str, Any],
             audit: dict[str, Any] | None, by_name: dict[str, RungResult],
             compare: Compare | None) -> list[Reason]:
    s, shown = r.test.score, _describe(r)
    reasons: list[Reason] = []
    unusual = (r.training or {}).get("unusual_settings") if r.rung == "finetune" else None
    if unusual:  # a tune that fell short with settings the seeds would not use: those first
        reasons.append(Reason(r.rung, "settings", "finetune: trained with settings outside the "
                              f"seeds' typical ranges: {'; '.join(unusual)}",
                              {"unusual_settings": unusual}))
    failures = r.test.failures
    if failures and s.n and failures.get("format", 0) / s.n >= FORMAT_SHARE:
        share = failures["format"] / s.n
        reasons.append(Reason(r.rung, "format", f"{r.rung}: {share:.0%} of its answers break the "
                              "output format: a behaviour problem, which fine-tuning is for",
                              {"failures": failures}))
    if r.rung in ("prompt", "few-shot") and (
            c := _gap_of(r, "knowledge", "rag", gaps, by_name, compare)) is not None:
        reasons.append(Reason(r.rung, "knowledge-gap", f"{r.rung}: the model lacks the knowledge: "
                              f"retrieval adds {c.difference:+.3f} (p={c.p_value:.2g})",
                              {"rag_vs": c.to_dict()}))
    if r.rung in ("prompt", "few-shot", "rag") and (
            c := _gap_of(r, "capacity", "bigger-model", gaps, by_name, compare)) is not None:
        reasons.append(Reason(r.rung, "capacity-gap", f"{r.rung}: the small model lacks capacity: "
                              f"the bigger model adds {c.difference:+.3f} (p={c.p_value:.2g})",
                              {"bigger_vs": c.to_dict()}))
    reasons += tune_health(r)
    if r.rung == "finetune" and audit is not None and audit.get("verdict") != "ready":
        reasons.append(Reason(r.rung, "data", f"finetune: the audit calls the data "
                              f"{audit['verdict']}: {'; '.join(audit.get('reasons', []))}",
                              {"audit": audit.get("audit_id")}))
    if r.versus is not None and not r.versus[1].meaningful:
        cheaper, c = r.versus
        verdict = "significantly worse than" if c.worse else \
            f"a gain below [eval] min_gain ({c.min_gain:g}) over" if _below_min_gain(c) \
            else "a gain significant by p, but whose 95% CI includes none, over" \
            if c.significant and c.difference > 0 else "no significant gain over"
        reasons.append(Reason(r.rung, "no-gain", f"{r.rung}: {verdict} {cheaper} "
                              f"({c.difference:+.3f}, p={c.p_value:.2g})", {"versus": c.to_dict()}))
    if not reasons:
        reasons.append(Reason(r.rung, "below-target", f"{shown} is below the target {target} "
                              f"({_bound(criterion)})", {"score": s.value, "ci": list(s.ci)}))
    return reasons


def tune_health(r: RungResult) -> list[Reason]:
    """A measured tune's warning signs: the seeds' overfitting signals read off its curves and
    the general-capability check ("worse than base on general tasks"). The seeds say to check
    them before shipping, so a tune that forgot or memorised is never recommended, or
    explained, without them."""
    training = r.training or {}
    reasons = [Reason(r.rung, s["name"], f"{r.rung}: {s['name']}: {s['evidence']} "
                      f"(fix: {s['fix']})", {"fix": s["fix"], "evidence": s["evidence"]})
               for s in training.get("overfitting") or []]
    check = training.get("regression")
    if check and check.get("flagged"):
        reasons.append(Reason(r.rung, "forgetting", f"{r.rung}: forgetting: {check['finding']} "
                              f"(fix: {check['fix']})",
                              {"fix": check["fix"], "drop": check["drop"],
                               "p_value": check["p_value"]}))
    return reasons


def _personal_data(r: RungResult, audit: dict[str, Any] | None) -> list[Reason]:
    """The seeds' checklist says "PII removed" before training. The audit only warns on
    e-mails, phone numbers and addresses (it refuses cards, ids and secrets), so a tune may be
    chosen that learnt some: it can repeat them, and the decision says so."""
    if r.rung != "finetune":
        return []
    found = next((c for c in (audit or {}).get("checks", [])
                  if c.get("check") == "pii" and c.get("status") != "pass"), None)
    if found is None:
        return []
    fix = ("tune on a redacted copy (rung audit DATA --redact writes one): a tune can repeat "
           "what it was trained on")
    return [Reason(r.rung, "personal-data", f"{r.rung}: trained on personal data: "
                   f"{found['finding']} (fix: {fix})", {"fix": fix, "evidence": found["finding"]})]


def _unready_data(r: RungResult, audit: dict[str, Any] | None) -> list[Reason]:
    """A rung at the target on data the audit calls not ready: the choice stands on it. A
    leak (a val or test example with a copy in train) inflates the very score that reached
    the target, and contradictions cap what any rung can score; the decision says so where
    it is read, not only under the JSON's `audit`."""
    if audit is None or audit.get("verdict") != "not ready":
        return []
    found = audit.get("reasons", [])
    leak = any(reason.startswith("leakage") for reason in found)
    fix = "rung audit DATA lists what to mend (--fix writes a cleaned copy); climb again after"
    return [Reason(r.rung, "data", f"{r.rung}: measured on data the audit calls not ready: "
                   + "; ".join(found)
                   + (" (a copy of a held-out example in train inflates its score)"
                      if leak else "") + f" (fix: {fix})",
                   {"audit": audit.get("audit_id"), "leakage": leak, "fix": fix})]


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
    line = f"{opening}use {chosen.rung}{_choice(chosen)}: it reaches {_interval(chosen)}"
    line += f" against a target of {target} ({_bound(criterion)})"
    if chosen.rung == "classifier":
        line += _no_llm(chosen, prices)
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


def _below_min_gain(c: PairedComparison) -> bool:
    """Significantly better, but by less than the gain the team asked for."""
    return c.significant and 0 < c.difference < c.min_gain


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


def _no_llm(r: RungResult, prices: CostsTable) -> str:
    """What serving the classifier takes, measured: its latency and CPU cost."""
    latency, cost = r.test.latency_ms, cpu_serving_cost(r.test.latency_samples_ms, prices)
    if not latency or cost is None:
        return ""
    return (f", answering in {latency['p50']:.2g} ms (p50) on a CPU for ${cost:.2g} a million "
            "requests, with no LLM to serve")


def _unmeasured(chosen: RungResult, ordered: list[RungResult], stopped: str | None) -> str:
    """Says so when the costlier rungs were not measured because the climb stopped."""
    if stopped is None or stopped != chosen.rung or chosen is not ordered[-1]:
        return ""
    return ("; the climb stopped there (its choice reached the target on val), so the costlier "
            "rungs were not measured: `rung climb --all` measures them")


def _choice(r: RungResult) -> str:
    details = r.pipeline.details
    if r.pipeline.classifier:
        return f" ({candidate_label(r.pipeline.classifier)})"
    if "k" in details and r.pipeline.retrieval is None:
        selection = f" {details['selection']}" if "selection" in details else ""
        return f" with k={details['k']}{selection}"
    if r.pipeline.retrieval:
        return f" ({r.pipeline.retrieval.get('method')}, k={r.pipeline.retrieval.get('k')})"
    return ""


def next_step(by_name: dict[str, RungResult], gaps: dict[str, Any],
              audit: dict[str, Any] | None, stopped: str | None = None
              ) -> tuple[str, str | None]:
    """The seeds' tree, read from the bottom when nothing reached the target, and the size
    tier the step asks more data for (None: it asks for none). Data the audit calls not ready
    comes first and alone: it is no ground for training anything."""
    tuned = by_name.get("finetune")
    if audit is not None and audit.get("verdict") == "not ready":  # nothing else until then
        return ("more and cleaner data first: the audit calls it not ready ("
                + "; ".join(audit.get("reasons", [])) + "); climb again once `rung audit` "
                "passes", "minimum")
    if stopped is not None and stopped in by_name:
        return (f"climb the rest of the ladder (`rung climb --all`): {stopped} reached the "
                f"target on val ({val_score(by_name[stopped]):.3f}) but not on test, so the "
                "costlier rungs were not measured", None)
    if tuned is not None and "tuning" in gaps and "knowledge" not in gaps:
        return ("more data: fine-tuning helped significantly but not enough; the seeds' table "
                "says thousands of examples make the real difference", "good")
    return _tree_step(by_name, gaps), None


def _tree_step(by_name: dict[str, RungResult], gaps: dict[str, Any]) -> str:
    tuned = by_name.get("finetune")
    if tuned is not None and "tuning" in gaps:  # and knowledge: more data is not the step
        return "RAG plus fine-tune: both retrieval and training helped, neither is enough alone"
    if "capacity" in gaps:
        return "a different base model: the bigger model was significantly better"
    if "knowledge" in gaps:
        return "RAG plus fine-tune: retrieval closed part of a knowledge gap; train on top of it"
    if tuned is None:
        return _untuned_step(by_name)
    return ("a different base model or a redefined task: no rung, fine-tuning included, "
            "moved the score significantly")


def _untuned_step(by_name: dict[str, RungResult]) -> str:
    """No tune was measured and no gap found: the seeds' "is it style, format or behaviour?",
    asked of the LLM rung best on val. Broken formats are behaviour, fine-tuning's own ground.
    Answers well-formed but wrong with no retrieval measured may be missing facts, and the
    seeds put retrieval before training for that: fine-tuning teaches behaviour, not facts."""
    prompted = [by_name[name] for name in LLM_PROMPTED if name in by_name]
    if not prompted:
        return "fine-tune: no prompted rung was measured to say otherwise"
    best = max(prompted, key=val_score)
    failures, n = best.test.failures or {}, best.test.score.n
    if n and failures.get("format", 0) / n >= FORMAT_SHARE:
        return (f"fine-tune: {failures['format'] / n:.0%} of {best.rung}'s answers break the "
                "output format, a behaviour problem, which is what fine-tuning teaches")
    if "rag" not in by_name:
        wrong = " (well-formed but wrong)" if failures.get("content") else ""
        return (f"fine-tune if what {best.rung} gets wrong{wrong} is behaviour (style, format, a "
                "labelling rule); if it is facts the model lacks, give the task a corpus "
                "([task] corpus) and climb rag first: fine-tuning teaches behaviour, not facts")
    return "fine-tune: prompting, examples and retrieval fell short"
