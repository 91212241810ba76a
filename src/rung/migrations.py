"""The run store's schema as numbered migrations, append-only: a store is brought up to date
when opened (rung.store), one transaction per migration, and never rewritten. To change the
schema, append a migration; never edit one that has shipped."""

from __future__ import annotations

import sqlite3
from typing import Iterator

MIGRATIONS: list[str] = [
    # 1: runs, rung results, per-example predictions
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        task TEXT NOT NULL,
        task_path TEXT NOT NULL,
        kind TEXT NOT NULL,
        metric TEXT NOT NULL,
        target REAL NOT NULL,
        seed INTEGER NOT NULL,
        config_hash TEXT NOT NULL,
        data_hash TEXT NOT NULL,
        split_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        recommendation TEXT,
        summary_json TEXT
    );
    CREATE TABLE rung_results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        rung TEXT NOT NULL,
        position INTEGER NOT NULL,
        metric TEXT NOT NULL,
        score REAL NOT NULL,
        ci_low REAL NOT NULL,
        ci_high REAL NOT NULL,
        n INTEGER NOT NULL,
        latency_p50 REAL,
        latency_p95 REAL,
        latency_p99 REAL,
        tokens_per_request REAL,
        model TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        pipeline_hash TEXT NOT NULL,
        pipeline_json TEXT NOT NULL,
        summary_json TEXT NOT NULL,
        PRIMARY KEY (run_id, rung)
    );
    CREATE TABLE predictions (
        run_id TEXT NOT NULL,
        rung TEXT NOT NULL,
        example_id TEXT NOT NULL,
        line INTEGER NOT NULL,
        input TEXT NOT NULL,
        expected TEXT NOT NULL,
        output TEXT NOT NULL,
        correct INTEGER NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        FOREIGN KEY (run_id, rung) REFERENCES rung_results(run_id, rung)
    );
    CREATE INDEX predictions_by_rung ON predictions(run_id, rung);
    """,
    # 2: model responses (and measured latencies) keyed by fingerprint + prompt + parameters
    """
    CREATE TABLE responses (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        operation TEXT NOT NULL,
        value TEXT NOT NULL,
        created TEXT NOT NULL DEFAULT (datetime('now'))
    );
    """,
    # 3: per-example loss (NLL per token of the expected answer) where it is scored
    """
    ALTER TABLE predictions ADD COLUMN loss REAL;
    """,
    # 4: data audits, one row per check, so a fine-tune can ask whether its data passed
    """
    CREATE TABLE audits (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        data_path TEXT NOT NULL,
        data_hash TEXT NOT NULL,
        task_path TEXT,
        format TEXT NOT NULL,
        examples INTEGER NOT NULL,
        verdict TEXT NOT NULL,
        summary_json TEXT NOT NULL
    );
    CREATE TABLE audit_checks (
        audit_id TEXT NOT NULL REFERENCES audits(id),
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        finding TEXT NOT NULL,
        fix TEXT NOT NULL,
        rows_json TEXT NOT NULL,
        details_json TEXT NOT NULL,
        PRIMARY KEY (audit_id, name)
    );
    CREATE INDEX audits_by_data ON audits(data_hash, created);
    """,
    # 5: retrieval: the chunks each prediction's prompt carried, and whether it was grounded
    """
    ALTER TABLE predictions ADD COLUMN sources TEXT;
    ALTER TABLE predictions ADD COLUMN grounded INTEGER;
    """,
    # 6: fine-tune curves, one row per logged training or evaluation point
    """
    CREATE TABLE training_curves (
        run_id TEXT NOT NULL,
        rung TEXT NOT NULL,
        step INTEGER NOT NULL,
        epoch REAL NOT NULL,
        loss REAL,
        eval_loss REAL,
        learning_rate REAL,
        grad_norm REAL,
        token_accuracy REAL
    );
    CREATE INDEX training_curves_by_rung ON training_curves(run_id, rung);
    """,
    # 7: how a run ended: failed or interrupted runs say why and when; the process that ran
    # it, so a run whose process is gone (killed, crashed) is not "running" for ever
    """
    ALTER TABLE runs ADD COLUMN finished TEXT;
    ALTER TABLE runs ADD COLUMN error TEXT;
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE runs ADD COLUMN host TEXT;
    """,
    # 8: requests `rung serve --log` answered, inputs redacted: production inputs to audit
    # and check later
    """
    CREATE TABLE served (
        at TEXT NOT NULL,
        run_id TEXT NOT NULL,
        rung TEXT NOT NULL,
        input TEXT NOT NULL,
        output TEXT NOT NULL,
        latency_ms REAL NOT NULL
    );
    CREATE INDEX served_by_run ON served(run_id, at);
    """,
    # 9: the run `rung gate` compares candidates with unless told otherwise
    """
    ALTER TABLE runs ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
    """,
    # 10: blind side-by-side votes (rung review), append-only: who, when, which rung was left
    """
    CREATE TABLE votes (
        at TEXT NOT NULL,
        run_id TEXT NOT NULL,
        rung_a TEXT NOT NULL,
        rung_b TEXT NOT NULL,
        example_id TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        left_rung TEXT NOT NULL,
        choice TEXT NOT NULL,
        winner TEXT NOT NULL
    );
    CREATE INDEX votes_by_pair ON votes(run_id, rung_a, rung_b);
    """,
    # 11: the settings a run climbed with and the rung that climbed it, so `rung compare` and
    # `rung gate` can say which keys changed between two runs, not only that a hash differs
    """
    ALTER TABLE runs ADD COLUMN settings_json TEXT;
    ALTER TABLE runs ADD COLUMN rung_version TEXT;
    """,
    # 12: the answer-token accuracy on val at each evaluation, the seeds' "task metric over
    # time" beside the val loss (token_accuracy is train's)
    """
    ALTER TABLE training_curves ADD COLUMN eval_token_accuracy REAL;
    """,
]


def migrate(conn: sqlite3.Connection) -> None:
    """One transaction per migration, so a crash leaves the previous version intact.

    The version is read after taking the write lock (BEGIN IMMEDIATE): processes started
    together (`accelerate launch`) would otherwise all read 0 and all run migration 1.
    executescript commits any open transaction first, so the statements go one by one.
    """
    if conn.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
        return  # versions only grow: an up-to-date store needs no lock
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= len(MIGRATIONS):
                conn.execute("COMMIT")
                return
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements where SQLite says one is complete (a ';' inside a
    string or a trigger body does not end one)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""
    if pending.strip(" \n\t;"):
        raise ValueError(f"unfinished SQL statement in a migration: {pending!r}")
