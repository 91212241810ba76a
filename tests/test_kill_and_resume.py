"""Real processes, really killed: a climb killed with -9 while it measures a rung, and a tune
killed between checkpoints, finish when the same command runs again, keep what was stored and
pay for no finished work twice; two climbs of one task at once share the store whole
(issue 14, finding 7).

The children are real `rung` command lines (`rung.cli.main`) in fresh interpreters. The
climbs' model is the fake one from conftest, registered by the child before the command runs,
which logs every prompt it answers to a file, so the test counts what each process asked.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import finetune_table, write_task
from rung.store import Store

TESTS = Path(__file__).resolve().parent

CHILD = """
import json, os, signal, sqlite3, sys, time
sys.path.insert(0, {tests!r})
from conftest import LABELS, FakeModel
from rung.models.registry import register_model

log = open(os.environ["ASKED_LOG"], "a")
db = os.environ["STORE_DB"]
die_at = int(os.environ.get("DIE_AT_TEST_BATCH", "0"))  # 0: never
test_inputs = set(json.loads(os.environ.get("TEST_INPUTS", "[]")))
slow = float(os.environ.get("SLOW", "0"))
meet = os.environ.get("MEET")  # a folder: the first request waits there for the other climb
test_batches = 0


def wait_for_the_other():
    # two climbs at once must really overlap: one may spend longer on the classifier than the
    # other on every LLM request, and then find all its answers in the shared cache
    global meet
    if not meet:
        return
    os.makedirs(meet, exist_ok=True)
    open(os.path.join(meet, str(os.getpid())), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(meet)) < 2 and time.time() < deadline:
        time.sleep(0.01)
    meet = None


def rungs_stored():
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM rung_results").fetchone()[0]
    finally:
        conn.close()


def rule(prompt):
    # zero-shot it always says BILLING; shown examples, it reads the label off the ticket
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


class Logged(FakeModel):
    def _log(self, op, prompts):
        global test_batches
        wait_for_the_other()
        if die_at and any(p[-1].content in test_inputs for p in prompts) and rungs_stored():
            test_batches += 1  # a later rung is being measured on test
            if test_batches == die_at:
                os.kill(os.getpid(), signal.SIGKILL)
        start = time.time()
        time.sleep(slow)
        for p in prompts:
            log.write(json.dumps([op, [[m.role, m.content] for m in p], start]) + "\\n")
        log.flush()

    def score_choices(self, prompts, choices):
        self._log("score", prompts)
        return super().score_choices(prompts, choices)

    def generate(self, prompts, max_new_tokens=64):
        self._log("generate", prompts)
        return super().generate(prompts, max_new_tokens)


