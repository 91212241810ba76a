"""Why each rung below the chosen one (every rung, when none reached the target) was not
enough, each reason read off a measurement: the share of answers breaking the format, a
costlier rung's paired gain (a knowledge or a capacity gap), the audit, a measured tune's
warning signs, a pairing with no meaningful gain, or just the score below the target.

Apart from the choice (the package's front) because these are the seeds' tree read at each
rung that fell short, and what a tune's data and curves warn of; the choice only gathers them.
"""

from __future__ import annotations

from typing import Any

from rung.decide.rules import FORMAT_SHARE, Compare, Criterion, Reason, bound, describe, \
    interval, val_score
from rung.eval.stats import PairedComparison
from rung.rungs.base import RungResult


def too_slow(r: RungResult, max_latency_ms: float | None) -> Reason:
    p95 = r.test.latency_ms.get("p95")
    took = f"{p95:.0f} ms at p95" if p95 is not None else "no measured latency"
    return Reason(r.rung, "too-slow", f"{r.rung}: reaches the target ({interval(r)}) but "
                  f"answers in {took}, over the {max_latency_ms:g} ms budget",
                  {"p95_ms": p95, "max_latency_ms": max_latency_ms})


def measured_gaps(by_name: dict[str, RungResult], compare: Compare | None) -> dict[str, Any]:
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


def why_not(r: RungResult, target: float, criterion: Criterion, gaps: dict[str, Any],
            audit: dict[str, Any] | None, by_name: dict[str, RungResult],
            compare: Compare | None) -> list[Reason]:
    """Why `r`, short of the target, was not enough: every reason a measurement gives, and
    "below-target" alone when none does."""
    s, shown = r.test.score, describe(r)
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
                              f"({bound(criterion)})", {"score": s.value, "ci": list(s.ci)}))
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


def personal_data(r: RungResult, audit: dict[str, Any] | None) -> list[Reason]:
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


def unready_data(r: RungResult, audit: dict[str, Any] | None) -> list[Reason]:
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


def _below_min_gain(c: PairedComparison) -> bool:
    """Significantly better, but by less than the gain the team asked for."""
    return c.significant and 0 < c.difference < c.min_gain
