"""Commands that judge stored runs before and after deploying: `rung check` (on production
inputs), `rung compare` (two runs, paired), `rung gate` (compare for CI, with an exit code)
and `rung report` (a run's HTML page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rung.cli.shared import err, out, progress, task_store, user_errors
from rung.terminal import print_check


def check(
    run: Optional[str] = typer.Argument(None, help="the run whose pipeline to check (default: "
                                        "the latest finished one)"),
    inputs: Path = typer.Option(..., "--inputs", help="production inputs: any data format "
                                "(with expected outputs), JSON lines with an input key, or a "
                                ".txt file of one input per line"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rung: Optional[str] = typer.Option(None, "--rung", help="default: the run's recommendation"),
    as_json: bool = typer.Option(False, "--json"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 on significant drift, a "
                                "significantly lower score or a failed edge-case probe"),
) -> None:
    """Validate before you deploy: the shipped pipeline on production inputs, its score
    against the test score, drift of the inputs from the training data, and edge cases."""
    from rung.check import check as run_check

    with user_errors():
        report = run_check(path, inputs, run_id=run, rung=rung)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print_check(out, err, report)
    if strict and report["significant"]:
        raise typer.Exit(1)


def compare(
    run_a: str = typer.Argument(..., help="the first run (the reference)"),
    run_b: str = typer.Argument(..., help="the second run"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Two runs on the same test split: what changed between them, then per rung and overall
    the paired difference by the task's metric (McNemar's exact test for a 0/1 metric, the
    sign-flip permutation test for a graded one) and the examples that got worse and
    better."""
    from rung.compare import compare_runs, describe_changes, moves
    from rung.task import load_task

    with user_errors(), task_store(path) as store:
        report = compare_runs(store, run_a, run_b, load_task(path))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    out.print(f"changed: {describe_changes(report)}", highlight=False, markup=False)
    for name, row in [*report["rungs"].items(), ("overall", report["overall"])]:
        out.print(f"{name}: {row['metric']} {row['a']['score']:.3f} -> {row['b']['score']:.3f} "
                  f"({row['difference']:+.3f}, 95% CI {row['ci'][0]:+.3f} "
                  f"to {row['ci'][1]:+.3f}, p = {row['p_value']:.3g}); {moves(row)}",
                  highlight=False, markup=False)
        for flip in row["right_to_wrong"][:5]:
            out.print(f"  line {flip['line']}: {flip['a']!r} -> {flip['b']!r} "
                      f"(expected {flip['expected']!r})", highlight=False, markup=False)


def gate(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="default: the run pinned "
                                           "with rung runs --pin"),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="default: climb the "
                                            "task now"),
    tolerance: float = typer.Option(0.0, "--tolerance", min=0, help="a drop this small is "
                                    "accepted even when significant"),
    markdown_to: Optional[Path] = typer.Option(None, "--markdown", help="write a summary for a "
                                               "pull-request comment here"),
    force: bool = typer.Option(False, "--force", help="replace an existing --markdown file "
                               "that is not an earlier gate summary"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """For CI: exit 1 when the candidate is significantly worse than the baseline (by more
    than --tolerance), 0 when not, 2 on an error."""
    from rung.climb import climb as run_climb
    from rung.compare import GATE_MARK, finished_run, gate as run_gate, is_gate_summary, \
        markdown
    from rung.files import atomic_write, claim
    from rung.task import load_task

    with user_errors():
        if markdown_to is not None:  # refused before a climb, not after
            claim([markdown_to], force=force, ours=is_gate_summary, option="--force")
        with task_store(path) as store:
            baseline = baseline or store.pinned()
            if baseline is not None:  # a baseline that is not there is said before a climb
                finished_run(store, baseline)
        if baseline is None:
            from rung.errors import ConfigError

            raise ConfigError("no baseline run", fix="pass --baseline RUN, or pin one: rung runs "
                              f"{path} --pin RUN")
        if candidate is None:
            with progress(not as_json) as reporter:
                candidate = run_climb(path, reporter=reporter).run_id
        with task_store(path) as store:
            verdict = run_gate(store, baseline, candidate, load_task(path), tolerance=tolerance)
        if markdown_to is not None:
            atomic_write(markdown_to, markdown(verdict) + f"\n{GATE_MARK}\n")
    if as_json:
        print(json.dumps(verdict, indent=2))
    else:
        out.print(markdown(verdict), highlight=False, markup=False)
    if verdict["fails"]:
        raise typer.Exit(1)


def report(
    run: str = typer.Argument(..., help="the run id (rung runs PATH lists them)"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    to: Optional[Path] = typer.Option(None, "--out", help="where to write the HTML file "
                                      "(default: the run's artifacts folder)"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out file that is "
                               "not an earlier rung report"),
) -> None:
    """Write a run's report: one self-contained HTML page, the decision first."""
    from rung.report import write_report

    with user_errors(), task_store(path) as store:
        written = write_report(store, run, to, force=force)
    print(written)