register_model("logged", Logged(name="logged", rule=rule))
from rung.cli import main
sys.argv = ["rung", *sys.argv[1:]]
main()
"""


def _child(tmp_path: Path) -> Path:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(tests=str(TESTS))))
    return script


def _rung(script: Path, args: list[str], *, log: Path, store: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "ASKED_LOG": str(log), "STORE_DB": str(store / "runs.db"), **env}
    return subprocess.Popen([sys.executable, str(script), *args], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out.decode(), err.decode()


def _asked(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    return [(op, json.dumps(messages)) for op, messages, _ in map(json.loads, log.open())]


def _test_inputs(toml: Path) -> list[str]:
    from rung.climb import load_examples, make_split
    from rung.task import load_task

    task = load_task(toml)
    return [ex.input for ex in make_split(task, load_examples(task)).test]


def _rung_scores(summary: dict) -> dict[str, tuple]:
    return {r["rung"]: (r["score"], tuple(r["ci"]), json.dumps(r["chosen"], sort_keys=True))
            for r in summary["rungs"]}


def test_a_climb_killed_while_measuring_a_rung_resumes_and_pays_for_nothing_twice(tmp_path):
    script = _child(tmp_path)
    toml = write_task(tmp_path / "task", model="logged")
    store = tmp_path / "task" / ".rung"
    killed_log, resumed_log = tmp_path / "killed.log", tmp_path / "resumed.log"

    code, _, err = _finish(_rung(script, ["climb", str(toml)], log=killed_log, store=store,
                                 DIE_AT_TEST_BATCH="1",  # as it scores the few-shot rung on test
                                 TEST_INPUTS=json.dumps(_test_inputs(toml))))
    assert code == -signal.SIGKILL, err[-2000:]
    code, out, err = _finish(_rung(script, ["climb", str(toml), "--json"], log=resumed_log,
                                   store=store))
    assert code == 0, err[-2000:]
    resumed = json.loads(out)

    # the same climb, never killed, in a folder of its own: what the whole climb asks
    clean_toml = write_task(tmp_path / "clean", model="logged")
    clean_log = tmp_path / "clean.log"
    code, out, err = _finish(_rung(script, ["climb", str(clean_toml), "--json"], log=clean_log,
                                   store=tmp_path / "clean" / ".rung"))
    assert code == 0, err[-2000:]
    clean = json.loads(out)

    killed, again = _asked(killed_log), _asked(resumed_log)
    assert len(killed) > 0 and len(again) > 0
    # nothing finished before the kill was asked again: together the two processes asked
    # exactly what one uninterrupted climb asks
    assert len(killed) + len(again) == len(_asked(clean_log))
    assert resumed["cache"]["hits"] >= len(killed)  # answered from the store instead
    assert resumed["cache"]["misses"] < clean["cache"]["misses"] / 5
    assert _rung_scores(resumed) == _rung_scores(clean)  # and the same results
    assert [r["rung"] for r in resumed["rungs"]] == ["prompt", "few-shot"]

    kept = Store(store)
    runs = {r.id: r for r in kept.runs()}
    first = next(r for r in runs.values() if r.id != resumed["run_id"])
    assert first.status == "interrupted" and runs[resumed["run_id"]].status == "done"
    assert [r["rung"] for r in kept.rung_rows(first.id)] == ["prompt"]  # not lost
    kept.close()


def test_two_climbs_of_one_task_at_once_share_the_store_whole(tmp_path):
    script = _child(tmp_path)
    toml = write_task(tmp_path / "task", model="logged", ladder={"all": True})
    store = tmp_path / "task" / ".rung"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    both = [_rung(script, ["climb", str(toml), "--json"], log=log, store=store, SLOW="0.02",
                  MEET=str(tmp_path / "meet")) for log in logs]
    finished = [_finish(p) for p in both]
    for code, _, err in finished:
        assert code == 0, err[-2000:]
    summaries = [json.loads(out) for _, out, _ in finished]

    # they really ran at once: each asked the model while the other was asking it
    spans = [[t for _, _, t in map(json.loads, log.open())] for log in logs]
    assert min(spans[0]) < max(spans[1]) and min(spans[1]) < max(spans[0])

    conn = sqlite3.connect(store / "runs.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT run_id, rung FROM rung_results ORDER BY run_id, position")
    by_run: dict[str, list[str]] = {}
    for run_id, rung in rows:
        by_run.setdefault(run_id, []).append(rung)
    statuses = dict(conn.execute("SELECT id, status FROM runs"))
    conn.close()
    ids = [s["run_id"] for s in summaries]
    assert statuses == {ids[0]: "done", ids[1]: "done"}
    assert by_run == {i: ["classifier", "prompt", "few-shot"] for i in ids}
    assert _rung_scores(summaries[0]) == _rung_scores(summaries[1])
    # each classifier candidate is in the store once, whole (a folder with its manifest)
    folders = [p for p in (store / "classifiers").iterdir() if not p.name.startswith(".")]
    assert folders and all((p / "classifier.json").is_file() for p in folders)
    assert not [p for p in (store / "classifiers").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_tune_killed_between_checkpoints_resumes_from_its_last_checkpoint(tmp_path,
                                                                           tiny_llama):
    extra = finetune_table(rank=4, alpha=8, learning_rate=0.001, epochs=3, batch_size=4,
                           gradient_accumulation=1, eval_steps=2, early_stopping_patience=100,
                           keep_checkpoints=2)
    toml = write_task(tmp_path / "task", model=str(tiny_llama), extra=extra)
    command = [sys.executable, "-c", "from rung.cli import main; main()", "tune", str(toml),
               "--force", "--json"]
    tunes = tmp_path / "task" / ".rung" / "tunes"
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    saved: list[Path] = []
    deadline = time.monotonic() + 600
    while not saved and child.poll() is None and time.monotonic() < deadline:
        # a checkpoint is whole once the Trainer has written its state, which it writes last
        saved = [p for p in tunes.glob("*/checkpoints/checkpoint-*/trainer_state.json")
                 if int(p.parent.name.rsplit("-", 1)[1]) >= 4]
        time.sleep(0.005)
    assert saved, "the tune ended before its second checkpoint: " + \
        child.stderr.read().decode()[-2000:]
    child.send_signal(signal.SIGKILL)  # somewhere between checkpoint 4 and the next
    child.wait()
    folder = saved[0].parents[2]
    assert not (folder / "artifact" / "tune.json").exists()
    whole = [int(p.parent.name.rsplit("-", 1)[1])
             for p in folder.glob("checkpoints/checkpoint-*/trainer_state.json")]

    again = subprocess.run(command, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    tune = json.loads(again.stdout)
    assert tune["resumed_from"] == max(whole) and 4 <= tune["resumed_from"] < tune["steps"]
    from rung.climb import load_examples, make_split
    from rung.task import load_task

    task = load_task(toml)
    n_train = len(make_split(task, load_examples(task)).train)
    assert tune["steps"] == 3 * -(-n_train // 4) and not tune["stopped_early"]  # all of it
    # the steps before the checkpoint come from it, not from training them again
    assert tune["seconds"] > 0 and not tune["reused"]
    assert (folder / "artifact" / "tune.json").exists()
    assert not (folder / "checkpoints").exists()  # only there to resume from

    # the same command once more trains nothing: the finished tune is picked up
    third = subprocess.run(command, capture_output=True, timeout=600)
    assert third.returncode == 0 and json.loads(third.stdout)["reused"]


@pytest.mark.slow
def test_two_tunes_of_one_task_at_once_train_it_once(tmp_path, tiny_llama):
    extra = finetune_table(rank=4, alpha=8, learning_rate=0.001, epochs=1, batch_size=4,
                           gradient_accumulation=1, eval_steps=4)
    toml = write_task(tmp_path / "task", model=str(tiny_llama), extra=extra)
    command = [sys.executable, "-c", "from rung.cli import main; main()", "tune", str(toml),
               "--force", "--json"]
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]
    finished = [_finish(p) for p in both]
    for code, _, err in finished:
        assert code == 0, err[-2000:]
    tunes = [json.loads(out) for _, out, _ in finished]
    # one trained it; the other waited for the lock and picked the finished tune up
    assert sorted(t["reused"] for t in tunes) == [False, True]
    assert tunes[0]["adapter"] == tunes[1]["adapter"]
    assert tunes[0]["rank_digests"] == tunes[1]["rank_digests"]
