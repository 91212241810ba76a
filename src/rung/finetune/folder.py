"""Where a tune lives on disk, so that a rerun finds it instead of training it again.

Apart from the run because a tune outlives the call that started it: its folder is named by
everything that shapes the weights (a changed config, split, prompt or base model starts
afresh), held by a lock while one process trains it (a second climb of the task waits and
picks the result up), and holds the checkpoints an interrupted run resumes from. The
record a finished tune leaves in it is record.py's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.data.example import Example
from rung.finetune.methods import METHODS
from rung.pipeline import Pipeline
from rung.task import TaskSpec


NOT_IN_THE_WEIGHTS = {"memory_check", "keep_checkpoints", "regression_threshold"}


def tune_key(task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
             val: Sequence[Example], base_fingerprint: str, *,
             leaving_out: set[str] | None = None) -> str:
    """Names a tune by everything that shapes it, so a rerun finds (or resumes) its folder
    and a changed config, split, prompt or base model starts afresh. `leaving_out` is for
    the key as an earlier rung wrote it (see tune_folder)."""
    dpo = METHODS[task.finetune.method].objective == "dpo"
    shaping: dict[str, Any] = {
        # settings that do not change the weights: whether to start (memory_check), how many
        # checkpoints to keep on disk, the threshold the regression check reads afterwards
        "finetune": task.finetune.model_dump(
            exclude=NOT_IN_THE_WEIGHTS if leaving_out is None else leaving_out),
        "seed": task.task.seed,
        "max_seq_length": task.audit.max_seq_length, "pipeline": pipeline.hash(),
        "base": base_fingerprint, "train": [ex.id for ex in train], "val": [ex.id for ex in val],
    }
    if dpo and leaving_out is None:  # an example's id is its messages: the rejected answers
        # it is trained against are in the key on their own
        shaping["rejected"] = [ex.extra.get("rejected") for ex in (*train, *val)]
    payload = json.dumps(shaping, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def tune_folder(tunes: Path, task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
                val: Sequence[Example], base_fingerprint: str) -> Path:
    """The tune's folder. One an earlier rung named (its key left out memory_check only) is
    the same tune when its settings match today's, and is used where it is: a finished tune
    is picked up and an interrupted one resumes instead of training again, and runs that
    point at it keep finding it. Not for DPO, whose earlier key did not hold the rejected
    answers it was trained against."""
    folder = tunes / tune_key(task, pipeline, train, val, base_fingerprint)
    if folder.exists() or METHODS[task.finetune.method].objective == "dpo":
        return folder
    earlier = tunes / tune_key(task, pipeline, train, val, base_fingerprint,
                               leaving_out={"memory_check"})
    return earlier if earlier.exists() else folder


@contextlib.contextmanager
def tune_lock(out: Path) -> Any:
    """Hold the tune's lock file while training it: a second process asking for the same tune
    (two climbs of one task at once) waits, then picks the finished tune up. The lock is the
    operating system's (flock), so a killed process releases it. Processes of one
    `accelerate launch` train one tune together and do not lock against each other."""
    import os

    try:
        import fcntl
    except ImportError:  # Windows: no flock; concurrent climbs there may train twice
        yield
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing. It writes trainer_state.json last,
    so a folder without one was cut off mid-save (a kill, a full disk): it is removed, and
    the one before it resumes the run instead of a crash on half a checkpoint."""
    if not folder.is_dir():
        return None
    steps = sorted((int(p.name.rsplit("-", 1)[1]), p) for p in folder.glob("checkpoint-*")
                   if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit())
    for _, path in reversed(steps):
        if (path / "trainer_state.json").is_file():
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def step_of(checkpoint: str | None) -> int | None:
    """The step a checkpoint folder (checkpoint-N) was saved at."""
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
