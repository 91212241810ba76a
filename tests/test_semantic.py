import pytest

from rung.eval.metrics import score_predictions
from rung.eval.semantic import semantic_similarity


def test_paraphrase_scores_above_unrelated_and_identity_is_one():
    same = semantic_similarity("The invoice was paid twice.", "The invoice was paid twice.")
    paraphrase = semantic_similarity("The invoice was paid twice.", "We were charged two times for the bill.")
    unrelated = semantic_similarity("The invoice was paid twice.", "Penguins live in Antarctica.")
    assert same == pytest.approx(1.0, abs=1e-4)
    assert paraphrase > unrelated + 0.1
    assert 0.0 <= unrelated < paraphrase < same


def test_empty_answer_scores_zero_and_metric_is_registered():
    assert semantic_similarity("something", "   ") == 0.0
    score = score_predictions("semantic_similarity", ["a red car", "a red car"], ["a red car", ""])
    assert score.value == pytest.approx(0.5, abs=1e-4)


def test_unknown_tokens_match_only_the_same_text():
    """Every emoji is the one [UNK] token to MiniLM: a check mark and a cross read alike
    and scored 1.0."""
    assert semantic_similarity("Status: ✅", "Status: ✅") == pytest.approx(1.0, abs=1e-4)
    assert semantic_similarity("Status: ✅", "Status: ❌") < 0.9
    assert semantic_similarity("Status: ❌", "Status: ✅") < 0.9
