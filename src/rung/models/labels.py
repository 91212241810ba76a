"""Reading a label out of a remote model's reply. A server that returns log-probabilities
scores each label by the first answer token that begins it; one that does not has its answer
parsed for the one label it names (with the label rule added to the prompt). rung.models.hf
scores labels exactly instead: it has the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from rung.data.example import Message
from rung.models.base import ChoiceScores

FLOOR = -1e9  # a label the model gave no probability at all (finite: the cache stores JSON)


@dataclass(frozen=True)
class Reply:
    text: str
    tokens_in: int
    tokens_out: int
    # the first answer token's alternatives [(token, logprob), ...], most likely first
    alternatives: list[tuple[str, float]]


def parsed_scores(reply: Reply, labels: Sequence[str]) -> ChoiceScores:
    """Scores from the answer's words: the label it gives, or none (then the answer itself
    is the prediction, a format failure)."""
    hit = parse_label(reply.text, labels)
    scores = [0.0 if i == hit else FLOOR for i in range(len(labels))]
    return ChoiceScores(scores, reply.tokens_in, [1] * len(labels),
                        answer=None if hit is not None else reply.text)


def alternatives(logprobs: Any) -> list[tuple[str, float]]:
    """The first position's top alternatives, in OpenAI's chat shape (content[0].top_logprobs)
    or the legacy completions shape some servers return (top_logprobs[0] as a dict)."""
    if logprobs is None:
        return []
    content = getattr(logprobs, "content", None)
    if content:
        first = content[0]
        pairs = [(t.token, t.logprob) for t in (first.top_logprobs or [])]
        return pairs or [(first.token, first.logprob)]
    legacy = getattr(logprobs, "top_logprobs", None)
    if legacy is None and isinstance(logprobs, dict):
        legacy = logprobs.get("top_logprobs")
    if legacy and isinstance(legacy[0], dict):
        return sorted(legacy[0].items(), key=lambda kv: -kv[1])
    return []


def label_scores(reply: Reply, labels: Sequence[str]) -> ChoiceScores:
    """A reply with log-probabilities as label scores: the first token's alternatives where
    the answer starts with a label (label_logprobs), else the answer's words. A reply that
    starts with no label and names none is a format failure with its own text as the
    prediction; read off the alternatives, every label had the floor and the first label won,
    so a rambling non-answer counted as a wrong label. And "Label: BUG" read off them answered
    HOWTO, because "HOW" was a less unlikely rival of "Label" than "B": the rivals of a
    preamble say nothing about the labels."""
    if not _starts_a_label(reply, labels):
        return parsed_scores(reply, labels)
    return ChoiceScores(label_logprobs(reply, labels), reply.tokens_in, [1] * len(labels))


def _starts_a_label(reply: Reply, labels: Sequence[str]) -> bool:
    greedy = max(reply.alternatives, key=lambda alt: alt[1])[0]
    return any(_begins(greedy, label) for label in labels)


def label_logprobs(reply: Reply, labels: Sequence[str]) -> list[float]:
    """Each label's log-probability as the model's first answer token: the most likely listed
    token that begins the label (case and leading space ignored). Labels sharing that token
    are told apart by the greedy answer; a label no listed token begins gets a floor below
    every listed one. Only for an answer that starts with a label: label_scores decides."""
    floor = min(lp for _, lp in reply.alternatives) - 1.0
    scores = []
    for label in labels:
        begins = [lp for token, lp in reply.alternatives if _begins(token, label)]
        scores.append(max(begins, default=floor))
    said = parse_label(reply.text, labels)
    if said is not None:
        for i, score in enumerate(scores):
            if i != said and score == scores[said]:
                scores[i] = score - 1e-6
    return scores


def _begins(token: str, label: str) -> bool:
    """Whether an answer starting with `token` starts with `label` (case and leading space
    ignored). A first token may run past the label into punctuation ("BUG." for BUG): it
    begins the label when what is left of it, punctuation aside, does. A token of markup or
    space alone ("**", " ") begins nothing: it says nothing of which label follows."""
    piece = _bare(token)
    return bool(piece) and (label.strip().lower().startswith(token.strip().lower())
                            or _bare(label) == piece)


_EDGES = re.compile(r"^[\s\"'`*_.:\-\[\](){}]+|[\s\"'`*_.:!\-\[\](){}]+$")


def _bare(text: str) -> str:
    return _EDGES.sub("", text.strip()).lower()


def parse_label(text: str, labels: Sequence[str]) -> int | None:
    """The label an answer gives: the whole answer (quotes, markup and punctuation aside on
    both, any case), or the one label it names as a word; None when it names none or
    several. A hyphen joins words ("non-toxic" does not name "toxic"), and a label found
    only inside a longer label the answer names ("positive" in "not positive") is that
    longer label's."""
    answer = _bare(text)
    bare = [_bare(label) for label in labels]
    if answer in bare:
        return bare.index(answer)
    lowered = [label.strip().lower() for label in labels]  # as written: "(a)", not "a"
    spans = {i: [m.span() for m in re.finditer(rf"(?<![\w-]){re.escape(label)}(?![\w-])",
                                               text.lower())]
             for i, label in enumerate(lowered) if label}
    named = [i for i, found in spans.items()
             if any(not _inside(span, spans, i, lowered) for span in found)]
    return named[0] if len(named) == 1 else None


def _inside(span: tuple[int, int], spans: dict[int, list[tuple[int, int]]], label: int,
            bare: list[str]) -> bool:
    """Whether this match of a label lies within a match of a longer label."""
    return any(len(bare[other]) > len(bare[label]) and start <= span[0] and span[1] <= end
               for other, found in spans.items() if other != label for start, end in found)


def with_label_rule(prompt: Sequence[Message], labels: Sequence[str]) -> list[Message]:
    """The prompt with the answer format spelled out, for servers whose labels are parsed."""
    rule = f"Answer with exactly one of these labels and nothing else: {', '.join(labels)}."
    turns = list(prompt)
    if turns and turns[0].role == "system":
        return [Message("system", f"{turns[0].content}\n\n{rule}")] + turns[1:]
    return [Message("system", rule)] + turns


def answer_budget(labels: Sequence[str]) -> int:
    """Tokens enough to write the longest label (two characters a token, at worst) and stop."""
    return min(64, max(4, max(len(label) for label in labels) // 2 + 3))
