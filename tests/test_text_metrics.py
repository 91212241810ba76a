"""Per-example text metrics against values worked out by hand on small cases."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest

from rung.errors import ConfigError, DataError
from rung.eval.json_metrics import failure_kind, json_schema_metric
from rung.eval.metric_spec import MetricSpec
from rung.eval.text_metrics import TEXT_METRICS, corpus_bleu, corpus_chrf, exact_match_with
from rung.eval.custom_metrics import load_custom_metric


def score(name: str, expected: str, predicted: str) -> float:
    return TEXT_METRICS[name].per_example(expected, predicted)


def test_registry_shape():
    assert set(TEXT_METRICS) == {"exact_match", "exact_match_strict", "exact_match_squad",
                                 "answer_in_output",
                                 "rouge_l", "bleu", "chrf", "json_valid",
                                 "json_schema", "json_match", "semantic_similarity"}
    binary = {name for name, spec in TEXT_METRICS.items() if spec.binary}
    assert binary == {"exact_match", "exact_match_strict", "exact_match_squad", "json_valid",
                      "answer_in_output",
                      "json_schema", "json_match"}
    assert TEXT_METRICS["exact_match"].kinds == ("extraction", "generation")
    assert "generation" in TEXT_METRICS["rouge_l"].kinds and "extraction" in TEXT_METRICS["rouge_l"].kinds
    assert TEXT_METRICS["bleu"].kinds == TEXT_METRICS["chrf"].kinds == ("generation",)
    for name in ("json_valid", "json_schema", "json_match"):
        assert TEXT_METRICS[name].kinds == ("extraction",)
    with pytest.raises(ConfigError, match="json_schema_metric"):
        score("json_schema", "", "{}")  # the registry entry needs a schema


# --------------------------------------------------------------------------- exact match


def test_exact_match_default_lowercases_and_collapses_whitespace():
    assert score("exact_match", "Paris  France", " paris france\n") == 1.0
    assert score("exact_match", "Paris, France", "Paris France") == 0.0  # punctuation kept
    assert score("exact_match", "the Eiffel tower", "Eiffel Tower") == 0.0  # articles kept


def test_exact_match_options():
    case_sensitive = exact_match_with(lowercase=False).per_example
    assert case_sensitive("Paris", "paris") == 0.0 and case_sensitive("Paris", " Paris ") == 1.0
    no_punct = exact_match_with(strip_punctuation=True).per_example
    assert no_punct("Paris, France!", "paris france") == 1.0
    no_articles = exact_match_with(strip_articles=True).per_example
    assert no_articles("The Eiffel Tower", "eiffel tower") == 1.0
    assert no_articles("an apple", "apple") == 1.0
    assert no_articles("theatre", "atre") == 0.0  # only whole words are articles
    exact_ws = exact_match_with(collapse_whitespace=False).per_example
    assert exact_ws("a b", "a  b") == 0.0 and exact_ws("a b", "A B") == 1.0


def test_exact_match_squad_normalisation():
    squad = exact_match_with(lowercase=True, strip_punctuation=True, collapse_whitespace=True,
                             strip_articles=True)
    assert squad.binary and squad.name == "exact_match"
    assert squad.per_example("The  Eiffel Tower.", "eiffel tower") == 1.0
    assert squad.per_example("A cat's toy!", "cats toy") == 1.0
    assert squad.per_example("The Eiffel Tower", "Eiffel Towers") == 0.0


# --------------------------------------------------------------------------- ROUGE-L


def test_rouge_l_hand_worked():
    # LCS("the cat sat on the mat", "the cat on the mat") = "the cat on the mat" = 5 tokens
    # P = 5/5, R = 5/6, F = 2PR/(P+R) = (10/6)/(11/6) = 10/11
    assert score("rouge_l", "the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)
    # LCS("a b c d", "b a d c") has 2 tokens (e.g. "a c"): P = R = F = 2/4
    assert score("rouge_l", "a b c d", "b a d c") == pytest.approx(0.5)
    assert score("rouge_l", "The Cat", "the cat") == 1.0  # the default tokenizer lowercases
    assert score("rouge_l", "red green", "blue yellow") == 0.0


# --------------------------------------------------------------------------- BLEU and chrF


def test_bleu_identical_and_disjoint():
    assert score("bleu", "the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert score("bleu", "yes", "yes") == 1.0  # effective order: a 1-word answer can score 1
    assert score("bleu", "the cat sat", "dogs run fast") == 0.0


def test_bleu_hand_worked():
    # ref "a b c d e", hyp "a b c d x", equal lengths so brevity penalty 1.
    # matches / n-grams: 1-grams 4/5, 2-grams 3/4 (ab bc cd), 3-grams 2/3, 4-grams 1/2
    expected = (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** (1 / 4)
    assert score("bleu", "a b c d e", "a b c d x") == pytest.approx(expected)
    # hyp "a b c d" against ref "a b c d e f": every precision 1, BP = exp(1 - 6/4)
    assert score("bleu", "a b c d e f", "a b c d") == pytest.approx(math.exp(-0.5))


def test_corpus_bleu_pools_counts():
    refs = ["a b c d e", "a b c d"]
    hyps = ["a b c d x", "a b c d"]
    # pooled matches / n-grams: 1-grams (4+4)/(5+4), 2-grams (3+3)/(4+3), 3-grams (2+2)/(3+2),
    # 4-grams (1+1)/(2+1); lengths 9 and 9, BP 1
    expected = (8 / 9 * 6 / 7 * 4 / 5 * 2 / 3) ** (1 / 4)
    assert corpus_bleu(refs, hyps) == pytest.approx(expected)
    per_example_mean = (score("bleu", refs[0], hyps[0]) + score("bleu", refs[1], hyps[1])) / 2
    assert per_example_mean != pytest.approx(expected)
    assert corpus_bleu(refs, refs) == 1.0
    assert math.isnan(corpus_bleu([], []))
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])


def test_chrf_identical_disjoint_and_hand_worked():
    assert score("chrf", "the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert score("chrf", "abc", "xyz") == 0.0
    # ref "abc", hyp "ab" (character n-grams, beta 2). Orders where both sides have n-grams:
    # 1: P = 2/2, R = 2/3; 2: P = 1/1 ("ab"), R = 1/2 ("ab", "bc").
    # sacrebleu averages P and R over those orders: P = 1, R = 7/12,
    # F2 = 5PR / (4P + R) = (35/12) / (55/12) = 7/11
    assert score("chrf", "abc", "ab") == pytest.approx(7 / 11)
    assert corpus_chrf(["abc"], ["ab"]) == pytest.approx(7 / 11)
    assert corpus_chrf(["abc", "xyz"], ["abc", "xyz"]) == 1.0


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("answer", [
    '{"a": 1}',
    '  \n[1, 2]\n ',
    '"just a string"',
    '```json\n{"a": 1}\n```',
    '```JSON\n{"a": 1}\n```',
    '```\n{"a": 1}\n```',
    '\n```json\n{"a": [1, 2]}\n```\n',
    '```json {"a": 1} ```',
])
def test_json_valid_accepts(answer):
    assert score("json_valid", "", answer) == 1.0


@pytest.mark.parametrize("answer", [
    '{"a": 1} and that is all',
    'Here it is: {"a": 1}',
    '{"a": 1}}',
    '{"a": 1,}',
    "{'a': 1}",
    '```json\n{"a": 1}\n```\nHope this helps!',
    '```json\n{"a": 1}',
    "NaN",
    '{"a": Infinity}',
    "",
])
def test_json_valid_rejects(answer):
    assert score("json_valid", "", answer) == 0.0


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
    "additionalProperties": False,
}


def test_json_schema_pass_and_fail():
    spec = json_schema_metric(SCHEMA)
    assert isinstance(spec, MetricSpec) and spec.binary and spec.name == "json_schema"
    ok = spec.per_example
    assert ok("", '{"name": "Ada", "age": 36}') == 1.0
    assert ok("", '```json\n{"name": "Ada"}\n```') == 1.0
    assert ok("", '{"age": 36}') == 0.0  # required key missing
    assert ok("", '{"name": "Ada", "age": -1}') == 0.0  # below minimum
    assert ok("", '{"name": "Ada", "email": "a@b"}') == 0.0  # extra key
    assert ok("", '{"name": "Ada"') == 0.0  # not JSON at all


def test_json_schema_is_draft_2020_12():
    # prefixItems exists only from Draft 2020-12 on
    spec = json_schema_metric({"type": "array", "prefixItems": [{"type": "string"}], "items": False})
    assert spec.per_example("", '["x"]') == 1.0
    assert spec.per_example("", '["x", 1]') == 0.0


def test_bad_schema_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid") as info:
        json_schema_metric({"type": "objekt"})
    assert info.value.fix and "2020-12" in info.value.fix
    with pytest.raises(ConfigError):
        json_schema_metric({"properties": {"a": {"minimum": "zero"}}})


def test_unresolvable_ref_is_a_config_error():
    spec = json_schema_metric({"$ref": "https://example.invalid/schema.json"})
    with pytest.raises(ConfigError, match=r"\$ref"):
        spec.per_example("", "{}")


def test_json_match():
    assert score("json_match", '{"a": 1, "b": [1, 2]}', '{"b": [1, 2], "a": 1}') == 1.0
    assert score("json_match", '{"a": 1}', '```json\n{ "a" : 1.0 }\n```') == 1.0
    assert score("json_match", '{"a": {"x": 1, "y": 2}}', '{"a": {"y": 2, "x": 1}}') == 1.0
    assert score("json_match", '{"b": [1, 2]}', '{"b": [2, 1]}') == 0.0  # list order counts
    assert score("json_match", '{"a": 1}', '{"a": 1, "b": 2}') == 0.0
    assert score("json_match", '{"a": true}', '{"a": 1}') == 0.0  # true is not 1
    assert score("json_match", '{"a": 0}', '{"a": false}') == 0.0
    assert score("json_match", '{"a": "1"}', '{"a": 1}') == 0.0
    assert score("json_match", '{"a": 1}', "not json") == 0.0
    with pytest.raises(DataError):
        score("json_match", "not json", '{"a": 1}')


# --------------------------------------------------------------------------- custom metrics

METRICS_PY = textwrap.dedent('''\
    """Custom metrics for tests."""


    def overlap(expected, predicted):
        """Share of expected words present in the answer."""
        want = set(expected.split())
        return len(want & set(predicted.split())) / max(len(want), 1)


    def same(expected, predicted):
        return expected == predicted


    same.binary = True

    not_a_function = 3


    def returns_text(expected, predicted):
        return "high"


    def returns_too_much(expected, predicted):
        return 5.0


    def takes_one(expected):
        return 1.0
''')


@pytest.fixture(autouse=True)
def forget_test_modules():
    """Each test imports its own copy of the modules it writes, not one a test before left."""
    yield
    for name in ("my_metrics", "broken", "syntax"):
        sys.modules.pop(name, None)


@pytest.fixture
def metrics_file(tmp_path):
    (tmp_path / "metrics_dir").mkdir()
    path = tmp_path / "metrics_dir" / "my_metrics.py"
    path.write_text(METRICS_PY)
    return path


def test_custom_metric_from_file(metrics_file, tmp_path):
    spec = load_custom_metric("metrics_dir/my_metrics.py:overlap", base_dir=tmp_path)
    assert spec.per_example("a b c d", "a b x") == pytest.approx(0.5)
    assert spec.kinds == ("classification", "extraction", "generation")
    assert spec.binary is False
    assert spec.description == "Share of expected words present in the answer."
    absolute = load_custom_metric(f"{metrics_file}:same")
    assert absolute.binary is True
    assert absolute.per_example("x", "x") == 1.0 and absolute.per_example("x", "y") == 0.0


def test_custom_metric_from_module(metrics_file, monkeypatch):
    monkeypatch.syspath_prepend(str(metrics_file.parent))
    spec = load_custom_metric("my_metrics:same")
    assert spec.binary is True
    assert spec.per_example("B", "B") == 1.0 and isinstance(spec.per_example("B", "B"), float)
    assert load_custom_metric("my_metrics:overlap").per_example("a b", "a") == pytest.approx(0.5)


@pytest.mark.parametrize("ref, message", [
    ("my_metrics", "module:function"),
    ("my_metrics:", "module:function"),
    ("no_such_module_xyz:f", "not found"),
    ("metrics_dir/missing.py:f", "not found"),
    ("my_metrics:nope", "no function 'nope'"),
    ("metrics_dir/my_metrics.py:nope", "no function 'nope'"),
    ("my_metrics:not_a_function", "not a function"),
    ("my_metrics:returns_text", "not a number"),
    ("my_metrics:returns_too_much", "outside"),
    ("my_metrics:takes_one", "probed"),
])
def test_custom_metric_errors(metrics_file, tmp_path, monkeypatch, ref, message):
    monkeypatch.syspath_prepend(str(metrics_file.parent))
    with pytest.raises(ConfigError, match=message) as info:
        load_custom_metric(ref, base_dir=tmp_path)
    assert ref in str(info.value) and info.value.fix


def test_custom_metric_broken_module(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="no_such_dependency_xyz") as info:
        load_custom_metric("broken:f")
    assert "install" in info.value.fix
    with pytest.raises(ConfigError, match="SyntaxError"):
        load_custom_metric("syntax.py:f", base_dir=tmp_path)


def test_custom_metric_bad_value_at_scoring_time(tmp_path):
    (tmp_path / "m.py").write_text("def f(e, p):\n    return 1.0 if e in ('a', '') else -2\n")
    spec = load_custom_metric("m.py:f", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="outside"):
        spec.per_example("b", "b")


# --------------------------------------------------------------------------- failure kinds


def test_failure_kind_classification():
    labels = ["BILLING", "BUG"]
    assert failure_kind("classification", "BUG", labels, None) is None
    assert failure_kind("classification", " BUG\n", labels, None) is None  # stripped
    assert failure_kind("classification", "bug", labels, None) == "format"  # case matters
    assert failure_kind("classification", "BUG.", labels, None) == "format"
    assert failure_kind("classification", "BUG BILLING", labels, None) == "format"
    assert failure_kind("classification", "", labels, None) == "format"


def test_failure_kind_extraction():
    assert failure_kind("extraction", '{"name": "x"}', [], None) is None
    assert failure_kind("extraction", '```json\n{"name": "x"}\n```', [], None) is None
    assert failure_kind("extraction", "name: x", [], None) == "format"
    assert failure_kind("extraction", '{"name": "x"}', [], SCHEMA) is None
    assert failure_kind("extraction", '{"name": 3}', [], SCHEMA) == "format"
    assert failure_kind("extraction", '{"age": 3}', [], SCHEMA) == "format"


def test_failure_kind_generation_and_unknown():
    assert failure_kind("generation", "", [], None) is None
    assert failure_kind("generation", "anything at all", [], None) is None
    with pytest.raises(ConfigError, match="unknown task kind"):
        failure_kind("summarisation", "x", [], None)


def test_named_exact_match_settings():
    assert score("exact_match_strict", "Paris", "paris") == 0.0
    assert score("exact_match", "Paris", "paris") == 1.0
    assert score("exact_match", "The Paris.", "paris") == 0.0
    assert score("exact_match_squad", "The Paris.", "paris") == 1.0


def test_answer_in_output_needs_the_whole_answer_as_words() -> None:
    from rung.eval.text_metrics import answer_in_output

    assert answer_in_output("120 days", "The answer is: 120 days.") == 1.0
    assert answer_in_output("The Forge plan", "forge plan, from the pricing page") == 1.0
    assert answer_in_output("12", "It holds 120 stops") == 0.0  # not a whole-word match
    assert answer_in_output("$49", "It costs $49 a month") == 1.0
    assert answer_in_output("", "anything") == 0.0
