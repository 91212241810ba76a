"""How results look in a terminal: the rich tables `rung` prints. Only rung.cli and its
progress display (progress.py) call these; the library itself never prints."""

from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text


def climb_table(summary: dict) -> Table:
    table = Table(title=f"{summary['task']}: {summary['metric']} (target {summary['target']})")
    for col in ("rung", "score", "95% CI", "p50/p95 ms", "tokens/req", "chosen on val"):
        table.add_column(col, justify="left" if col in ("rung", "chosen on val") else "right")
    from rung.decide import reaches

    criterion = (summary.get("recommendation") or {}).get("criterion") or "point"
    for r in summary["rungs"]:
        # as the decision reads it: with decide_on = "lower-bound", a point estimate over the
        # target whose interval is not is no green
        reached = reaches(r["score"], r["ci"], summary["target"], criterion)
        latency = r["latency_ms"]
        table.add_row(
            r["rung"],
            f"[{'green' if reached else 'red'}]{r['score']:.3f}[/]",
            f"{r['ci'][0]:.3f}-{r['ci'][1]:.3f}",
            f"{milliseconds(latency['p50'])}/{milliseconds(latency['p95'])}" if latency else "-",
            f"{r['tokens_per_request']:.0f}" if r["rung"] != "classifier" else "-",
            describe_choice(r["chosen"]),
        )
    return table


def milliseconds(value: float) -> str:
    """Whole milliseconds from 10 up; below, two significant figures (2.7, not 3; a
    classifier's 0.052, not 0): the terminal table and the report both show them so."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def describe_choice(chosen: dict[str, Any]) -> str:
    """A rung's choice on val in a few words: "role, k=10 similar, calibrated"."""
    if "features" in chosen:
        from rung.rungs.classifier import candidate_label

        return candidate_label(chosen)
    parts = [f"own #{chosen['own']}" if "own" in chosen else str(chosen.get("variant", ""))]
    if "method" in chosen and "k" in chosen and "selection" not in chosen:
        parts.append(f"{chosen['method']}, k={chosen['k']}")
    elif "k" in chosen:
        parts.append(f"k={chosen['k']} {chosen.get('selection', '')}".strip())
    if chosen.get("calibrated"):
        parts.append("calibrated")
    if "from" in chosen:
        parts.append(f"from {chosen['from']}")
    return ", ".join(p for p in parts if p)


_RUN_STATUS = {"done": "green", "running": "cyan", "failed": "red", "interrupted": "yellow"}


