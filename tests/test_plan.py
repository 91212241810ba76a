"""Knowing the cost first: the climb's plan (candidates, val and test examples, tokens per
rung) comes before any model call, matches the steps the climb then takes, and the ETA is
measured from the tokens done per second."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from conftest import LABELS, FakeModel, finetune_table, ticket_records, write_task
from rung.cli import app
from rung.climb import climb
from rung.models.registry import register_model, unregister_model
from rung.plan import Eta, RungPlan, plan_for, stage_rung
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


def test_the_eta_counts_what_preparing_asks_and_drops_a_suite_that_does_not_run():
    """Calibration's content-free prompts and the capability suite are answers too, done in
    one step of their stage; a tune picked up with its suite done never sends the suite."""
    plans = [RungPlan("prompt", "m", 2, 20, 20, 10, 0, 90, 10, prepare_requests=6),
             RungPlan("finetune", "m", 1, 10, 10, 10, 0, 90, 10, train_steps=5,
                      prepare_requests=240)]
    eta = Eta(plans, clock=lambda: 0.0)
    assert eta.total == (6 + 20 + 10) * 100 + (240 + 10 + 10) * 100
    eta.begin("prompt: preparing candidates", 1)
    eta.step("prompt: preparing candidates", 1)
    assert eta.done == 6 * 100
    eta.begin("prompt: choosing on val", 20)
    assert eta.total == (6 + 20 + 10) * 100 + (240 + 10 + 10) * 100  # prepared: it stays
    eta.begin("finetune: scoring on val", 10)  # no suite stage came before it
    assert eta.total == (6 + 20 + 10) * 100 + (10 + 10) * 100


def test_a_fine_tune_shows_its_training_steps_and_the_plan_counts_them(task_dir, tiny_llama):
    toml = write_task(task_dir, model=str(tiny_llama), extra=finetune_table(
        rank=4, alpha=8, learning_rate=0.001, epochs=2, batch_size=8, gradient_accumulation=2))
    rows = {r["rung"]: r for r in plan_for(toml, "finetune")["rungs"]}
    assert list(rows) == ["prompt", "finetune"]  # the tune stands on the prompt chosen on val
    # and is measured beside it on test, as the seeds ask of every tune
    assert rows["prompt"]["measured"] and rows["prompt"]["test_examples"] > 0
    plan = rows["finetune"]
    assert plan["train_steps"] > 1
    assert plan["prepare_requests"] == 2 * 120  # the capability suite, base and tuned
    out = runner.invoke(app, ["eval", str(toml), "--rung", "finetune", "--force", "--json"])
    assert out.exit_code == 0, out.output
    lines = out.stderr.splitlines()
    assert f"finetune: training (lora) ({plan['train_steps']} steps)" in lines
    assert f"finetune: scoring on val ({plan['val_examples']} steps)" in lines
    assert f"the fine-tune trains up to {plan['train_steps']} optimizer steps" in " ".join(
        out.stderr.split())  # the plan's caption, however the table wraps it
    steps = json.loads(out.stdout)["rungs"][-1]["training"]["steps"]
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


# --- the plan against the requests a climb sends ----------------------------------------------


def sent_by_rung(toml: Path, models: list[FakeModel], **options) -> Counter:
    """Climb, and count the prompts each rung's stages send to `models`: whatever is asked
    between a stage's start and the next stage's is that stage's rung's."""
    sent: Counter = Counter()
    mark = ["setup", 0]

    def asked() -> int:
        return sum(len(prompts) for model in models for _, prompts in model.calls)

    def reporter(stage: str, total: int):
        now = asked()
        sent[mark[0]] += now - mark[1]
        mark[:] = [stage_rung(stage), now]
        return lambda n: None

    for model in models:
        model.calls.clear()
    climb(toml, reporter=reporter, **options)
    sent[mark[0]] += asked() - mark[1]
    return +sent  # rungs that sent something


def planned_by_rung(plan: dict) -> Counter:
    return +Counter({r["rung"]: r["requests"] for r in plan["rungs"]})


def test_one_rung_s_plan_counts_the_val_work_of_the_rung_it_stands_on(task_dir, fake_model):
    """`rung eval --rung few-shot` chooses the prompt rung's instruction on val first (its
    candidates, their calibrated twins and their content-free prompts), without measuring it
    on test: the plan counts that work as the climb sends it."""
    toml = write_task(task_dir)
    plan = plan_for(toml, only="few-shot")
    sent = sent_by_rung(toml, [fake_model], only="few-shot")
    assert plan["total"]["requests"] == sum(sent.values())
    assert set(sent) == {"prompt", "few-shot"}
    assert planned_by_rung(plan) == sent
    rows = {r["rung"]: r for r in plan["rungs"]}
    assert not rows["prompt"]["measured"] and rows["few-shot"]["measured"]
    assert rows["prompt"]["test_examples"] == rows["prompt"]["latency_requests"] == 0


def test_the_plan_counts_calibration_s_content_free_prompts(task_dir, fake_model):
    """A whole climb, calibration on: each calibrated candidate sends its three content-free
    prompts while the rung prepares its candidates, and the plan counts them per rung."""
    toml = write_task(task_dir, ladder={"all": True})
    plan = plan_for(toml)
    sent = sent_by_rung(toml, [fake_model])
    assert plan["total"]["requests"] == sum(sent.values())
    assert planned_by_rung(plan) == sent
    rows = {r["rung"]: r for r in plan["rungs"]}
    assert rows["prompt"]["prepare_requests"] == 4 * 3  # four variants, each calibrated
    assert rows["few-shot"]["prepare_requests"] == 2 * 3  # two fixed sets (similar: none)


class Leaning(FakeModel):
    """Right about bugs and features; says BUG to a billing ticket, only just, and leans to
    BUG on a content-free input. Calibration divides the lean out and gets billing right, so
    calibrated twins are chosen: the pipeline carried up to the large model is calibrated
    again there."""

    @property
    def fingerprint(self) -> str:  # its own: the small model's answers are not the large's
        return f"leaning-{self.name}"

    def score_choices(self, prompts, choices):
        scored = super().score_choices(prompts, choices)  # kept in calls
        for i, prompt in enumerate(prompts):
            ticket = re.search(r"ticket \d+ about (\w+)", prompt[-1].content)
            if ticket is None:  # "N/A", "", "[MASK]"
                scored[i] = replace(scored[i], logprobs=[-3.0, 0.0, -5.0])
            elif ticket.group(1) == "billing":
                scored[i] = replace(scored[i], logprobs=[-0.5, 0.0, -5.0])
        return scored


def _named(prompt) -> str | None:
    ticket = re.search(r"ticket \d+ about (\w+)", prompt[-1].content)
    return ticket.group(1).upper() if ticket else None


def test_the_bigger_model_s_plan_counts_the_rungs_it_chooses_among_and_its_calibration(
        task_dir):
    """`rung eval --rung bigger-model` builds the prompt and few-shot rungs on val to choose
    the pipeline that goes up, and calibrates that pipeline again on the large model."""
    small = Leaning(name="small", rule=_named)
    large = Leaning(name="large", rule=_named)
    register_model("small", small)
    register_model("large", large)
    try:
        toml = write_task(task_dir, model="small")
        toml.write_text(toml.read_text().replace('small = "small"',
                                                 'small = "small"\nlarge = "large"'))
        plan = plan_for(toml, only="bigger-model")
        sent = sent_by_rung(toml, [small, large], only="bigger-model")
    finally:
        unregister_model("small")
        unregister_model("large")
    assert any(prompts[0][-1].content == "N/A" for _, prompts in large.calls)  # this shape
    assert plan["total"]["requests"] == sum(sent.values())
    assert planned_by_rung(plan) == sent
    rows = {r["rung"]: r for r in plan["rungs"]}
    assert [r["measured"] for r in rows.values()] == [False, False, True]
    assert rows["bigger-model"]["prepare_requests"] == 3
    assert rows["bigger-model"]["tokens_in"] == rows["few-shot"]["tokens_in"]


def test_the_rag_rung_s_plan_counts_the_prompt_chosen_on_val_under_it(tmp_path, fake_model):
    """`rung eval --rung rag`: the prompt rung is chosen on val (no calibration: a generation
    task) before the retrieval candidates are raced on val."""
    from test_rag import reading_model, write_qa_task

    reading_model(fake_model)
    toml = write_qa_task(tmp_path)
    plan = plan_for(toml, only="rag")
    sent = sent_by_rung(toml, [fake_model], only="rag")
    planned = planned_by_rung(plan)
    assert planned["prompt"] == sent["prompt"]
    # two retrievers that find the same passages in this small corpus send the same prompt,
    # which the response cache answers the second time: the plan counts it twice
    assert sent["rag"] <= planned["rag"]
    assert [(r["rung"], r["measured"]) for r in plan["rungs"]] == [("prompt", False),
                                                                   ("rag", True)]
    # without the cache every candidate asks for itself, and the plan says so
    plan = plan_for(toml, only="rag", cached=False)
    sent = sent_by_rung(toml, [fake_model], only="rag", use_cache=False)
    assert planned_by_rung(plan) == sent


def test_a_raced_choice_with_calibrated_twins_stays_within_the_plan(task_dir, fake_model):
    """Racing on more val than race_start: a twin that goes on where its original stopped
    asks for itself. The plan takes every pair still in the race to be asking, so it is an
    upper bound, and not far above."""
    model = Leaning(rule=_named)
    register_model("leaning", model)
    try:
        toml = write_task(task_dir, model="leaning", records=ticket_records(40),
                          ladder={"all": True})
        plan = plan_for(toml)
        assert plan["split"]["val"] > 10  # raced: all answer 10, the last pair all of val
        sent = sent_by_rung(toml, [model])
    finally:
        unregister_model("leaning")
    planned = planned_by_rung(plan)
    for rung, n in sent.items():
        assert n <= planned[rung] <= 1.25 * n, (rung, n, planned[rung])


def test_the_dry_run_bounds_a_raced_climb_whose_race_keeps_the_costly_candidates(
        task_dir, fake_model):
    """The dry run's stand-in answers nothing, so every candidate ties and a race keeps the
    first (fewest demonstrations). A model that is right only with many demonstrations keeps
    the costly ones, and the first climb sent 40% more tokens than the dry run counted. The
    dry run now counts every candidate on all of val."""
    from rung.dry_run import dry_run
    from rung.models.registry import register_model
    from rung.models.usage import estimate_tokens

    toml = write_task(task_dir, records=ticket_records(40),
                      ladder={"skip": ["classifier"], "all": True},
                      extra='\n[prompt]\ncalibrate = false\nvariants = ["instruction"]\n')
    toml.write_text(toml.read_text().replace(
        "k = [3, 6]", 'k = [1, 2, 4, 8, 16]\nselection = ["stratified"]\ncalibrate = false')
        .replace("latency_samples = 2", "latency_samples = 0"))
    counted = {r["rung"]: r for r in dry_run(toml)["rungs"]}
    register_model("fake", fake_model)  # the dry run's stand-in answered to its name

    def rule(prompt):  # right only with eight demonstrations or more
        shown = sum(1 for m in prompt if m.role == "assistant")
        text = prompt[-1].content.lower()
        return next((l for l in LABELS if l.lower() in text), "BILLING") if shown >= 8 \
            else "BILLING"

    fake_model.rule = rule
    fake_model.calls.clear()
    climb(toml)
    sent = [p for _, prompts in fake_model.calls for p in prompts
            if sum(m.role == "assistant" for m in p) > 0]  # the few-shot rung's prompts
    assert len(sent) <= counted["few-shot"]["requests"]
    assert sum(estimate_tokens(p) for p in sent) <= counted["few-shot"]["tokens_in"]
