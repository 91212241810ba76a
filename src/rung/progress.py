"""How a long command shows it is moving, on stderr: a bar per stage, and for a climb, once it
has its plan (rung.plan), one bar for the whole climb with its time left. Where stderr is not a
terminal (a log, a pipe) a line per stage and per quarter of it instead. Only rung.cli calls
this; the library reports stages through the callback it is handed and never prints."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, \
    TimeElapsedColumn

from rung.plan import Eta
from rung.terminal import plan_table


class StageProgress:
    """The StageReporter a command hands the library (called with a stage and its steps,
    returning the function that advances it), plus `planned`, which a climb calls with its
    plan (rung.plan) once the checks and the audit are done and before any model call: the
    plan is printed then, and from then on one bar follows the whole climb."""

    def __init__(self, err: Console, bar: Progress | None) -> None:
        self.err, self.bar = err, bar  # no bar: a log or a pipe, a line per stage instead
        self.eta: Eta | None = None
        self.overall: TaskID | None = None

    def planned(self, plan: dict) -> None:
        if not plan["rungs"]:
            return
        self.err.print(plan_table(plan))
        self.eta = Eta.for_plan(plan)
        if self.bar is not None:
            self.overall = self.bar.add_task("climb (all rungs, by tokens)",
                                             total=self.eta.total, left=_Left(self.eta))

    def __call__(self, stage: str, total: int) -> Callable[[int], None]:
        eta, bar, overall = self.eta, self.bar, self.overall
        if eta is not None:
            eta.begin(stage, total)
        if bar is None:
            return _stage_lines(self.err, stage, total, eta)
        task_id = bar.add_task(stage, total=total, left="")

        def advance(n: int) -> None:
            bar.advance(task_id, n)
            if eta is not None:
                eta.step(stage, n)
                if overall is not None:
                    bar.update(overall, completed=eta.done)
        return advance

    def finish(self) -> None:
        if self.bar is not None and self.overall is not None and self.eta is not None:
            self.bar.update(self.overall, completed=self.eta.total, left="")


class SilentProgress:
    """Progress where none is wanted (--json on a command that prints nothing else)."""

    def planned(self, plan: dict) -> None:
        pass

    def __call__(self, stage: str, total: int) -> Callable[[int], None]:
        return lambda n: None


@contextmanager
def stage_progress(err: Console, enabled: bool) -> Iterator[StageProgress | SilentProgress]:
    """Stage bars on stderr (lines where it is not a terminal); with a plan, also the whole
    climb's, whose time left comes from the work done per second so far (rung.plan.Eta)."""
    if not enabled:
        yield SilentProgress()
        return
    if not err.is_terminal:
        yield StageProgress(err, None)
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[left]}"), console=err,
                   transient=False)
    with bar:
        progress = StageProgress(err, bar)
        yield progress
        progress.finish()


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
    err.print(f"{stage} ({total} step{'' if total == 1 else 's'})", highlight=False,
              markup=False)

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
