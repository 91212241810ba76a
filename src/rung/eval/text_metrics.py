"""Per-example metrics for extraction and generation tasks (custom ones: custom_metrics.py).

Every metric scores one example, (expected, predicted) -> float in [0, 1], so the evaluator can
bootstrap the mean over examples and run paired tests between rungs the same way it does for
accuracy. `MetricSpec.binary` says when the values are only ever 0 or 1 (exact match, JSON
validity), where a McNemar test applies instead of a paired bootstrap.

The heavy libraries (sacrebleu, rouge-score, jsonschema) are imported on first use, so importing
this module costs nothing for a classification task. Nothing here reaches the network: ROUGE-L
uses rouge-score's default tokenizer without stemming (no nltk data), BLEU uses sacrebleu's
built-in 13a tokenizer, and JSON Schema `$ref`s are resolved only within the schema itself.
"""

from __future__ import annotations

import functools
import json
import re
import string
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from rung.errors import ConfigError, DataError

KINDS = ("classification", "extraction", "generation")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kinds: tuple[str, ...]
    per_example: Callable[[str, str], float]
    description: str
    binary: bool = False
    # The score is a statistic of the whole set (macro-F1, from the confusion counts), not a
    # mean of `per_example`, which is then only the right-or-wrong view of an example: the
    # paired test swaps whole answers (metrics.paired_test), and the stop rule's power is read
    # off the interval rather than a share of examples.
    corpus_level: bool = False


# --------------------------------------------------------------------------- exact match

_PUNCTUATION = re.compile("[" + re.escape(string.punctuation) + "]")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def normalise_answer(
    text: str,
    *,
    lowercase: bool = True,
    strip_punctuation: bool = False,
    collapse_whitespace: bool = True,
    strip_articles: bool = False,
) -> str:
    """SQuAD's `normalize_answer` when every option is on, applied in its order: lowercase,
    drop ASCII punctuation, drop the English articles a/an/the, collapse whitespace runs to one
    space and strip the ends. With `collapse_whitespace` off, whitespace is compared as is."""
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        text = _PUNCTUATION.sub("", text)
    if strip_articles:
        text = _ARTICLES.sub(" ", text)
    if collapse_whitespace:
        text = _WHITESPACE.sub(" ", text).strip()
    return text


def exact_match(
    expected: str,
    predicted: str,
    *,
    lowercase: bool = True,
    strip_punctuation: bool = False,
    collapse_whitespace: bool = True,
    strip_articles: bool = False,
) -> float:
    """1.0 when both strings are equal after `normalise_answer` with these options, else 0.0."""
    options = dict(lowercase=lowercase, strip_punctuation=strip_punctuation,
                   collapse_whitespace=collapse_whitespace, strip_articles=strip_articles)
    return float(normalise_answer(expected, **options) == normalise_answer(predicted, **options))


def exact_match_with(
    lowercase: bool = True,
    strip_punctuation: bool = False,
    collapse_whitespace: bool = True,
    strip_articles: bool = False,
    name: str = "exact_match",
) -> MetricSpec:
    """The exact_match metric with these normalisation options; all on is SQuAD's exact match.

    The registry offers three settings by name: `exact_match` (case and whitespace),
    `exact_match_strict` (none: byte-for-byte after trimming nothing) and `exact_match_squad`
    (all four).
    """
    per_example = functools.partial(
        exact_match, lowercase=lowercase, strip_punctuation=strip_punctuation,
        collapse_whitespace=collapse_whitespace, strip_articles=strip_articles,
    )
    on = [name for name, flag in (("lowercase", lowercase), ("strip punctuation", strip_punctuation),
                                  ("collapse whitespace", collapse_whitespace),
                                  ("strip articles", strip_articles)) if flag]
    return MetricSpec(
        name=name,
        kinds=("extraction", "generation"),
        per_example=per_example,
        description="1 if the answer equals the expected one after normalising ("
        + (", ".join(on) or "none") + "), else 0",
        binary=True,
    )


def answer_in_output(expected: str, predicted: str) -> float:
    """1.0 when the SQuAD-normalised expected answer occurs in the normalised output as whole
    words, else 0.0.

    The open-domain QA convention (DPR's "has answer", the accuracy of "Lost in the Middle"):
    it scores whether the model found the fact, not whether it stopped after it. A small model
    that says "The answer is: 120 days." has the knowledge and only lacks the format, which
    exact match reports separately.
    """
    needle = normalise_answer(expected, strip_punctuation=True, strip_articles=True)
    hay = normalise_answer(predicted, strip_punctuation=True, strip_articles=True)
    return float(bool(needle) and f" {needle} " in f" {hay} ")


