"""Writing files without ever destroying one.

Every write goes to a temporary file (or folder) beside its target and is renamed into place:
a rename on one filesystem is atomic, so an interrupted write leaves the old file or the new
one, never half of either, and a crash leaves at most a hidden temporary behind. A command
never writes over its own input, and never over a file it did not create unless told to
(`--force`): `claim` checks every target before anything is written, and names them all.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rung.errors import ConfigError


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, synced, renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        if isinstance(data, str):
            with open(tmp, "x", encoding="utf-8", newline="") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a failed write() names no file: say which one it was
        tmp.unlink(missing_ok=True)
        if error.filename is None:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """A temporary folder beside `target` to fill; renamed to `target` when the block ends
    without error, removed when it fails. `target` must not hold anything yet."""
    target = Path(target)
    if target.is_file() or (target.exists() and any(target.iterdir())):
        what = "is a file, not a folder" if target.is_file() else "exists and is not empty"
        raise ConfigError(f"{target} {what}", fix="name a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    tmp.mkdir()
    try:
        yield tmp
        if target.exists():
            target.rmdir()  # the empty folder a user may have made for it
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def copy_tree(source: str | Path, target: str | Path) -> None:
    """Copy a folder's files; the first failure is raised as it is, naming the file it was
    writing (shutil.copytree gathers them into one list that names none usefully)."""
    source, target = Path(source), Path(target)
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, dest)
        except OSError as error:
            if error.filename is None:
                raise OSError(error.errno, error.strerror, str(dest)) from error
            raise


def _unwritable(path: Path) -> str | None:
    """Why a file could not be made at `path`, found before the work that would fill it: the
    nearest folder that exists on its way must be a folder this user may write into."""
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def _same(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


SQLITE_MAGIC = b"SQLite format 3\x00"


def _rungs_own(path: Path) -> str | None:
    """What a file no command may replace, --force or not, is: a task's rung.toml, or a SQLite
    database (a run store, an index); a report, a summary or a data copy is never one."""
    if path.name == "rung.toml" and path.is_file():
        return "a task's rung.toml"
    try:
        with open(path, "rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                return "a SQLite database (a run store or an index)"
    except OSError:
        pass
    return None


def claim(targets: Sequence[str | Path], *, inputs: Sequence[str | Path] = (),
          force: bool = False, ours: Callable[[Path], bool] | None = None,
          option: str = "--force") -> list[Path]:
    """The files a command is about to write, checked before anything is: none may be one of
    its `inputs` or rung's own files (a rung.toml, a store), not even with force, and none may
    exist already unless `force`, or unless `ours` recognises it as a file rung wrote. Every
    refused target is named at once."""
    paths = [Path(t) for t in targets]
    problems = []
    for path in paths:
        source = next((Path(i) for i in inputs if _same(path, Path(i))), None)
        own = _rungs_own(path)
        if source is not None:
            problems.append(f"{path} is the input {source}: rung never writes over its input")
        elif own:
            problems.append(f"{path} is {own}: rung never writes over it")
        elif path.is_dir():
            problems.append(f"{path} is a folder")
        elif path.exists() and not force and not (ours is not None and ours(path)):
            # only `ours` can tell a file rung wrote; without it, where the file came from is
            # unknown (a convert run twice meets its own output)
            problems.append(f"{path} exists and rung did not write it" if ours is not None
                            else f"{path} exists")
        elif (blocked := _unwritable(path)) is not None:
            problems.append(f"{path} cannot be written: {blocked}")
    if problems:
        if all("cannot be written" in p for p in problems):
            fix = "write to a path under a folder you may write to"
        elif any("input" in p or "folder" in p or "never" in p for p in problems):
            fix = "write to a new path"
        else:
            fix = f"write to a new path, or pass {option} to replace it"
        raise ConfigError("; ".join(problems), fix=fix)
    return paths
