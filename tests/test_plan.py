"""Knowing the cost first: the climb's plan (candidates, val and test examples, tokens per
rung) comes before any model call, matches the steps the climb then takes, and the ETA is
measured from the tokens done per second."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import write_task
from rung.cli import app
from rung.plan import Eta, RungPlan, plan_for
from rung.rungs.base import race_work

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa"


def test_the_plan_comes_before_the_first_model_call_and_the_steps_match_it(task_dir, fake_model):
    toml = write_task(task_dir)
    plan = {r["rung"]: r for r in plan_for(toml)["rungs"]}
    assert list(plan) == ["prompt", "few-shot"]  # the LLM rungs this ladder measures
    out = runner.invoke(app, ["climb", str(toml), "--json"])
    assert out.exit_code == 0, out.output
    lines = out.stderr.splitlines()
    work = next(i for i, line in enumerate(lines) if "work ahead" in line)
    first_model_stage = next(i for i, line in enumerate(lines)
                             if line.startswith("prompt: preparing candidates"))
    assert work < first_model_stage  # calibration asks the model while preparing
    assert all(line.startswith(("audit", "  audit")) for line in lines[:work])
    for rung in ("prompt", "few-shot"):  # the plan's val steps are the stage's steps
        assert f"{rung}: choosing on val ({plan[rung]['val_examples']} steps)" in lines
    assert any("; climb: about " in line and line.endswith(" left") for line in lines)


def test_the_eta_waits_for_a_measured_batch_and_weighs_steps_by_tokens():
    plans = [RungPlan("prompt", "m", 2, 20, 20, 10, 0, 90, 10),
             RungPlan("rag", "m", 4, 30, 30, 10, 0, 490, 10)]
    now = [100.0]
    eta = Eta(plans, clock=lambda: now[0])
    assert eta.total == 30 * 100 + 40 * 500
    assert eta.units("rag: choosing on val", 3) == 3 * 500
    assert eta.units("prompt: test", 2) == 200 and eta.units("audit", 5) == 0
    eta.advance(eta.units("prompt: choosing on val", 10))  # the first batch: loading, no rate
    assert eta.seconds_left() is None
    now[0] += 2.0
    eta.advance(eta.units("prompt: choosing on val", 10))  # 1,000 tokens in 2 s
    assert eta.seconds_left() == (23_000 - 2_000) / 500
    now[0] += 2.0  # no step for 2 s: the estimate counts down
    assert eta.seconds_left() == (23_000 - 2_000) / 500 - 2.0
    now[0] += 100.0
    assert eta.seconds_left() == 0.0  # late, never negative
    eta.advance(eta.units("rag: test", 4))  # the next step: 3,000 tokens in 104 s
    assert eta.seconds_left() == (23_000 - 4_000) / (3_000 / 104)


def test_the_docs_example_plan_counts_the_race_and_the_bigger_requests():
    raced = {r["rung"]: r for r in plan_for(DOCS)["rungs"]}
    assert list(raced) == ["prompt", "few-shot", "rag", "bigger-model"]
    assert raced["rag"]["candidates"] == 8  # two retrievers x two k x two shot counts
    assert raced["rag"]["val_examples"] == race_work(8, 40, 10) == 160  # val_limit 40
    assert raced["prompt"]["val_examples"] == 2 * 40  # two candidates: the last pair, all val
    assert raced["bigger-model"]["val_examples"] == 40
    assert raced["rag"]["tokens_in"] > raced["few-shot"]["tokens_in"] > raced["prompt"][
        "tokens_in"]
    assert all(r["test_examples"] == 60 for r in raced.values())


def test_the_dry_run_prints_the_plan_too(task_dir, fake_model):
    out = runner.invoke(app, ["climb", str(write_task(task_dir)), "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    estimate = json.loads(out.stdout)
    assert [r["rung"] for r in estimate["work"]["rungs"]] == ["prompt", "few-shot"]
    assert not fake_model.calls  # the stand-in answered; the real model was never asked
