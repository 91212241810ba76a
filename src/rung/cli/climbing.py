"""The climb and its runs: `rung climb` (the ladder, or with --dry-run its count and price),
`rung eval` (one rung, stored like a climb) and `rung runs` (the runs so far, and the
baseline that rung gate compares with)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from rung.cli.shared import err, out, progress, task_store, user_errors
from rung.terminal import climb_table, dry_run_table, plan_table, runs_table


def climb(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ask the model again even for prompts it has answered"),
    force: bool = typer.Option(False, "--force", help="fine-tune even on data the audit "
                                                      "calls not ready"),
    tune: Optional[str] = typer.Option(None, "--tune", help="measure the fine-tune of this "
                                       "past run again instead of training one"),
    climb_all: bool = typer.Option(False, "--all", help="measure every rung instead of "
                                   "stopping at the first whose choice reaches the target on val"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count and price what every rung "
                                 "would send to its models, without sending anything"),
    budget: Optional[float] = typer.Option(None, "--budget", min=0, help="stop before the "
                                           "dollars spent at remote models would pass this"),
) -> None:
    """Build and measure each rung on the same test split, cheapest first; stop at the first
    that reaches the target (on val) and recommend the first that reaches it on test."""
    if dry_run:
        from rung.dry_run import dry_run as count_requests

        with user_errors():
            given = [flag for flag, value in (("--tune", tune), ("--budget", budget))
                     if value is not None]
            if given:  # a dry run counts a first climb of every rung and spends nothing
                from rung.errors import ConfigError

                raise ConfigError(f"--dry-run counts what a first climb of every rung would "
                                  f"send; {' and '.join(given)} would change nothing there",
                                  fix=f"drop {' and '.join(given)}, or --dry-run")
            estimate = count_requests(path)
        if as_json:
            print(json.dumps(estimate, indent=2))
        else:
            out.print(plan_table(estimate["work"]))
            out.print(dry_run_table(estimate))
            out.print(f"[dim]{estimate['estimate']}[/]", highlight=False)
        return
    _climb(path, as_json=as_json, no_cache=no_cache, only=None, force=force, tune_from=tune,
           climb_all=climb_all, budget=budget)


def eval_rung(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    rung: str = typer.Option(..., "--rung", help="classifier, prompt, few-shot, rag, "
                             "bigger-model or finetune"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    no_cache: bool = typer.Option(False, "--no-cache", help="ask the model again"),
    force: bool = typer.Option(False, "--force", help="fine-tune even on data the audit "
                                                      "calls not ready"),
) -> None:
    """Measure one rung on the test split; the run is stored like a climb's."""
    _climb(path, as_json=as_json, no_cache=no_cache, only=rung, force=force)


def _climb(path: Path, *, as_json: bool, no_cache: bool, only: str | None,
           force: bool = False, tune_from: str | None = None, climb_all: bool = False,
           budget: float | None = None) -> None:
    """A climb, or with `only` one rung of it (rung eval): run, stored, printed the same way."""
    from rung.climb import climb as run_climb

    # progress goes to stderr: --json keeps stdout for the JSON, and a long climb still shows
    with user_errors(), progress(True) as reporter:
        result = run_climb(path, reporter=reporter, use_cache=not no_cache, only=only,
                           force=force, tune_from=tune_from, climb_all=climb_all,
                           budget=budget, on_plan=reporter.planned)
    summary = result.summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out.print(climb_table(summary))
    rec = summary["recommendation"]
    colour = "green" if rec["rung"] else "yellow"
    out.print(Text.assemble(("recommendation: ", f"bold {colour}"), rec["reason"]),
              highlight=False)
    for reason in rec["reasons"]:
        out.print(f"  - {reason['text']}", highlight=False, markup=False)
    if only is None:
        for name, why in summary["not_measured"].items():
            out.print(f"not measured: {name}: {why}", style="dim", highlight=False,
                      markup=False)
    if (cache := summary["cache"]) and cache["hits"]:
        out.print(f"[dim]{cache['hits']:,} model answers came from the store, "
                  f"{cache['misses']:,} were asked[/]")
    for model, used in (summary.get("spent") or {}).items():  # every rung, built ones too
        price = "unpriced" if used["dollars"] is None else f"${used['dollars']:,.4f}"
        out.print(f"remote {model}: {used['requests']:,} requests, {used['tokens_in']:,} "
                  f"tokens in, {used['tokens_out']:,} out, {price} for the whole run",
                  style="dim", highlight=False, markup=False)
    out.print(f"[dim]run {summary['run_id']} stored in {result.task.store_dir}[/]")
    if result.report is not None:
        out.print(f"report: {result.report}", highlight=False, soft_wrap=True)


def runs(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder"),
    limit: int = typer.Option(20, help="how many runs to list"),
    as_json: bool = typer.Option(False, "--json"),
    pin: Optional[str] = typer.Option(None, "--pin", help="make this run the baseline "
                                      "rung gate compares with"),
) -> None:
    """List past runs of a task, newest first: how each ended, and why when it failed."""
    from rung.task import load_task

    with user_errors():
        task = load_task(path)
        if not (task.store_dir / "runs.db").exists():
            err.print("no runs yet: try 'rung climb' first")
            raise typer.Exit(0)
        with task_store(path) as store:
            if pin is not None:
                store.pin(pin)
                err.print(f"run {pin} is the baseline of rung gate")
            rows = store.runs(limit)
    if as_json:
        print(json.dumps([{"run_id": r.id, **r.__dict__} for r in rows], indent=2))
        return
    out.print(runs_table(task.task.name, rows))
