"""`rung compare` and `rung gate` (issue 17): two runs paired on one test split, McNemar's
exact test on the examples that changed, and a CI gate that fails a worse candidate."""

from __future__ import annotations

import json
from math import comb

from typer.testing import CliRunner

from conftest import LABELS, write_task
from rung.cli import app

runner = CliRunner()
BROKEN = "Answer BILLING whatever the ticket says."


def _rule(prompt):
    """Reads the label off the ticket, unless the instruction is the broken one."""
    if BROKEN in prompt[0].content:
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def _climb(toml) -> str:
    done = runner.invoke(app, ["climb", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)["run_id"]


def _exact_mcnemar(b_only: int, a_only: int) -> float:
    """The closed form: two-sided binomial tail of the discordant pairs at 1/2."""
    n, k = b_only + a_only, min(b_only, a_only)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def test_compare_lists_the_flips_and_mcnemars_exact_p_value(task_dir, fake_model):
    fake_model.rule = _rule
    toml = write_task(task_dir)
    good = _climb(toml)
    toml.write_text(toml.read_text().replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    broken = _climb(toml)
    done = runner.invoke(app, ["compare", good, broken, "--task", str(toml), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["config_changed"] and not report["data_changed"]
    prompt = report["rungs"]["prompt"]
    worse, better = prompt["right_to_wrong"], prompt["wrong_to_right"]
    assert len(worse) > 0 and all(f["b"] == "BILLING" and f["a"] == f["expected"] for f in worse)
    assert prompt["p_value"] == _exact_mcnemar(len(better), len(worse))
    assert prompt["difference"] == round((len(better) - len(worse)) / prompt["n"], 4)
    assert report["overall"]["a"]["rung"] == "prompt"

    runs = json.loads(runner.invoke(app, ["runs", str(toml), "--json"]).stdout)
    assert {(r["run_id"], r["status"]) for r in runs} == {(good, "done"), (broken, "done")}

    toml.write_text(toml.read_text().replace("seed = 7", "seed = 8"))  # another split
    reshuffled = _climb(toml)
    refused = runner.invoke(app, ["compare", good, reshuffled, "--task", str(toml)])
    assert refused.exit_code == 2 and "different test splits" in refused.stderr


def test_the_gate_fails_a_broken_prompt_and_passes_a_rerun_of_the_baseline(task_dir,
                                                                          fake_model, tmp_path):
    fake_model.rule = _rule
    toml = write_task(task_dir)
    baseline = _climb(toml)
    pinned = runner.invoke(app, ["runs", str(toml), "--pin", baseline, "--json"])
    assert pinned.exit_code == 0 and json.loads(pinned.stdout)[0]["pinned"]
    original = toml.read_text()
    toml.write_text(original.replace(
        'instruction = "Classify the ticket as BILLING, BUG or FEATURE."',
        f'instruction = "{BROKEN}"'))
    comment = tmp_path / "comment.md"
    failed = runner.invoke(app, ["gate", str(toml), "--markdown", str(comment)])
    assert failed.exit_code == 1, failed.output
    assert comment.read_text().startswith("**rung gate FAILS**")
    assert "right to wrong:" in comment.read_text()
    toml.write_text(original)
    passed = runner.invoke(app, ["gate", str(toml), "--json"])  # the baseline, climbed again
    assert passed.exit_code == 0, passed.output
    verdict = json.loads(passed.stdout)
    assert verdict["difference"] == 0 and not verdict["fails"]
    assert verdict["a"]["run"] == baseline and verdict["b"]["run"] != baseline
    # a tolerance lets a small significant drop through; none here is small
    named = runner.invoke(app, ["gate", str(toml), "--baseline", baseline, "--candidate",
                                verdict["b"]["run"], "--tolerance", "0.05", "--json"])
    assert named.exit_code == 0, named.output


def test_the_gate_without_a_baseline_says_how_to_name_one(task_dir, fake_model):
    toml = write_task(task_dir)
    _climb(toml)
    done = runner.invoke(app, ["gate", str(toml)])
    assert done.exit_code == 2 and "--pin" in done.stderr
