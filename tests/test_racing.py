"""Racing candidates on val by successive halving: a clearly worse candidate stops early, the
work is known before the first call, the choice is full selection's, and racing never looks
at test."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import LABELS, ticket_records, write_task
from rung.climb import climb, load_examples, make_split
from rung.pipeline import Pipeline
from rung.rungs.base import choose_on_val, race_schedule, race_work, val_work
from rung.task import load_task


@pytest.mark.parametrize("n, n_val, start, rounds", [
    (8, 40, 10, [(8, 10), (4, 20), (2, 40)]),  # the last pair meets on all of val
    (9, 60, 10, [(9, 10), (5, 15), (3, 30), (2, 60)]),
    (4, 18, 4, [(4, 9), (2, 18)]),
    (2, 40, 10, [(2, 40)]),  # two candidates: the race is full selection
    (18, 60, 10, [(18, 10), (9, 10), (5, 15), (3, 30), (2, 60)]),  # halved twice on the first 10
    (3, 5, 10, [(3, 5), (2, 5)]),  # val smaller than race_start
])
def test_the_schedule_halves_the_candidates_and_doubles_the_examples(n, n_val, start, rounds):
    assert race_schedule(n, n_val, start) == rounds
    seen, work = 0, 0
    for alive, size in rounds:
        work, seen = work + alive * (size - seen), size
    assert race_work(n, n_val, start) == work <= n * n_val
    if rounds[0][1] < n_val:  # a round on part of val: less work than full selection
        assert work < n * n_val


def _rule(prompt):
    """With examples shown it reads the label off the ticket; zero-shot it says BILLING."""
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def _task(task_dir, selection: str):
    return write_task(task_dir, records=ticket_records(40), extra=(
        f'selection = "{selection}"\nrace_start = 4\n'), ladder={"skip": ["classifier"],
                                                                "all": True})


def _candidates(split):
    good = Pipeline(rung="few-shot", kind="classification", model="fake",
                    instruction="Classify.", variant="instruction", labels=LABELS,
                    demonstrations=list(split.train[:3]), details={"k": 3})
    return [("none", replace(good, demonstrations=[], details={"k": 0})),
            ("none, terse", replace(good, demonstrations=[], instruction="Label it.",
                                    details={"k": 0, "terse": True})),
            ("k=3", good),
            ("k=6", replace(good, demonstrations=list(split.train[:6]), details={"k": 6}))]


def test_racing_stops_the_weaker_half_early_and_keeps_the_full_choice(task_dir, fake_model):
    """Two demonstration-free candidates (a third right) race two fixed sets (all right): the
    first two stop after about half of val; k=3 and k=6 tie on all of val and k=3, the cheaper,
    is kept, as full selection keeps it."""
    fake_model.rule = _rule
    task = load_task(_task(task_dir, "race"))
    split = make_split(task, load_examples(task))
    pipelines = _candidates(split)
    n_val = len(split.val)
    assert n_val == 14  # rounds: 4 candidates on 7, the better 2 on all 14
    fake_model.calls.clear()
    chosen, candidates = choose_on_val(task, pipelines, split.val)
    assert chosen is pipelines[2][1] and [c.chosen for c in candidates] == [0, 0, 1, 0]
    none, terse, k3, k6 = candidates
    for stopped in (none, terse):
        assert stopped.details["val_n"] == 7 < n_val
        assert stopped.details["stopped"].startswith("in the weaker half on 7 val examples")
    assert k3.details["val_n"] == k6.details["val_n"] == n_val and k3.val_score == 1.0
    assert "tied with k=3" in k6.details["stopped"]
    asked = [p for _, batch in fake_model.calls for p in batch]
    # each candidate answered each of its val examples once: the rounds add, never repeat
    assert len(asked) == race_work(4, n_val, 4) == val_work(task, 4, n_val) == 4 * 7 + 2 * 7
    assert {p[-1].content for p in asked} <= {e.input for e in split.val}
    assert not {p[-1].content for p in asked} & {e.input for e in split.test}  # never test
    again_chosen, again = choose_on_val(task, pipelines, split.val)  # deterministic
    assert again_chosen is chosen and again == candidates
    full_task = task.model_copy(update={"eval": task.eval.model_copy(
        update={"selection": "full"})})
    full_choice, full = choose_on_val(full_task, pipelines, split.val)
    assert full_choice is chosen and [c.details["val_n"] for c in full] == [n_val] * 4
    assert not any("stopped" in c.details for c in full)
    assert val_work(full_task, 4, n_val) == 4 * n_val


def test_a_raced_climb_records_how_far_each_candidate_got(task_dir, fake_model):
    """Through a whole climb: each candidate's JSON says how many val examples it answered
    and why it stopped, test is asked only of the chosen pipelines, and the report shows it."""
    fake_model.rule = _rule
    toml = _task(task_dir, "race")
    result = climb(toml)
    summary = result.summary()
    for rung in summary["rungs"]:
        for c in rung["candidates"]:
            assert 1 <= c["val_n"] <= summary["split"]["val"]
            assert c["stopped"] if len(rung["candidates"]) > 1 else "stopped" not in c
        chosen = next(c for c in rung["candidates"] if c["chosen"])
        assert chosen["val_n"] == summary["split"]["val"]
    report = result.report.read_text()
    assert "weaker half" in report and "val examples" in report
    json.dumps(summary)
