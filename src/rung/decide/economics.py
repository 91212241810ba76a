"""What the decision says about money: a measured tune priced against the best prompted rung
(its build, its upkeep, the volume from which it pays for itself) and what serving the
classifier takes on a CPU.

Apart from the choice because the sentence that prices a tune is the longest in the
headline and needs none of the tree; the arithmetic itself is rung.costs.
"""

from __future__ import annotations

from typing import Any

from rung.costs import CostsTable, cpu_serving_cost, tune_economics
from rung.decide.rules import LLM_PROMPTED, val_score
from rung.rungs.base import RungResult


def priced_tune(ordered: list[RungResult], prices: CostsTable) -> dict[str, Any] | None:
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


def costs_clause(economics: dict[str, Any] | None, chosen: bool) -> str:
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


def no_llm(r: RungResult, prices: CostsTable) -> str:
    """What serving the classifier takes, measured: its latency and CPU cost."""
    latency, cost = r.test.latency_ms, cpu_serving_cost(r.test.latency_samples_ms, prices)
    if not latency or cost is None:
        return ""
    return (f", answering in {latency['p50']:.2g} ms (p50) on a CPU for ${cost:.2g} a million "
            "requests, with no LLM to serve")
