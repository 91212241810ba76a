"""Errors a user can cause and fix.

Every message names where the problem is (file, line, key) and what to do about it, because
the CLI prints only the message: no traceback, exit code 2.
"""

from __future__ import annotations

import errno
import sqlite3  # imported here, not when a failure is explained: memory may be gone by then
from pathlib import Path
from typing import Any


class RungError(Exception):
    """A problem in the user's input: bad file, bad config, missing model."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        text = f"{where}{self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ConfigError(RungError):
    """rung.toml is missing, unparsable or inconsistent."""


class DataError(RungError):
    """A data file cannot be read as examples."""


class ModelError(RungError):
    """A model reference cannot be resolved or loaded, or a model stopped answering.

    A remote model that stops partway through a batch (a budget reached, too many failed
    requests) puts the answers it was paid for in `answered` (position in the batch -> answer),
    so the response cache keeps them and running again does not pay for them twice."""

    def __init__(self, message: str, *, answered: dict[int, Any] | None = None,
                 **where: Any) -> None:
        super().__init__(message, **where)
        self.answered: dict[int, Any] = answered or {}


class ProblemList(RungError):
    """Several problems found at once, so the user fixes them all in one go."""

    def __init__(self, problems: list[RungError], *, file: str | Path | None = None,
                 shown: int | None = None) -> None:
        """`shown`: list only the first so many (a file with 900 bad lines), but count all."""
        self.problems = problems
        listed = problems[:shown] if shown is not None else problems
        body = "\n".join(f"- {p}" for p in listed)
        more = f"\n- ... and {len(problems) - len(listed)} more" if len(listed) < len(problems) \
            else ""
        super().__init__(f"{len(problems)} problem(s):\n{body}{more}", file=file)


def explain(error: BaseException) -> RungError | None:
    """What the machine refused (no room, no permission, a damaged store, no memory) as a
    RungError with its fix, so a command ends with a message instead of a traceback. None for
    anything else: that is a bug in rung, not the user's to fix."""
    if isinstance(error, RungError):
        return error
    if isinstance(error, MemoryError):
        return RungError("out of memory", fix="use a smaller model, batch or [eval] val_limit, "
                         "or a machine with more memory")
    if isinstance(error, sqlite3.DatabaseError) and any(
            words in str(error) for words in ("disk I/O error", "disk is full")):
        # SQLite names no errno: a full disk, a file size limit or a folder it may not write
        # (WAL mode writes runs.db-wal and runs.db-shm beside the store) all read like this
        return RungError(f"the run store (.rung/runs.db) could not be written: {error}",
                         fix="free disk space, or check that the .rung folder and its files "
                             "are writable; then run the same command again")
    if isinstance(error, sqlite3.DatabaseError):
        return RungError(f"the run store (.rung/runs.db) could not be used: {error}",
                         fix="if another rung command is writing it, wait and retry; if it is "
                             "damaged, move .rung/runs.db aside (with runs.db-wal and runs.db-shm "
                             "beside it) and rung starts a new one")
    if isinstance(error, OSError):
        name = error.filename or ""
        reason = error.strerror or str(error)
        fixes = {
            (errno.ENOSPC, errno.EFBIG, errno.EDQUOT): "free disk space, or write to another disk",
            (errno.EACCES, errno.EPERM, errno.EROFS): "check its permissions, or use a folder "
                                                      "you can write to",
            (errno.ENOENT,): "check the path",
            (errno.ENOTDIR, errno.EEXIST, errno.EISDIR): "a file stands where a folder should "
                                                         "be, or the other way round: move it aside",
        }
        fix = next((f for codes, f in fixes.items() if error.errno in codes),
                   "check the file and the disk it is on")
        return RungError(f"{reason}", file=name or None, fix=fix)
    return None