def runs_table(task: str, rows: Sequence[Any]) -> Table:
    """`rung runs`: one line a run (store.RunRow), the error of one that ended early."""
    table = Table(title=f"runs of {task}")
    for col in ("run", "created", "status", "metric", "best score", "target", "recommended",
                "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        best = f"{r.best:.3f}" if r.best is not None else "-"
        status = f"[{_RUN_STATUS.get(r.status, 'white')}]{r.status}[/]"
        table.add_row(r.id, r.created, status, r.metric, best, str(r.target),
                      r.recommendation or "none", Text(r.error or ""))
    return table


_STATUS = {"pass": "green", "warn": "yellow", "fail": "red"}
_VERDICT = {"ready": "green", "ready with warnings": "yellow", "not ready": "red"}


def print_audit(out: Console, summary: dict) -> None:
    title = f"audit of {summary['data']}: {summary['examples']} examples, {summary['format']}, " \
            f"{summary['kind']}"
    table = Table(title=title, show_lines=True)
    for col in ("check", "status", "finding", "how to fix"):
        table.add_column(col, overflow="fold")
    for c in summary["checks"]:
        colour = _STATUS[c["status"]]
        table.add_row(c["check"], f"[{colour}]{c['status']}[/]", c["finding"], c["fix"])
    out.print(table)
    for name, why in summary["skipped"].items():
        out.print(f"[dim]skipped {name}: {why}[/]")
    if summary["inferred"]:
        out.print(f"[dim]inferred from the data: {', '.join(summary['inferred'])} "
                  f"(set them in rung.toml or with --kind/--model)[/]")
    colour = _VERDICT[summary["verdict"]]
    out.print(f"[bold {colour}]verdict: {summary['verdict']}[/]", highlight=False)
    for reason in summary["reasons"]:
        out.print(f"  - {reason}", highlight=False, markup=False)
    if "fix" in summary:
        f = summary["fix"]
        out.print(f"cleaned copy: {f['output']} ({f['kept']} kept, {f['removed']} removed, "
                  f"{f['set_aside']} set aside, {f['redacted']} redacted)", highlight=False)
    if "redacted" in summary:
        r = summary["redacted"]
        out.print(f"redacted copy: {r['output']} ({r['changed']} examples changed)",
                  highlight=False)
    out.print(f"[dim]audit {summary['audit_id']} stored beside the data in .rung/runs.db[/]")


def print_estimate(out: Console, rows: Sequence[Any], *, title: str, lora_rank: int,
                   breakdown: bool) -> None:
    """The seeds' memory table (finetune.memory.SeedsRow rows), then each model's pools."""
    from rung.finetune.memory import seeds_header

    table = Table(title=title)
    for col in seeds_header(lora_rank):
        table.add_column(col, justify="left" if col == "Model Size" else "right")
    for r in rows:
        table.add_row(*r.cells())
    out.print(table)
    if not breakdown:
        return
    for r in rows:
        parts = Table(title=f"{r.model} ({r.parameters / 1e6:,.0f}M parameters)")
        for col in ("method", "weights", "grads", "optimizer", "activations", "total", "peak at"):
            parts.add_column(col, justify="left" if col in ("method", "peak at") else "right")
        for cells in r.breakdown():
            parts.add_row(*cells)
        out.print(parts)


def dry_run_table(estimate: dict) -> Table:
    """`rung climb --dry-run`: what each rung would send, per model, and what it would cost."""
    table = Table(title=f"{estimate['task']}: what a climb would send (dry run, nothing sent)")
    for name in ("rung", "model", "requests", "tokens in", "tokens out", "dollars"):
        table.add_column(name, justify="right" if name not in ("rung", "model") else "left")
    for row in [*estimate["rungs"], {"rung": "total", "model": "", **estimate["total"]}]:
        dollars = "no price" if row["dollars"] is None else f"${row['dollars']:,.4f}"
        table.add_row(row["rung"], row["model"], f"{row['requests']:,}",
                      f"{row['tokens_in']:,}", f"{row['tokens_out']:,}", dollars)
    return table


def plan_table(plan: dict) -> Table:
    """The work a climb is about to do, per rung, before its first model call."""
    split = plan["split"]
    caption = ("every LLM rung the ladder may measure: a climb that stops early does less, "
               "and answers in the store are not asked again")
    steps = sum(r.get("train_steps", 0) for r in plan["rungs"])
    if steps:
        caption += f"; before its answers, the fine-tune trains up to {steps:,} optimizer steps"
    table = Table(title=f"work ahead ({plan['selection']} selection on {split['val']} val "
                        f"examples, {split['test']} test)", caption=caption)
    for name in ("rung", "model", "cands", "val", "test+timed", "tok/req", "tokens"):
        table.add_column(name, justify="left" if name in ("rung", "model") else "right")
    for r in plan["rungs"]:
        table.add_row(r["rung"], r["model"], str(r["candidates"]), f"{r['val_examples']:,}",
                      f"{r['test_examples']} + {r['latency_requests']}",
                      f"~{r['tokens_in'] + r['tokens_out']:,}", f"~{r['tokens']:,}")
    total = plan["total"]
    table.add_row("total", "", "", "", "", "", f"~{total['tokens']:,}")
    return table


def print_check(out: Console, err: Console, report: dict) -> None:
    """`rung check` for a person: the score against test, each drift test, the edge cases,
    and a warning when the inputs include the run's own train examples."""
    score = report["score"]
    if score:
        out.print(f"{score['metric']} {score['score']:.3f} ({score['ci'][0]:.3f}-"
                  f"{score['ci'][1]:.3f}) on {report['n']} inputs, test "
                  f"{score['test_score']:.3f}; p = {score['p_value']:.3g} "
                  f"({score['test']})", highlight=False)
    for name, found in report["drift"].items():
        p = found["p_value"]
        out.print(f"{name}: {'DRIFT' if found['significant'] else 'ok'}"
                  + (f" (p = {p:.3g})" if p is not None else "")
                  + (f": {found['note']}" if found.get("note") else ""), highlight=False,
                  markup=False)
    probes = report["probes"]
    failed = "; ".join(f"{p['name']}: {p['why']}" for p in probes["probes"] if not p["ok"])
    out.print(f"probes: {probes['n'] - len(probes['failed'])} of {probes['n']} edge cases held"
              + (f" (failed: {failed})" if failed else ""), highlight=False, markup=False)
    seen = report["in_train"]
    if seen["copies"] or seen["near_copies"]:
        err.print(f"[yellow]warning:[/] {seen['copies']} of these inputs are train examples "
                  f"and {seen['near_copies']} near-copies of one (lines "
                  f"{', '.join(map(str, seen['lines'][:10]))}"
                  f"{' ...' if len(seen['lines']) > 10 else ''}): the pipeline was built "
                  "from them (its tune, classifier or demonstrations), so they flatter the "
                  "score; check on inputs it was not trained on",
                  highlight=False)
    if report["review_sample"]:
        out.print(f"review sample: {report['review_sample']}", soft_wrap=True)
