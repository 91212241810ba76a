"""The run log: SQLite beside the task (.rung/runs.db) plus an artifacts folder per run.

One row per run, per rung and per test example, so any number in a report can be traced to
the outputs behind it. The schema grows by appending numbered migrations (rung.migrations); a
database is brought up to date when opened, never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from rung import __version__
from rung.errors import ConfigError
from rung.migrations import migrate

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache

def file_hash(path: Path) -> str:
    """Content hash of a data file: runs and audits of the same bytes share it."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class RunRow:
    id: str
    created: str
    task: str
    status: str  # running, done, failed, interrupted
    metric: str
    target: float
    recommendation: str | None
    best: float | None
    finished: str | None = None
    error: str | None = None  # why a failed or interrupted run ended
    pinned: bool = False  # the baseline rung gate compares with


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = root / "runs.db"
        # Ranks of one launch write to the same file; a long rung insert must not fail the other.
        self.conn = sqlite3.connect(self.db_path, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        # Two climbs of one task may run at once: in WAL mode readers never wait for a writer
        # and a writer waits (busy timeout) instead of failing with "database is locked".
        # The mode is stored in the file, so setting it once is enough; a filesystem without
        # shared memory (some network mounts) keeps the rollback journal and stays correct.
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self._use_wal()
        migrate(self.conn)

    def _use_wal(self) -> None:
        """Switch to WAL once. Changing the journal mode needs the file to itself, and SQLite
        answers "locked" at once (no busy wait) while another process has it open in the old
        mode, as when the ranks of one launch open a new store together: wait and retry."""
        deadline = time.monotonic() + 30
        while self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
                return  # set, or refused for good (no shared memory there): stay as it is
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def artifacts(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", "..") \
                or self.run(run_id) is None:  # a folder only for a run there is
            raise ConfigError(f"no run '{run_id}' in {self.db_path}",
                              fix="name one that `rung runs` lists")
        path = self.root / "artifacts" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def new_id() -> str:
        """Sortable by time, unique enough for one team's runs."""
        return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)

    def start_run(self, *, task: str, task_path: str, kind: str, metric: str, target: float,
                  seed: int, config_hash: str, data_hash: str, split_hash: str,
                  settings: dict[str, Any] | None = None) -> str:
        run_id = self.new_id()
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (id, created, task, task_path, kind, metric, target, seed,"
                " config_hash, data_hash, split_hash, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, _now(), task, task_path, kind, metric, target, seed, config_hash,
                 data_hash, split_hash, "running"),
            )
            self.conn.execute(
                "UPDATE runs SET pid = ?, host = ?, settings_json = ?, rung_version = ?"
                " WHERE id = ?", (os.getpid(), socket.gethostname(),
                                  None if settings is None else json.dumps(settings),
                                  __version__, run_id))
        return run_id

    def fail_run(self, run_id: str, error: BaseException) -> None:
        """Record how a run ended early: "interrupted" (Ctrl-C, a signal) or "failed", the
        error's message and when. What it stored before (rungs, predictions) stays."""
        status = "interrupted" if isinstance(error, (KeyboardInterrupt, SystemExit)) \
            else "failed"
        message = str(error) or ("stopped by Ctrl-C" if isinstance(error, KeyboardInterrupt)
                                 else "stopped by a signal" if isinstance(error, SystemExit)
                                 else type(error).__name__)
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished = ? WHERE id = ?",
                (status, f"{type(error).__name__}: {message}"[:2000], _now(), run_id))

    def add_rung(self, run_id: str, position: int, summary: dict[str, Any], *,
                 model_hash: str, pipeline: dict[str, Any], pipeline_hash: str,
                 predictions: list[dict[str, Any]]) -> None:
        """One transaction: a rung is in the store whole or not at all."""
        latency = summary.get("latency_ms", {})
        with self.conn:
            self.conn.execute(
                "INSERT INTO rung_results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, summary["rung"], position, summary["metric"], summary["score"],
                 summary["ci"][0], summary["ci"][1], summary["n"], latency.get("p50"),
                 latency.get("p95"), latency.get("p99"), summary["tokens_per_request"],
                 summary["model"], model_hash, pipeline_hash, json.dumps(pipeline),
                 json.dumps(summary)),
            )
            self.conn.executemany(
                "INSERT INTO predictions (run_id, rung, example_id, line, input, expected,"
                " output, correct, tokens_in, tokens_out, loss, sources, grounded)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, summary["rung"], p["example_id"], p["line"], p["input"],
                  p["expected"], p["output"], int(p["correct"]), p["tokens_in"],
                  p["tokens_out"], p.get("loss"),
                  json.dumps(list(p["sources"])) if p.get("sources") else None,
                  None if p.get("grounded") is None else int(p["grounded"]))
                 for p in predictions],
            )

    def add_curves(self, run_id: str, rung: str, curves: list[dict[str, Any]]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT INTO training_curves (run_id, rung, step, epoch, loss, eval_loss, "
                "learning_rate, grad_norm, token_accuracy, eval_token_accuracy) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(run_id, rung, c["step"], c["epoch"], c.get("loss"), c.get("eval_loss"),
                  c.get("learning_rate"), c.get("grad_norm"), c.get("mean_token_accuracy"),
                  c.get("eval_mean_token_accuracy"))
                 for c in curves])

    def curves(self, run_id: str, rung: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM training_curves WHERE run_id = ? AND rung = ? ORDER BY rowid",
            (run_id, rung)).fetchall()

    def finish_run(self, run_id: str, summary: dict[str, Any], status: str = "done") -> None:
        rec = summary.get("recommendation", {}).get("rung")
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = ?, recommendation = ?, summary_json = ?, finished = ?"
                " WHERE id = ?", (status, rec, json.dumps(summary), _now(), run_id),
            )

    def settle_abandoned(self) -> int:
        """Runs still "running" whose process on this machine is gone (killed with -9, out of
        memory, a power cut) become "interrupted"; returns how many."""
        host = socket.gethostname()
        gone = [r["id"] for r in self.conn.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL",
            (host,)) if not _alive(r["pid"])]
        if gone:
            with self.conn:
                self.conn.executemany(
                    "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ?",
                    [("its process ended without finishing (killed or crashed); run the same "
                      "command again: cached answers and finished tunes are reused", run_id)
                     for run_id in gone])
        return len(gone)

    def runs(self, limit: int = 20) -> list[RunRow]:
        self.settle_abandoned()
        rows = self.conn.execute(
            "SELECT r.*, (SELECT MAX(score) FROM rung_results WHERE run_id = r.id) AS best"
            " FROM runs r ORDER BY created DESC, id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [RunRow(r["id"], r["created"], r["task"], r["status"], r["metric"], r["target"],
                       r["recommendation"], r["best"], r["finished"], r["error"],
                       bool(r["pinned"])) for r in rows]

    def run(self, run_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()

    def rung_rows(self, run_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM rung_results WHERE run_id = ? ORDER BY position", (run_id,)
        ).fetchall()

    def measured(self, run_id: str, rung: str, what: str) -> tuple[sqlite3.Row, sqlite3.Row]:
        """The run and its row for `rung`, or the error that says which run to name instead
        (`what` is how the rung is called in that message: "fine-tune")."""
        from rung.errors import ConfigError

        run = self.run(run_id)
        if run is None:
            raise ConfigError(f"no run '{run_id}' in {self.root}",
                              fix="list the runs with: rung runs PATH")
        row = next((r for r in self.rung_rows(run_id) if r["rung"] == rung), None)
        if row is None:
            raise ConfigError(f"run {run_id} has no {what}",
                              fix=f"pick a run whose rungs include {rung} (rung runs PATH)")
        return run, row

    def latest_pipeline(self, rung: str) -> sqlite3.Row | None:
        """The newest stored pipeline of a rung (run ids sort by time)."""
        return self.conn.execute(
            "SELECT run_id, pipeline_json FROM rung_results WHERE rung = ?"
            " ORDER BY run_id DESC LIMIT 1", (rung,)).fetchone()

    def pin(self, run_id: str) -> None:
        """Make `run_id` the baseline (`rung gate` without --baseline); one at a time."""
        run = self.run(run_id)
        if run is None:
            raise ConfigError(f"no run '{run_id}' in {self.root}", fix="rung runs lists them")
        if run["status"] != "done":  # a baseline the gate can compare against has test scores
            raise ConfigError(f"run {run_id} did not finish (status {run['status']}): it cannot "
                              "be a baseline", fix="pin a finished run (rung runs lists them)")
        with self.conn:
            self.conn.execute("UPDATE runs SET pinned = 0 WHERE pinned = 1")
            self.conn.execute("UPDATE runs SET pinned = 1 WHERE id = ?", (run_id,))

    def pinned(self) -> str | None:
        row = self.conn.execute("SELECT id FROM runs WHERE pinned = 1").fetchone()
        return row["id"] if row else None

    def add_vote(self, run_id: str, rung_a: str, rung_b: str, example_id: str, reviewer: str,
                 left: str, choice: str, winner: str) -> None:
        """`left` is "a" or "b" (which rung the reviewer saw on the left); `winner` is a, b,
        tie or skip. Votes are only ever added: a changed mind is a later vote."""
        with self.conn:
            self.conn.execute("INSERT INTO votes VALUES (?,?,?,?,?,?,?,?,?)",
                              (_now(), run_id, rung_a, rung_b, example_id, reviewer,
                               rung_a if left == "a" else rung_b, choice, winner))

    def votes(self, run_id: str, rung_a: str, rung_b: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM votes WHERE run_id = ? AND rung_a = ? AND rung_b = ? ORDER BY rowid",
            (run_id, rung_a, rung_b)).fetchall()

    def log_served(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        """(run_id, rung, redacted input, output, latency_ms) of answered requests."""
        with self.conn:
            self.conn.executemany("INSERT INTO served VALUES (?,?,?,?,?,?)",
                                  [(_now(), *row) for row in rows])

    def predictions(self, run_id: str, rung: str) -> Iterator[sqlite3.Row]:
        yield from self.conn.execute(
            "SELECT * FROM predictions WHERE run_id = ? AND rung = ? ORDER BY rowid", (run_id, rung)
        )

    def add_audit(self, audit: dict[str, Any], *, data_hash: str) -> None:
        """One transaction: an audit is in the store with all of its checks or not at all."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO audits VALUES (?,?,?,?,?,?,?,?,?)",
                (audit["audit_id"], audit["created"], audit["data"], data_hash, audit["task"],
                 audit["format"], audit["examples"], audit["verdict"], json.dumps(audit)),
            )
            self.conn.executemany(
                "INSERT INTO audit_checks VALUES (?,?,?,?,?,?,?,?)",
                [(audit["audit_id"], i, c["check"], c["status"], c["finding"], c["fix"],
                  json.dumps(c["rows"]), json.dumps(c["details"]))
                 for i, c in enumerate(audit["checks"])],
            )

    def latest_audit(self, data_hash: str, until: str | None = None) -> sqlite3.Row | None:
        """The newest audit of exactly this data (by content hash), if any; of two made in
        the same second, the one stored last. `until` (a run's creation time): the newest
        made no later, so a run is never shown an audit made after it."""
        return self.conn.execute(
            "SELECT * FROM audits WHERE data_hash = ? AND (? IS NULL OR created <= ?)"
            " ORDER BY created DESC, rowid DESC LIMIT 1",
            (data_hash, until, until),
        ).fetchone()

    def audit(self, audit_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM audits WHERE id = ?", (audit_id,)).fetchone()

    def audit_ids(self, data_hash: str) -> list[str]:
        """Every audit of exactly this data, the newest first."""
        return [row["id"] for row in self.conn.execute(
            "SELECT id FROM audits WHERE data_hash = ? ORDER BY created DESC, rowid DESC",
            (data_hash,))]

    def audit_checks(self, audit_id: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM audit_checks WHERE audit_id = ? ORDER BY position", (audit_id,)
        ).fetchall()

    def response_cache(self) -> "ResponseCache":
        from rung.models.cache import ResponseCache

        return ResponseCache(self.conn)

    def close(self) -> None:
        self.conn.close()
