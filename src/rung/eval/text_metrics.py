"""Per-example text metrics for extraction and generation tasks, and the registry by name.

Exact match (with SQuAD's normalisation options), answer-in-output, ROUGE-L, BLEU and chrF
score an answer as text; the JSON metrics are in json_metrics.py, what a metric is in
metric_spec.py, and custom ones in custom_metrics.py. `TEXT_METRICS` names them all, so a
task's `metric = "..."` is looked up in one place.

The heavy libraries (sacrebleu, rouge-score) are imported on first use, so importing this
module costs nothing for a classification task. Nothing here reaches the network: ROUGE-L uses
rouge-score's default tokenizer without stemming (no nltk data) and BLEU uses sacrebleu's
built-in 13a tokenizer.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any, Sequence

from rung.eval.json_metrics import json_match, json_schema_conforms, json_valid
from rung.eval.metric_spec import MetricSpec


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

