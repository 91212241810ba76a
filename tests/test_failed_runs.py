"""A climb that fails, is interrupted or is killed says so in the store and in `rung runs`,
keeps what it stored, and data the tune would refuse is refused before any cheaper rung runs
(issue 14, finding 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FakeModel, finetune_table, write_task
from rung.cli import app
from rung.climb import climb
from rung.finetune.train import NotReadyError
from rung.models.registry import register_model, unregister_model
from rung.store import Store

runner = CliRunner()


def _runs(task_dir: Path) -> list[dict]:
    done = runner.invoke(app, ["runs", str(task_dir), "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def _with_model(model: FakeModel, task_dir: Path):
    register_model(model.name, model)
    return write_task(task_dir, model=model.name)


def test_a_climb_that_fails_is_recorded_with_its_error_and_keeps_what_it_stored(task_dir):
    def rule(prompt):
        if any(m.role == "assistant" for m in prompt):  # the few-shot rung's prompts
            raise RuntimeError("the model server went away")
        return "BILLING"

    model = FakeModel(name="flaky", rule=rule)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            climb(_with_model(model, task_dir))
    finally:
        unregister_model("flaky")
    [run] = _runs(task_dir)
    assert run["status"] == "failed" and run["finished"]
    assert run["error"] == "RuntimeError: the model server went away"
    store = Store(task_dir / ".rung")
    assert [r["rung"] for r in store.rung_rows(run["id"])] == ["prompt"]  # kept
    store.close()
    table = runner.invoke(app, ["runs", str(task_dir)])
    assert "failed" in table.stdout and "away" in table.stdout  # the error, folded to fit
    # a failed run recommends nothing and has no test scores to gate against
    pin = runner.invoke(app, ["runs", str(task_dir), "--pin", run["id"]])
    assert pin.exit_code == 2 and "did not finish (status failed)" in pin.stderr
    serve = runner.invoke(app, ["serve", run["id"], "--task", str(task_dir), "--port", "0"])
    assert serve.exit_code == 2 and "it recommends nothing" in serve.stderr


def test_ctrl_c_is_recorded_as_interrupted(task_dir):
    def rule(prompt):
        raise KeyboardInterrupt

    model = FakeModel(name="stopped", rule=rule)
    try:
        with pytest.raises(KeyboardInterrupt):
            climb(_with_model(model, task_dir))
        # from the command line: a word on what became of the work, and the shell's 130
        said = runner.invoke(app, ["climb", str(task_dir)])
    finally:
        unregister_model("stopped")
    assert said.exit_code == 130 and "interrupted: what was stored stays" in said.stderr
    runs = _runs(task_dir)
    assert [run["status"] for run in runs] == ["interrupted", "interrupted"]
    assert all(run["error"] == "KeyboardInterrupt: stopped by Ctrl-C" for run in runs)


KILLED_MID_RUNG = """
import os, signal, sys
from rung.models.base import ChoiceScores
from rung.models.registry import register_model
from rung.climb import climb

class DiesOnFirstCall:
    name = "dies"
    fingerprint = "dies-1"
    def count_tokens(self, messages):
        return 1
    def generate(self, prompts, max_new_tokens=64):
        raise AssertionError("not asked to generate")
    def score_choices(self, prompts, choices):
        os.kill(os.getpid(), signal.SIGKILL)  # kill -9 while a rung is being measured

register_model("dies", DiesOnFirstCall())
climb(sys.argv[1])
"""


def test_a_killed_climb_shows_as_interrupted_not_running_for_ever(task_dir, tmp_path):
    toml = write_task(task_dir, model="dies")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED_MID_RUNG))
    done = subprocess.run([sys.executable, str(script), str(toml)], capture_output=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    store = Store(task_dir / ".rung")
    [row] = store.conn.execute("SELECT status FROM runs").fetchall()
    assert row["status"] == "running"  # nothing could record a kill -9 ...
    store.close()
    [run] = _runs(task_dir)  # ... so the next look at the store settles it
    assert run["status"] == "interrupted" and "killed or crashed" in run["error"]


def test_data_the_tune_would_refuse_is_checked_before_any_cheaper_rung(task_dir, fake_model):
    toml = write_task(task_dir, extra=finetune_table(rank=4, epochs=1))  # 60 tickets: not ready
    done = runner.invoke(app, ["eval", str(toml), "--rung", "finetune"])
    assert done.exit_code == 2 and "not ready" in done.stderr and "--force" in done.stderr
    assert fake_model.calls == []  # refused before the prompt rung it builds on was built
    with pytest.raises(NotReadyError):
        climb(toml, only="finetune")
    # a whole climb measures the cheaper rungs and says why the tune was left out
    result = climb(toml)
    assert [r.rung for r in result.results] == ["prompt", "few-shot"]
    assert "not ready" in result.not_measured["finetune"]
    assert "--force" in result.not_measured["finetune"]
