"""The catastrophic-forgetting check on models whose answers are set here, so every expected
accuracy, drop and p-value is worked out by hand; plus the bundled suite's own shape."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from typing import AbstractSet as Set, Sequence

import pytest
from conftest import FakeModel

from rung.data.example import Message
from rung.finetune.regression import (
    FIX,
    SuiteItem,
    capability_check,
    compare_capability,
    load_suite,
    score_suite,
)
from rung.models.base import ChoiceScores
from rung.models.registry import load_model, register_model, unregister_model

CATEGORIES = {"instructions", "facts", "arithmetic", "formatting"}


def _model(items: Sequence[SuiteItem], wrong_in: Set[str] = frozenset(),
           wrong_ids: Set[str] = frozenset(), name: str = "fake") -> FakeModel:
    """Right on every item except those in `wrong_in` categories or `wrong_ids`."""
    answers = {}
    for item in items:
        pick = item.answer
        if item.category in wrong_in or item.id in wrong_ids:
            pick = (item.answer + 1) % len(item.choices)
        answers[item.prompt] = item.choices[pick]
    return FakeModel(answers=answers, default="", name=name)


# -- the suite ------------------------------------------------------------------------------


def test_suite_file_ships_inside_the_package() -> None:
    path = resources.files("rung.finetune").joinpath("suite", "general.jsonl")
    assert path.is_file()
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    assert len(lines) == len(load_suite())


def test_suite_is_well_formed() -> None:
    items = load_suite()
    assert 100 <= len(items) <= 150
    assert len({item.id for item in items}) == len(items)
    assert len({item.prompt for item in items}) == len(items)
    per_category = Counter(item.category for item in items)
    assert set(per_category) == CATEGORIES
    assert min(per_category.values()) >= 25  # roughly even
    for item in items:
        assert 2 <= len(item.choices) <= 4, item.id
        assert len(set(item.choices)) == len(item.choices), item.id
        assert all(choice.strip() for choice in item.choices), item.id
        assert 0 <= item.answer < len(item.choices), item.id
        assert len(item.prompt.split()) <= 40, item.id  # short prompts keep scoring fast
    positions = Counter(item.answer for item in items)
    assert len(positions) >= 3
    assert max(positions.values()) <= 0.5 * len(items)  # the answer is not always first


# -- scoring --------------------------------------------------------------------------------


def test_a_model_right_everywhere_scores_one_and_sees_only_the_prompt() -> None:
    items = load_suite()
    model = _model(items)
    score = score_suite(model, items)
    assert score.accuracy == 1.0
    assert score.by_category == {c: 1.0 for c in CATEGORIES}
    assert score.ids == tuple(item.id for item in items)
    sent = [prompt for _, prompts in model.calls for prompt in prompts]
    assert len(sent) == len(items)
    assert {tuple(p) for p in sent} == {(Message("user", item.prompt),) for item in items}


def test_items_sharing_choices_share_a_call_and_keep_their_own_answers() -> None:
    items = [
        SuiteItem("a", "facts", "Is ice cold?", ("Yes", "No"), 0),
        SuiteItem("b", "facts", "Is fire cold?", ("Yes", "No"), 1),
        SuiteItem("c", "facts", "Is snow hot?", ("Yes", "No"), 1),
        SuiteItem("d", "arithmetic", "1 + 1?", ("2", "3"), 0),
    ]
    model = FakeModel(answers={"Is ice cold?": "Yes", "Is fire cold?": "No", "Is snow hot?": "Yes",
                               "1 + 1?": "2"}, default="")
    score = score_suite(model, items)
    assert len(model.calls) == 2
    assert score.correct == (True, True, False, True)
    assert score.chosen == (0, 1, 0, 0)
    assert score.by_category == {"arithmetic": 1.0, "facts": pytest.approx(2 / 3)}


class _LengthModel:
    """A short choice with the higher total but the lower per-token log-probability."""

    name = "length"
    fingerprint = "length"

    def score_choices(self, prompts, choices):
        return [ChoiceScores([-3.0, -4.0], 5, [1, 8]) for _ in prompts]


def test_choices_are_compared_per_token_not_in_total() -> None:
    items = [SuiteItem("x", "facts", "Which ocean is largest?", ("Nice", "The Pacific Ocean"), 1)]
    score = score_suite(_LengthModel(), items)
    assert score.chosen == (1,)  # mean -0.5 beats mean -3.0, though -4.0 < -3.0 in total
    assert score.correct == (True,)


# -- comparing base and tuned ---------------------------------------------------------------


def test_forgotten_arithmetic_is_flagged_with_its_category_and_p_value() -> None:
    items = load_suite()
    n_arithmetic = sum(item.category == "arithmetic" for item in items)
    base = score_suite(_model(items, name="base"), items)
    tuned = score_suite(_model(items, wrong_in={"arithmetic"}, name="tuned"), items)
    check = compare_capability(base, tuned, threshold=0.05)
    assert check.flagged
    assert check.base_accuracy == 1.0
    assert check.tuned_accuracy == pytest.approx(1 - n_arithmetic / len(items))
    assert check.drop == pytest.approx(n_arithmetic / len(items))
    assert check.by_category["arithmetic"].base == 1.0
    assert check.by_category["arithmetic"].tuned == 0.0
    assert check.by_category["arithmetic"].drop == 1.0
    assert all(check.by_category[c].drop == 0.0 for c in CATEGORIES - {"arithmetic"})
    assert (check.base_only, check.tuned_only) == (n_arithmetic, 0)
    # Exact two-sided McNemar with all n discordant pairs one way: 2 * 0.5**n.
    assert check.p_value == pytest.approx(2 * 0.5 ** n_arithmetic, rel=1e-9)
    assert check.fix == FIX and "lower LR" in check.fix
    assert "arithmetic" in check.finding and "worse than the base" in check.finding
    assert check.drop_ci[0] <= check.drop <= check.drop_ci[1]


def test_equal_models_are_not_flagged() -> None:
    items = load_suite()
    wrong = {items[0].id, items[50].id, items[100].id}
    base = score_suite(_model(items, wrong_ids=wrong), items)
    tuned = score_suite(_model(items, wrong_ids=wrong), items)
    check = compare_capability(base, tuned)
    assert not check.flagged
    assert check.drop == 0.0
    assert (check.base_only, check.tuned_only, check.p_value) == (0, 0, 1.0)
    assert check.fix is None
    assert "held" in check.finding


def test_threshold_decides_the_flag_and_gains_offset_losses() -> None:
    items = load_suite()
    lost = {item.id for item in items[:8]}  # tuned gets these wrong
    gained = {item.id for item in items[-2:]}  # base gets these wrong
    base = score_suite(_model(items, wrong_ids=gained), items)
    tuned = score_suite(_model(items, wrong_ids=lost), items)
    net = (8 - 2) / len(items)
    assert compare_capability(base, tuned, threshold=0.05).drop == pytest.approx(net)
    assert compare_capability(base, tuned, threshold=net + 0.01).flagged is False
    assert compare_capability(base, tuned, threshold=net - 0.01).flagged is True
    check = compare_capability(base, tuned, threshold=net - 0.01)
    assert (check.base_only, check.tuned_only) == (8, 2)
    # 2 of 10 discordant pairs one way: P(X <= 2) + P(X >= 8) for X ~ Binomial(10, 1/2).
    assert check.p_value == pytest.approx(2 * (1 + 10 + 45) / 2**10)
    assert "could still be noise" in check.finding  # flagged, yet p > 0.05


def test_scores_of_different_suites_are_refused() -> None:
    items = load_suite()
    base = score_suite(_model(items), items)
    tuned = score_suite(_model(items), items[:-1])
    with pytest.raises(ValueError, match="different suite items"):
        compare_capability(base, tuned)


def test_check_serialises_to_json() -> None:
    items = load_suite()
    base = score_suite(_model(items), items)
    tuned = score_suite(_model(items, wrong_in={"facts"}), items)
    data = json.loads(json.dumps(compare_capability(base, tuned).to_dict()))
    assert data["flagged"] is True
    assert data["by_category"]["facts"] == {"base": 1.0, "tuned": 0.0, "drop": 1.0}
    assert data["fix"] == FIX
    assert len(data["drop_ci"]) == 2
    assert json.loads(json.dumps(base.to_dict()))["accuracy"] == 1.0


def test_capability_check_loads_both_models_by_reference() -> None:
    items = load_suite()
    register_model("rc-base", _model(items, name="rc-base"))
    register_model("rc-tuned", _model(items, wrong_in={"formatting"}, name="rc-tuned"))
    try:
        check = capability_check("rc-base", "rc-tuned")
    finally:
        unregister_model("rc-base")
        unregister_model("rc-tuned")
    assert (check.base_model, check.tuned_model) == ("rc-base", "rc-tuned")
    assert check.flagged
    assert max(check.by_category, key=lambda c: check.by_category[c].drop) == "formatting"


# -- a real transformers model --------------------------------------------------------------


def test_whole_suite_runs_on_a_real_tiny_model(tiny_llama) -> None:
    items = load_suite()
    score = score_suite(load_model(str(tiny_llama)), items)
    assert len(score.correct) == len(score.chosen) == len(items)
    assert all(0 <= c < len(item.choices) for c, item in zip(score.chosen, items))
    assert 0.0 <= score.accuracy <= 1.0
    assert set(score.by_category) == CATEGORIES
    assert score.seconds > 0
