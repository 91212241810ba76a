"""Errors a user can cause and fix.

Every message names where the problem is (file, line, key) and what to do about it, because
the CLI prints only the message: no traceback, exit code 2.
"""

from __future__ import annotations

from pathlib import Path


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
    """A model reference cannot be resolved or loaded."""


class ProblemList(RungError):
    """Several problems found at once, so the user fixes them all in one go."""

    def __init__(self, problems: list[RungError], *, file: str | Path | None = None) -> None:
        self.problems = problems
        body = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s):\n{body}", file=file)
