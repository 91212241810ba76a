"""What every `rung` command shares: the consoles, the one place a failure becomes a message
and an exit code, the task's store, the progress display, and the check of an option's value
against the values it allows."""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ContextManager, Iterator, Optional

import typer
from rich.console import Console

from rung.errors import explain

if TYPE_CHECKING:
    from rung.progress import SilentProgress, StageProgress
    from rung.store import Store

out = Console()
err = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Every failure ends in a message and exit 2, no traceback: a RungError (the user's to
    fix), what the machine refused (errors.explain: no room, no permission, a damaged store,
    no memory), or a bug in rung (said so; RUNG_DEBUG=1 shows where)."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:  # Ctrl-C: say what became of the work, exit as shells expect
        err.print("interrupted: what was stored stays (the run is marked interrupted); run "
                  "the same command again to go on: cached answers and finished tunes are "
                  "reused", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except Exception as e:  # noqa: BLE001 - the one place every failure becomes a message
        fail(e)


def fail(e: BaseException) -> None:
    """Say what went wrong on stderr and exit 2: explained where errors.explain knows the
    failure, called a bug in rung where it does not (RUNG_DEBUG=1 re-raises it instead)."""
    if isinstance(e, MemoryError):  # let go of what filled memory before saying so
        e.__traceback__ = None
        gc.collect()
    explained = explain(e)
    if explained is None and os.environ.get("RUNG_DEBUG"):
        raise e
    if explained is None:
        text = (f"internal error in rung ({type(e).__name__}: {e}); this is a bug, not your "
                "input\n  fix: rerun with RUNG_DEBUG=1 to see where, and report it")
    else:
        text = str(explained)
    if isinstance(e, MemoryError):  # rich imports as it renders: plain text needs no memory
        sys.stderr.write(f"error: {text}\n")
    else:
        err.print("error:", style="bold red", end=" ")
        err.print(text, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


@contextmanager
def task_store(path: Path) -> Iterator["Store"]:
    """The store of the task at `path`, closed afterwards."""
    from rung.store import Store
    from rung.task import load_task

    store = Store(load_task(path).store_dir)
    try:
        yield store
    finally:
        store.close()


def progress(enabled: bool) -> ContextManager["StageProgress | SilentProgress"]:
    """Progress on stderr (rung.progress), where --json keeps stdout for the JSON."""
    from rung.progress import stage_progress

    return stage_progress(err, enabled)


def check_choice(option: str, value: Optional[str], allowed: tuple[str, ...]) -> None:
    """An option that takes one of a few values is refused in the same words by every
    command, with the closest allowed value as the fix."""
    from rung.errors import ConfigError

    if value is not None and value not in allowed:
        from difflib import get_close_matches

        near = get_close_matches(value, allowed, n=1)
        raise ConfigError(f"{option} {value!r} is not one of: {', '.join(allowed)}",
                          fix=f"use {option} {near[0]}" if near else
                              f"use {option} with one of those")


def store_dir(path: Path) -> Path:
    """The task's store folder, for a server that opens the store itself (serve's request
    log, review's votes) rather than holding one open."""
    from rung.task import load_task

    return load_task(path).store_dir