# --------------------------------------------------------------------------- ROUGE-L, BLEU, chrF


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    # use_stemmer=False: the Porter stemmer needs no nltk data either, but stemming is an
    # option we do not expose. rougeL (not rougeLsum) never calls nltk's sentence splitter,
    # which would need the punkt data download.
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(expected: str, predicted: str) -> float:
    """ROUGE-L F-measure: F1 of the longest common subsequence of tokens.

    rouge-score's default tokenizer lowercases and keeps only ASCII letters and digits, so text
    in other scripts (accented letters are cut at the accent, CJK or Cyrillic vanish entirely)
    scores 0 even when identical; use chrF for such text.
    """
    return _clip(_rouge_scorer().score(expected, predicted)["rougeL"].fmeasure)


@functools.cache
def _sentence_bleu() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


@functools.cache
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def bleu(expected: str, predicted: str) -> float:
    """sacrebleu sentence BLEU / 100, with effective order (orders longer than the sentence
    are left out rather than zeroing the score) and sacrebleu's default exp smoothing.

    Sentence BLEU is a rough per-example score; BLEU is defined over a corpus (n-gram counts
    pooled over all examples), so report `corpus_bleu` next to its mean.
    """
    return _clip(_sentence_bleu().sentence_score(predicted, [expected]).score / 100)


def chrf(expected: str, predicted: str) -> float:
    """sacrebleu sentence chrF (character 1-6-grams, beta 2) / 100."""
    return _clip(_chrf().sentence_score(predicted, [expected]).score / 100)


def _check_corpus(expected: Sequence[str], predicted: Sequence[str]) -> None:
    if len(expected) != len(predicted):
        raise ValueError(f"{len(expected)} expected answers but {len(predicted)} predictions")


def corpus_bleu(expected: Sequence[str], predicted: Sequence[str]) -> float:
    """Corpus BLEU / 100 (sacrebleu defaults, one reference per example).

    BLEU is properly a corpus metric: n-gram matches and lengths are pooled over all examples
    before the precisions and the brevity penalty are taken, so this is not the mean of the
    per-example `bleu` scores. NaN for an empty corpus.
    """
    _check_corpus(expected, predicted)
    if not expected:
        return float("nan")
    import sacrebleu

    return _clip(sacrebleu.corpus_bleu(list(predicted), [list(expected)]).score / 100)


def corpus_chrf(expected: Sequence[str], predicted: Sequence[str]) -> float:
    """Corpus chrF / 100 (character n-gram statistics pooled over all examples). NaN for an
    empty corpus."""
    _check_corpus(expected, predicted)
    if not expected:
        return float("nan")
    import sacrebleu

    return _clip(sacrebleu.corpus_chrf(list(predicted), [list(expected)]).score / 100)


def _clip(value: float) -> float:
    # sacrebleu returns 100.00000000000004 for identical sentences
    return min(1.0, max(0.0, float(value)))


# --------------------------------------------------------------------------- JSON

_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.DOTALL | re.IGNORECASE)
_NOT_PARSED = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_answer(text: str) -> Any:
    """The JSON value in a model's answer, or `_NOT_PARSED`.

    Accepted: a JSON text with whitespace around it, or the whole answer being one fenced block
    (```json ... ``` or ``` ... ```), which small models often emit. Not accepted: prose before
    or after the JSON or the fence, trailing garbage, and NaN/Infinity (Python's json module
    takes them, but they are not JSON and strict parsers downstream reject them).
    """
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError is a ValueError
        return _NOT_PARSED


