"""What to do next when no rung reached the target: the seeds' tree read from the bottom (more
and cleaner data, the rest of the ladder, more data, RAG plus a tune, a different base
model, or fine-tuning and why), a smaller or faster model when a rung reached the score
but not the latency budget, and what labelling the examples the step asks for would cost.

Apart from the choice because it is advice, never a bare "no", and reads the same gaps and
audit the reasons do, from its own end of the tree.
"""

from __future__ import annotations

from typing import Any

from rung.costs import CostsTable, labelling_cost
from rung.data.audit.size import to_collect
from rung.decide.rules import FORMAT_SHARE, LLM_PROMPTED, choice, fast_enough, val_score
from rung.rungs.base import RungResult


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


def smaller_model(r: RungResult, max_latency_ms: float | None,
                  by_name: dict[str, RungResult]) -> str:
    """The seeds' "is the base model too slow or expensive? fine-tune a smaller model": a
    rung reached the score but not the budget, so the score is there to be had cheaper."""
    if r.rung == "classifier":  # no model to shrink: the classifier's own choices are slow
        return (f"a faster classifier: {r.rung}{choice(r)} reaches the target but answers in "
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


def to_label(audit: dict[str, Any] | None, prices: CostsTable,
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


def labelling_clause(labelling: dict[str, Any]) -> str:
    wanted = (f"{labelling['examples']:,} more distinct labelled examples reach the seeds' "
              f"{labelling['tier']} ({labelling['reaches']:,}")
    if labelling["dollars"] is None:
        return (f"; {wanted}); set [costs] label_minutes_per_example to price labelling them, "
                "the seeds' \"hidden boss\" of the bill")
    return (f"; {wanted}), about {labelling['person_hours']:,.1f} person-hours to label at "
            f"{labelling['minutes_per_example']:g} min each (${labelling['dollars']:,.0f})")
