"""Knowing the cost first: the climb's plan (candidates, val and test examples, tokens per
rung) comes before any model call, matches the steps the climb then takes, and the ETA is
measured from the tokens done per second."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from conftest import finetune_table, write_task
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
    eta.step("audit", 5)
    now[0] += 30.0  # loading the model
    eta.step("prompt: choosing on val", 10)  # the first batch: loading, no rate
    assert eta.seconds_left() is None
    now[0] += 2.0
    eta.step("prompt: choosing on val", 10)  # 1,000 tokens in 2 s
    assert eta.seconds_left() == (23_000 - 2_000) / 500
    now[0] += 2.0  # no step for 2 s: the estimate counts down
    assert eta.seconds_left() == (23_000 - 2_000) / 500 - 2.0
    now[0] += 100.0
    assert eta.seconds_left() == 0.0  # late, never negative
    eta.step("rag: test", 4)  # the next step: 3,000 tokens in 104 s
    assert eta.seconds_left() == (23_000 - 4_000) / (3_000 / 104)
    assert not eta.training_unmeasured  # no fine-tune in this plan


def test_training_is_timed_in_steps_apart_from_answers():
    plans = [RungPlan("prompt", "m", 1, 10, 10, 10, 0, 90, 10),
             RungPlan("finetune", "m", 1, 10, 10, 10, 0, 90, 10, train_steps=12)]
    now = [0.0]
    eta = Eta(plans, clock=lambda: now[0])
    eta.step("prompt: choosing on val", 5)
    now[0] += 1.0
    eta.step("prompt: choosing on val", 5)  # answers: 500 tokens a second
    assert eta.training_unmeasured  # twelve steps ahead, and no rate for them yet
    assert eta.seconds_left() == (4_000 - 1_000) / 500
    eta.begin("finetune: training (lora)", 8)  # the Trainer's max_steps replaces the plan's
    now[0] += 60.0  # loading and the first step: not a rate
    eta.step("finetune: training (lora)", 1)
    assert eta.training_unmeasured
    now[0] += 10.0
    eta.step("finetune: training (lora)", 2)  # 2 steps in 10 s
    assert not eta.training_unmeasured
    assert eta.seconds_left() == 5 * 5.0 + (4_000 - 1_000) / 500
    now[0] += 4.0  # the time since comes off training's part, which is at work
    assert eta.seconds_left() == 5 * 5.0 - 4.0 + (4_000 - 1_000) / 500
    for _ in range(5):
        now[0] += 5.0
        eta.step("finetune: training (lora)", 1)
    now[0] += 300.0  # saving, the capability suite: neither rate sees it
    eta.begin("finetune: scoring on val", 10)
    eta.step("finetune: scoring on val", 10)
    assert eta.answer.rate == 500 and eta.train.rate == 7 / (10 + 9 + 4 * 5)
    assert eta.seconds_left() == (4_000 - 2_000) / 500


def test_a_tune_picked_up_instead_of_trained_leaves_no_training_ahead():
    plans = [RungPlan("finetune", "m", 1, 10, 10, 10, 0, 90, 10, train_steps=300)]
    eta = Eta(plans)
    eta.step("finetune: scoring on val", 2)
    assert eta.training_unmeasured  # it may still train, as far as the plan knows
    eta.begin("finetune: test", 10)  # the tune was found finished: no training stage came
    assert not eta.training_unmeasured and eta.train.left == 0


def test_a_fine_tune_shows_its_training_steps_and_the_plan_counts_them(task_dir, tiny_llama):
    toml = write_task(task_dir, model=str(tiny_llama), extra=finetune_table(
        rank=4, alpha=8, learning_rate=0.001, epochs=2, batch_size=8, gradient_accumulation=2))
    [plan] = plan_for(toml, "finetune")["rungs"]
    assert plan["rung"] == "finetune" and plan["train_steps"] > 1
    out = runner.invoke(app, ["eval", str(toml), "--rung", "finetune", "--force", "--json"])
    assert out.exit_code == 0, out.output
    lines = out.stderr.splitlines()
    assert f"finetune: training (lora) ({plan['train_steps']} steps)" in lines
    assert f"finetune: scoring on val ({plan['val_examples']} steps)" in lines
    assert f"the fine-tune trains up to {plan['train_steps']} optimizer steps" in " ".join(
        out.stderr.split())  # the plan's caption, however the table wraps it
    steps = json.loads(out.stdout)["rungs"][0]["training"]["steps"]
    assert steps <= plan["train_steps"]  # early stopping may end it sooner


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