def json_valid(expected: str, predicted: str) -> float:
    """1.0 if the answer parses as JSON (surrounding whitespace and a ```json fenced block are
    allowed, see `parse_json_answer`), else 0.0. `expected` is not used."""
    return float(parse_json_answer(predicted) is not _NOT_PARSED)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of parsed JSON values: key order is irrelevant, list order is not, and true/false
    are not the numbers 1/0 (Python's == says True == 1). 1 and 1.0 are the same number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return a == b


def json_match(expected: str, predicted: str) -> float:
    """1.0 when the answer's JSON equals the expected JSON as parsed values (object key order
    and whitespace irrelevant, list order relevant), else 0.0. An answer that does not parse
    scores 0; an expected answer that does not parse is a data error."""
    want = parse_json_answer(expected)
    if want is _NOT_PARSED:
        raise DataError(
            f"expected answer is not JSON: {expected[:80]!r}",
            fix="make every expected answer of an extraction task scored with json_match valid JSON",
        )
    got = parse_json_answer(predicted)
    return float(got is not _NOT_PARSED and _json_equal(want, got))


@functools.lru_cache(maxsize=32)
def _validator_for(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        raise ConfigError(
            f"the JSON Schema is not valid: {err.message} (at {err.json_path})",
            fix="correct the schema so it is a valid JSON Schema (Draft 2020-12); "
            "check it at that location against https://json-schema.org/draft/2020-12/schema",
        ) from None
    return Draft202012Validator(schema)


def _validator(schema: dict) -> Any:
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"the JSON Schema cannot be written as JSON: {err}",
            fix="use only JSON values (objects, arrays, strings, numbers, true/false/null) in the schema",
        ) from None
    return _validator_for(key)


def _conforms(schema: dict, value: Any) -> bool:
    from referencing.exceptions import Unresolvable

    validator = _validator(schema)
    try:
        return validator.is_valid(value)
    except Unresolvable as err:
        raise ConfigError(
            f"the JSON Schema has a $ref that cannot be resolved: {err}",
            fix="point every $ref inside the schema (e.g. #/$defs/name); rung fetches no remote schemas",
        ) from None


def schema_problem(schema: dict, value: Any) -> str | None:
    """Where and how `value` first breaks `schema` ("$.age: 'x' is not of type 'integer'"),
    or None when it conforms: what the audit tells a person to correct."""
    from referencing.exceptions import Unresolvable

    try:
        error = next(iter(_validator(schema).iter_errors(value)), None)
    except Unresolvable as err:
        raise ConfigError(
            f"the JSON Schema has a $ref that cannot be resolved: {err}",
            fix="point every $ref inside the schema (e.g. #/$defs/name); rung fetches no remote schemas",
        ) from None
    return None if error is None else f"{error.json_path}: {error.message}"


def json_schema_conforms(expected: str, predicted: str, *, schema: dict | None = None) -> float:
    """1.0 if the answer is JSON (as `json_valid`) and conforms to `schema`, else 0.0."""
    if schema is None:
        raise ConfigError(
            "the json_schema metric needs a JSON Schema",
            fix="give the task a schema, and build the metric with json_schema_metric(schema)",
        )
    value = parse_json_answer(predicted)
    return float(value is not _NOT_PARSED and _conforms(schema, value))


def json_schema_metric(schema: dict) -> MetricSpec:
    """The json_schema metric for this schema (Draft 2020-12, checked now: a bad schema raises
    ConfigError)."""
    _validator(schema)
    return MetricSpec(
        name="json_schema",
        kinds=("extraction",),
        per_example=functools.partial(json_schema_conforms, schema=schema),
        description="1 if the answer is JSON that conforms to the task's JSON Schema, else 0",
        binary=True,
    )


# --------------------------------------------------------------------------- registry


def _semantic_similarity(expected: str, predicted: str) -> float:
    from rung.eval.semantic import semantic_similarity  # torch only when the metric is used

    return semantic_similarity(expected, predicted)


TEXT_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        exact_match_with(),
        exact_match_with(lowercase=False, collapse_whitespace=False, name="exact_match_strict"),
        exact_match_with(strip_punctuation=True, strip_articles=True, name="exact_match_squad"),
        MetricSpec("answer_in_output", ("extraction", "generation"), answer_in_output,
                   "1 if the expected answer occurs in the output (SQuAD-normalised, whole "
                   "words), else 0", binary=True),
        MetricSpec("rouge_l", ("generation", "extraction"), rouge_l,
                   "ROUGE-L F-measure (longest common token subsequence)"),
        MetricSpec("bleu", ("generation",), bleu,
                   "sentence BLEU / 100 (see corpus_bleu for the corpus score)"),
        MetricSpec("chrf", ("generation",), chrf, "sentence chrF / 100 (character n-grams)"),
        MetricSpec("json_valid", ("extraction",), json_valid,
                   "1 if the answer parses as JSON (a ```json fence is allowed), else 0", binary=True),
        # Needs a schema: the evaluator builds the usable spec with json_schema_metric(schema);
        # this entry's per_example raises ConfigError unless called with schema=...
        MetricSpec("json_schema", ("extraction",), json_schema_conforms,
                   "1 if the answer is JSON that conforms to the task's JSON Schema, else 0",
                   binary=True),
        MetricSpec("json_match", ("extraction",), json_match,
                   "1 if the answer's JSON equals the expected JSON (key order ignored), else 0",
                   binary=True),
        MetricSpec("semantic_similarity", ("generation", "extraction"), _semantic_similarity,
                   "BERTScore-style F1 over all-MiniLM-L6-v2 token embeddings (packaged, offline)"),
    )
}


def failure_kind(kind: str, predicted: str, labels: Sequence[str], schema: dict | None) -> str | None:
    """"format" when the answer breaks the task's output format, else None.

    classification: the answer, stripped, is not exactly one of `labels`.
    extraction: the answer is not JSON (as `json_valid`), or breaks `schema` when one is given.
    generation: there is no format to break. Wrong but well-formed answers are the caller's call.
    """
    if kind == "classification":
        return None if predicted.strip() in set(labels) else "format"
    if kind == "extraction":
        value = parse_json_answer(predicted)
        if value is _NOT_PARSED:
            return "format"
        if schema is not None and not _conforms(schema, value):
            return "format"
        return None
    if kind == "generation":
        return None
    raise ConfigError(f"unknown task kind {kind!r}", fix=f"use one of: {', '.join(KINDS)}")
