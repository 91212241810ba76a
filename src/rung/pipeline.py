"""A Pipeline is exactly what would be shipped: prompt, demonstrations, model.

The evaluator, the store and (later) the server all take a Pipeline, so what is measured is
what is served. Rungs differ only in how they build one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from rung.data.example import Example, Message
from rung.models import load_model
from rung.models.base import Model
from rung.models.labels import FLOOR
from rung.prompts import DEMONSTRATION_VARIANTS, VARIANTS

if TYPE_CHECKING:
    from rung.models.cache import ResponseCache
    from rung.rag.retrieval import Hit


def nearest_examples(pool: Sequence[Example], texts: list[str], k: int) -> list[list[Example]]:
    """Each text's k most similar pool examples by MiniLM cosine, the most similar last (next
    to the input); ties go to the earlier pool example, so the choice is deterministic."""
    from rung.eval.semantic import sentence_vectors

    if not pool or not texts:
        return [[] for _ in texts]
    similarity = sentence_vectors(texts) @ sentence_vectors([e.input for e in pool]).T
    k = min(k, len(pool))
    picked = []
    for row in similarity:
        order = np.lexsort((np.arange(len(row)), -row))[:k]  # best first, ties by index
        picked.append([pool[i] for i in order[::-1]])
    return picked


def uncalibrated(pipeline: "Pipeline") -> "Pipeline":
    """The pipeline without contextual calibration: what a rung builds on when it changes
    the model or the prompt, since the content-free probabilities belong to the old one."""
    details = {k: v for k, v in pipeline.details.items() if k != "calibrated"}
    return replace(pipeline, calibration=None, details=details)


def with_passages(question: str, hits: Sequence["Hit"]) -> str:
    """A question as the rag rung asks it: its retrieved passages first, then the question."""
    if not hits:
        return question
    return (context_block(hits) + "\n\nAnswer from the documentation above only."
            "\n\nQuestion: " + question)


def context_block(hits: Sequence["Hit"]) -> str:
    """Retrieved chunks as numbered, sourced passages the answer can be grounded in."""
    parts = ["Documentation:"]
    for number, hit in enumerate(hits, 1):
        parts.append(f"[{number}] {hit.chunk.citation}\n{hit.chunk.text.strip()}")
    return "\n\n".join(parts)


@dataclass(frozen=True)
class Output:
    text: str
    tokens_in: int
    tokens_out: int
    # classification only: each label's log-likelihood and token count, in label order
    label_logprobs: tuple[float, ...] = ()
    label_tokens: tuple[int, ...] = ()
    # retrieval only: the chunks the prompt carried ("docs/pricing.md#3"), best first, and
    # the text they held (for the grounding check)
    sources: tuple[str, ...] = ()
    context: str = ""
    # the model's request failed (a remote server): scored wrong; `rung serve` says so
    error: bool = False

    def loss(self, labels: Sequence[str], expected: str) -> float | None:
        """Per-token negative log-likelihood of the expected label: the validation loss a
        fine-tune would report, measured the same way for every rung. None where the scores
        are no probabilities: a label read from a remote model's words scores 0 or FLOOR,
        and one wrong answer would add 1e9 to the mean."""
        if not self.label_logprobs or expected not in labels \
                or min(self.label_logprobs) <= FLOOR:
            return None
        i = list(labels).index(expected)
        return -self.label_logprobs[i] / self.label_tokens[i]


@dataclass
class Pipeline:
    rung: str
    kind: str
    model: str  # a model reference as written in rung.toml
    instruction: str
    variant: str = "instruction"
    labels: list[str] = field(default_factory=list)
    demonstrations: list[Example] = field(default_factory=list)
    max_new_tokens: int = 64
    base_dir: str | None = None  # where relative model paths are resolved
    details: dict[str, Any] = field(default_factory=dict)  # e.g. {"k": 10}
    # retrieval: {"corpus": "docs", "index": ".rung/index.db", "method": "hybrid", "k": 3}
    retrieval: dict[str, Any] | None = None
    # similar-example demonstrations (DSPy's KNNFewShot): each input is shown its `nearest`
    # most similar examples of `pool` by MiniLM cosine, the most similar last; 0: the fixed
    # `demonstrations` go before every input
    nearest: int = 0
    pool: list[Example] = field(default_factory=list)
    # contextual calibration (Zhao et al., 2021): log of each label's mean probability after
    # content-free inputs ("N/A", "", "[MASK]"), divided out before the label is picked
    calibration: list[float] | None = None
    # rung 0: a scikit-learn classifier (the folder `model` names) answers, no LLM:
    # {"features": "tfidf", "estimator": "linear-svm", "C": 1.0}
    classifier: dict[str, Any] | None = None
    # the system prompt every example of the task's data carried, left out of each input
    # (data.example.shared_system): a request that sends it is read as if it had not
    # (rung serve, the exported chat template, the inputs of rung check and review)
    shared_system: str | None = None

    def messages(self, text: str, context: Sequence["Hit"] = (),
                 demonstrations: Sequence[Example] | None = None,
                 demonstration_contexts: Mapping[str, Sequence["Hit"]] | None = None,
                 ) -> list[Message]:
        """The conversation sent for `text`; `demonstrations` overrides the fixed ones (the
        similar-example selection picks them per input); with retrieval, each demonstration
        shows the passages retrieved for its own question (`demonstration_contexts`, by input),
        so the model sees how an answer is read off the documentation."""
        render = VARIANTS[self.variant]
        render_demo = DEMONSTRATION_VARIANTS.get(self.variant, render)
        shown = demonstration_contexts or {}
        turns: list[Message] = []
        for demo in self.demonstrations if demonstrations is None else demonstrations:
            question = with_passages(demo.input, shown.get(demo.input, ()))
            _, user = render_demo(self.instruction, self.labels, question)
            turns += [Message("user", user), Message("assistant", demo.output)]
        system, user = render(self.instruction, self.labels, with_passages(text, context))
        head = [Message("system", system)] if system else []
        return head + turns + [Message("user", user)]

    def load(self) -> Model:
        return load_model(self.model, base_dir=Path(self.base_dir) if self.base_dir else None)

    def predict(self, texts: Sequence[str], cache: "ResponseCache | None" = None,
                on_text: Callable[[int, str], None] | None = None) -> list[Output]:
        """Classification picks the most likely label; other kinds generate greedily.

        With a cache, answers already given for the same model, prompt and parameters are
        reused and the model is loaded only if something is missing. A classifier answers
        itself: it is faster than a cache lookup. `on_text(i, text)` hears input i's answer
        grow while it is generated, where the model can say (a transformers model, no cache);
        elsewhere it is not called and the answer comes whole.
        """
        if self.classifier is not None:
            return self._classify(texts)
        if cache is not None:
            from rung.models.cache import CachedModel

            base = Path(self.base_dir) if self.base_dir else None
            model: Model = CachedModel(self.model, cache, base_dir=base)
        else:
            model = self.load()
        texts = list(texts)
        contexts = self._retrieve(texts)
        prompts = self.prompts(texts, contexts)
        if self.kind == "classification":
            scored = model.score_choices(prompts, self.labels)
            outputs = []
            for s, c in zip(scored, contexts):
                if s.answer is not None:  # its words named no label: a format failure
                    outputs.append(Output(s.answer, s.tokens_in, 0,
                                          sources=tuple(h.chunk.key for h in c),
                                          error=s.error))
                    continue
                best = self.pick(s.logprobs)
                outputs.append(Output(self.labels[best], s.tokens_in, s.choice_tokens[best],
                                      tuple(s.logprobs), tuple(s.choice_tokens),
                                      sources=tuple(h.chunk.key for h in c)))
            return outputs
        streaming = {"on_text": on_text} if on_text and getattr(model, "streams", False) else {}
        generated = model.generate(prompts, max_new_tokens=self.max_new_tokens, **streaming)
        return [
            Output(g.text, g.tokens_in, g.tokens_out, sources=tuple(h.chunk.key for h in c),
                   context="\n".join(h.chunk.text for h in c), error=g.error)
            for g, c in zip(generated, contexts)
        ]

    def prompts(self, texts: list[str], contexts: Sequence[Sequence["Hit"]]) -> list[list[Message]]:
        """Each input's conversation: its demonstrations (the fixed ones, or its nearest in
        the pool) and, with retrieval, its passages and each demonstration's own passages."""
        demos = (nearest_examples(self.pool, texts, self.nearest) if self.nearest
                 else [self.demonstrations] * len(texts))
        shown: dict[str, list[Hit]] = {}
        if self.retrieval is not None:
            asked = list(dict.fromkeys(d.input for ds in demos for d in ds))
            shown = dict(zip(asked, self._retrieve(asked)))
        return [self.messages(t, c, d, shown) for t, c, d in zip(texts, contexts, demos)]

    def _retrieve(self, texts: list[str]) -> list[list["Hit"]]:
        if self.retrieval is None or not texts:
            return [[] for _ in texts]
        from rung.rag import retrieve

        return retrieve(Path(self.base_dir) if self.base_dir else Path.cwd(), self.retrieval,
                        texts)

    def pick(self, logprobs: Sequence[float]) -> int:
        """The label to answer: the most likely one, after dividing out the content-free
        probabilities when the pipeline is calibrated."""
        scores = np.asarray(logprobs, dtype=float)
        if self.calibration is not None:
            scores = scores - np.logaddexp.reduce(scores) - np.asarray(self.calibration)
        return int(np.argmax(scores))  # the first of equals, as max() did

    def _classify(self, texts: Sequence[str]) -> list[Output]:
        from rung.models.classifier import load_classifier

        model = load_classifier(self.model if self.base_dir is None
                                else Path(self.base_dir) / self.model)
        labels, logprobs = model.predict(texts)
        ones = tuple(1 for _ in self.labels)
        if logprobs is None:
            return [Output(label, 0, 0) for label in labels]
        return [Output(label, 0, 0, tuple(float(x) for x in row), ones)
                for label, row in zip(labels, logprobs)]

    @classmethod
    def from_dict(cls, record: dict[str, Any], *, base_dir: str | None = None,
                  was_at: Path | None = None) -> "Pipeline":
        """A stored pipeline (`to_dict`) back as one; `base_dir` re-roots it where the task
        folder is now (`was_at`: where the run recorded it, see rerooted)."""
        from rung.data.example import make_example

        record = dict(record)
        for name in ("demonstrations", "pool"):
            record[name] = [make_example(d["input"], d["output"], line=d["line"])
                            for d in record.get(name, [])]
        if base_dir is not None:
            record["base_dir"] = base_dir
            record["model"] = rerooted(record["model"], Path(base_dir), was_at)
        return cls(**record)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        for name in ("demonstrations", "pool"):
            record[name] = [{"line": d.line, "id": d.id, "input": d.input, "output": d.output}
                            for d in getattr(self, name)]
        return record

    def hash(self) -> str:
        """Identifies what is shipped, so it leaves out where the task folder happens to be."""
        record = {k: v for k, v in self.to_dict().items() if k != "base_dir"
                  and not (k == "shared_system" and v is None)}  # hashes from before it hold
        payload = json.dumps(record, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def rerooted(model: str, base_dir: Path, was_at: Path | None = None) -> str:
    """A model rung saved in a task's .rung folder (a classifier, a tune) is stored with the
    absolute path the task had then; once the folder is moved or copied, that path is gone, or
    worse, still the original's. The same file under the task's .rung folder now is meant.
    `was_at`, the task folder the run recorded, says which paths were its own: a model in
    another task's .rung (a tune used as a base) is left alone. Without it, a path is moved
    only when it is gone and the same file is here."""
    path = Path(model)
    if not path.is_absolute() or ".rung" not in path.parts:
        return model
    if was_at is not None:
        try:
            inside = path.relative_to(was_at / ".rung")
        except ValueError:
            return model
        return str(base_dir / ".rung" / inside)
    parts = path.parts
    here = base_dir.joinpath(*parts[len(parts) - 1 - parts[::-1].index(".rung"):])
    return str(here) if not path.exists() and here.exists() else model
