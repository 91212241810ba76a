"""How a long command shows it is moving, on stderr: a bar per stage, and for a climb with a
plan (rung.plan) one bar for the whole climb with its time left. Where stderr is not a
terminal (a log, a pipe) a line per stage and per quarter of it instead. Only cli.py calls
this; the library reports stages through the callback it is handed and never prints."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rung.plan import Eta
from rung.terminal import plan_table


@contextmanager
def stage_progress(err: Console, enabled: bool, plan: dict | None = None
                   ) -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    """Stage bars on stderr; with a plan, also the whole climb's, whose ETA comes from the
    tokens done per second so far (rung.plan.Eta)."""
    if not enabled:
        yield lambda stage, total: (lambda n: None)
        return
    eta = Eta.for_plan(plan) if plan and plan["rungs"] else None
    shown = [eta is None]

    def announce(stage: str) -> None:
        """The plan, once, as the first rung starts: after the checks and the audit (an
        error there is the first thing said), before any model call."""
        if not shown[0] and not stage.startswith("audit"):
            shown[0] = True
            err.print(plan_table(plan))

    if not err.is_terminal:  # a log or a pipe: no bar redraws, a line per stage instead
        def lines(stage: str, total: int) -> Callable[[int], None]:
            announce(stage)
            if eta is not None:
                eta.begin(stage, total)
            return _stage_lines(err, stage, total, eta)
        yield lines
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[left]}"), console=err,
                   transient=False)
    with bar:
        overall = bar.add_task("climb (all rungs, by tokens)", total=eta.total,
                               left=_Left(eta)) if eta else None

        def reporter(stage: str, total: int) -> Callable[[int], None]:
            announce(stage)
            task_id = bar.add_task(stage, total=total, left="")
            if eta is not None:
                eta.begin(stage, total)

            def advance(n: int) -> None:
                bar.advance(task_id, n)
                if eta is not None:
                    eta.step(stage, n)
                    bar.update(overall, completed=eta.done)
            return advance
        yield reporter
        if overall is not None:
            bar.update(overall, completed=eta.total, left="")


class _Left:
    """The climb's time left, worked out each time the bar redraws, so it counts down
    between steps (a slow stage's rows take seconds each)."""

    def __init__(self, eta: "Eta") -> None:
        self.eta = eta

    def __format__(self, spec: str) -> str:
        return _left(self.eta)


def _left(eta: "Eta | None") -> str:
    seconds = eta.seconds_left() if eta is not None else None
    if eta is None or seconds is None:
        return ""
    text = f"about {seconds / 60:.0f} min left" if seconds >= 90 else \
        f"about {seconds:.0f} s left"
    return text + " plus training" if eta.training_unmeasured else text


def _stage_lines(err: Console, stage: str, total: int,
                 eta: "Eta | None" = None) -> Callable[[int], None]:
    """Progress where output is not a terminal: a line when a stage starts, a line at each
    quarter of it with the time so far (and the climb's time left), so a log shows the climb
    moving."""
    started = time.perf_counter()
    done = [0, 0]  # steps, quarters reported
    err.print(f"{stage} ({total} steps)", highlight=False, markup=False)

    def advance(n: int) -> None:
        done[0] += n
        if eta is not None:
            eta.step(stage, n)
        quarter = 4 * done[0] // max(total, 1)
        if quarter > done[1]:
            done[1] = quarter
            left = _left(eta)
            err.print(f"  {stage}: {done[0]}/{total} after {time.perf_counter() - started:.0f} s"
                      + (f"; climb: {left}" if left else ""), highlight=False, markup=False)
    return advance
