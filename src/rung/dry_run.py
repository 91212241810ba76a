"""What a climb would send to its models, counted and priced before a single request.

The dry run climbs the real ladder (the same candidates, the same val and test examples, the
same demonstrations and retrieved passages, the same latency samples) with every LLM replaced
by a stand-in that answers at once and writes down what each request would have sent and the
most it could have received. Its answers are blank, so no choice reaches the target and every
rung is climbed: the figures are for the whole ladder, an upper bound on a climb that stops
early; every candidate is counted on all of val (full selection), an upper bound on a race,
whose survivors depend on answers the stand-in cannot give, and the candidate measured on
test is the costliest of the tied ones (its prompts are the longest); and for a first
climb: a prompt asked twice is counted once, as the response cache
sends it once, and a rerun pays only for what that cache lacks. Tokens
in are estimated at about four characters a token (the tokenizer of a remote model is at its
server); tokens out are the most each request may write. Dollars come from the [costs] api
prices of the model's name; a model with no price there is counted, not priced. The classifier
and the fine-tune run on this machine and send nothing; they are left out. No key is needed,
and nothing but the data audit (which any climb records) is written to the task's run store.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.data.example import Message
from rung.models.base import ChoiceScores, Generation
from rung.models.registry import register_model, unregister_model
from rung.models.labels import answer_budget, with_label_rule
from rung.models.endpoint import is_remote
from rung.models.usage import estimate_tokens
from rung.rungs.base import COUNTING
from rung.task import load_task


class CountingModel:
    """Answers nothing, counts everything, per rung (the stage the climb reports)."""

    def __init__(self, reference: str) -> None:
        self.name = reference
        self.rung = "setup"
        self.counts: dict[str, dict[str, int]] = defaultdict(
            lambda: {"requests": 0, "tokens_in": 0, "tokens_out": 0})

    @property
    def fingerprint(self) -> str:
        return f"dry-run:{self.name}"

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return estimate_tokens(messages)

    def _count(self, prompts: Sequence[Sequence[Message]], out: int) -> None:
        row = self.counts[self.rung]
        row["requests"] += len(prompts)
        row["tokens_in"] += sum(estimate_tokens(p) for p in prompts)
        row["tokens_out"] += out * len(prompts)

    def generate(self, prompts: Sequence[Sequence[Message]],
                 max_new_tokens: int = 64) -> list[Generation]:
        self._count(prompts, max_new_tokens)
        return [Generation("", estimate_tokens(p), 0) for p in prompts]

    def score_choices(self, prompts: Sequence[Sequence[Message]],
                      choices: Sequence[str]) -> list[ChoiceScores]:
        # a served model whose labels are parsed is sent the prompt with the label rule
        # added (Anthropic always; an OpenAI-compatible server without log-probabilities):
        # the longer of the two is counted, so the figure stays an upper bound
        sent = [with_label_rule(p, choices) for p in prompts] if is_remote(self.name) \
            else prompts
        self._count(sent, answer_budget(choices))
        return [ChoiceScores([0.0] * len(choices), estimate_tokens(p), [1] * len(choices))
                for p in prompts]


def dry_run(path: str | Path) -> dict[str, Any]:
    """Per rung and model: requests, tokens in and out, dollars; and the totals."""
    from rung.climb import check_models, climb, left_out, require_a_rung
    from rung.plan import plan_for

    task = load_task(path)
    why_not = left_out(task, None, None)
    check_models(task, why_not)  # refused by the dry run as by the climb
    require_a_rung(task, why_not)
    local = {"classifier": "runs on this machine: no requests",
             "finetune": "trains on this machine: no requests"}
    if all({**why_not, **local}.values()):  # only rungs that send nothing: nothing to count
        return {"dry_run": True, "task": task.task.name, "rungs": [], "work": plan_for(path),
                "total": {"requests": 0, "tokens_in": 0, "tokens_out": 0, "dollars": None,
                          "unpriced": []},
                "estimate": "no rung this climb measures sends a request to a model: "
                            + ", ".join(name for name, why in why_not.items() if not why)
                            + " runs on this machine"}
    references = [m for m in (task.models.small, task.models.large) if m]
    stand_ins = {ref: CountingModel(ref) for ref in references}

    def reporter(stage: str, total: int):
        for model in stand_ins.values():
            model.rung = stage.split(":", 1)[0]
        return lambda n: None

    for ref, model in stand_ins.items():
        register_model(ref, model)
    try:
        with tempfile.TemporaryDirectory(prefix="rung-dry-run-") as store:
            # with a response cache of its own, empty, as a first climb has: a prompt two
            # candidates share is counted once, as it is sent once
            # every candidate on all of val, the costliest kept on a tie (rungs.base.COUNTING):
            # which ones a race keeps, and which one is measured on test, depend on answers a
            # stand-in cannot give
            counting = COUNTING.set(True)
            try:
                climb(task.path, reporter=reporter, use_cache=True, climb_all=True,
                      store_dir=Path(store), leave_out=local)
            finally:
                COUNTING.reset(counting)
    finally:
        for ref in stand_ins:
            unregister_model(ref)

    rows = []
    for ref, model in stand_ins.items():
        price = task.costs.api.get(ref.split(":", 1)[1] if is_remote(ref) else ref)
        for rung, row in model.counts.items():
            dollars = None if price is None else round(
                row["tokens_in"] / 1e6 * price.input_per_million
                + row["tokens_out"] / 1e6 * price.output_per_million, 4)
            rows.append({"rung": rung, "model": ref, "remote": is_remote(ref), **row,
                         "dollars": dollars})
    priced = [r["dollars"] for r in rows if r["dollars"] is not None]

    return {
        "dry_run": True, "task": task.task.name, "rungs": rows, "work": plan_for(path),
        "total": {"requests": sum(r["requests"] for r in rows),
                  "tokens_in": sum(r["tokens_in"] for r in rows),
                  "tokens_out": sum(r["tokens_out"] for r in rows),
                  "dollars": round(sum(priced), 4) if priced else None,
                  "unpriced": sorted({r["model"] for r in rows if r["dollars"] is None})},
        "estimate": "every rung climbed, as a first climb (nothing cached yet) sends it; tokens "
                    "in at ~4 characters a token, tokens out at the most each request may "
                    "write",
    }
