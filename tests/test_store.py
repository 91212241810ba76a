import multiprocessing
import multiprocessing.synchronize
import sqlite3
from pathlib import Path

import pytest

from rung.migrations import MIGRATIONS, _statements
from rung.store import Store


def test_migrations_run_once_and_reopen_cleanly(tmp_path):
    store = Store(tmp_path / ".rung")
    assert store.schema_version == len(MIGRATIONS)
    run = store.start_run(task="t", task_path="p", kind="classification", metric="accuracy",
                          target=0.9, seed=1, config_hash="c", data_hash="d", split_hash="s")
    store.close()
    again = Store(tmp_path / ".rung")  # opening an up-to-date store changes nothing
    assert again.schema_version == len(MIGRATIONS)
    assert [r.id for r in again.runs()] == [run]
    assert again.runs()[0].status == "running" and again.runs()[0].best is None


def test_a_rung_is_stored_whole_or_not_at_all(tmp_path):
    store = Store(tmp_path / ".rung")
    run = store.start_run(task="t", task_path="p", kind="classification", metric="accuracy",
                          target=0.9, seed=1, config_hash="c", data_hash="d", split_hash="s")
    summary = {"rung": "prompt", "metric": "accuracy", "score": 0.5, "ci": [0.4, 0.6], "n": 2,
               "latency_ms": {"p50": 1.0, "p95": 2.0}, "tokens_per_request": 10.0, "model": "m"}
    good = {"example_id": "a", "line": 1, "input": "x", "expected": "A", "output": "A",
            "correct": True, "tokens_in": 5, "tokens_out": 1}
    broken = {**good, "input": None}  # violates NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        store.add_rung(run, 0, summary, model_hash="h", pipeline={}, pipeline_hash="p",
                       predictions=[good, broken])
    assert store.rung_rows(run) == [] and list(store.predictions(run, "prompt")) == []
    store.add_rung(run, 0, summary, model_hash="h", pipeline={}, pipeline_hash="p", predictions=[good])
    assert [r["score"] for r in store.rung_rows(run)] == [0.5]
    assert [dict(p)["output"] for p in store.predictions(run, "prompt")] == ["A"]


def _open_store(root: str, start: "multiprocessing.synchronize.Barrier") -> int:
    start.wait()  # every process reaches the empty folder at the same moment
    return Store(Path(root)).schema_version


def test_processes_opening_a_new_store_at_once_all_migrate_it(tmp_path):
    """`accelerate launch` starts one rung per process and each opens the store: the first
    migrates it, the others wait for its lock and find it done (CI caught "table runs already
    exists" from the second rank)."""
    n = 6
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            versions = pool.starmap(_open_store, [(str(tmp_path / ".rung"), start)] * n)
    assert versions == [len(MIGRATIONS)] * n
    tables = Store(tmp_path / ".rung").conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    assert tables == 1


def test_a_migration_splits_where_sqlite_ends_a_statement():
    script = "CREATE TABLE t (x TEXT DEFAULT ';');\n INSERT INTO t VALUES ('a;b');\n"
    assert [s.strip() for s in _statements(script)] == [
        "CREATE TABLE t (x TEXT DEFAULT ';');", "INSERT INTO t VALUES ('a;b');"]
    with pytest.raises(ValueError, match="unfinished"):
        list(_statements("INSERT INTO t VALUES ('a"))  # the string never closes
