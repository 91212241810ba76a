"""Racing candidates on val (issue 18, first part): a candidate clearly behind the leader stops
early, the one kept is measured on all of val, and racing never looks at test."""

from __future__ import annotations

from conftest import LABELS, ticket_records, write_task
from rung.climb import load_examples, make_split
from rung.task import load_task


def _rule(prompt):
    """With examples shown it reads the label off the ticket; zero-shot it says BILLING."""
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def _task(task_dir, selection: str):
    return write_task(task_dir, records=ticket_records(40), extra=(
        f'selection = "{selection}"\nrace_start = 8\n'), ladder={"skip": ["classifier"],
                                                                "all": True})


def test_racing_stops_a_candidate_clearly_behind_and_keeps_the_full_choice(task_dir,
                                                                           fake_model):
    """The few-shot rung races k=3 and k=6 (both right) against a broken fixed set: the
    demonstration-free variant stops early; the choice equals full selection's."""
    from dataclasses import replace

    from rung.pipeline import Pipeline
    from rung.rungs.base import choose_on_val

    fake_model.rule = _rule
    toml = _task(task_dir, "race")
    task = load_task(toml)
    split = make_split(task, load_examples(task))
    good = Pipeline(rung="few-shot", kind="classification", model="fake",
                    instruction="Classify.", variant="instruction", labels=LABELS,
                    demonstrations=list(split.train[:3]), details={"k": 3})
    bad = replace(good, demonstrations=[], details={"k": 0})
    fake_model.calls.clear()
    chosen, candidates = choose_on_val(task, [("none", bad), ("k=3", good)], split.val)
    assert chosen is good and [c.chosen for c in candidates] == [False, True]
    stopped, kept = candidates
    assert stopped.details["val_n"] < len(split.val) and "behind k=3" in stopped.details["stopped"]
    assert kept.details["val_n"] == len(split.val)
    asked = {p[-1].content for _, batch in fake_model.calls for p in batch}
    assert asked <= {e.input for e in split.val} | {
        m.content for p in [good.messages(e.input) for e in split.val] for m in p}
    assert not asked & {e.input for e in split.test}  # racing never looks at test
    full_task = task.model_copy(update={"eval": task.eval.model_copy(
        update={"selection": "full"})})
    full_choice, _ = choose_on_val(full_task, [("none", bad), ("k=3", good)], split.val)
    assert full_choice is chosen
