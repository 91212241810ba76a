"""Training records in the shape the model will be asked in: the best prompt's messages.

The tuned model is evaluated through the same Pipeline as the prompt rung, so it must be
trained on the same rendering of each input (instruction, variant, system prompt); otherwise
it learns one format and is tested on another. Records are TRL's conversational
prompt-completion form, so the loss falls on the assistant's answer only; preference records
add the rejected answer beside the chosen one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rung.data.example import Example
from rung.pipeline import Pipeline


def _prompt(pipeline: Pipeline, ex: Example) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in pipeline.messages(ex.input)]


def sft_records(pipeline: Pipeline, examples: Sequence[Example]) -> list[dict[str, Any]]:
    return [{"prompt": _prompt(pipeline, ex),
             "completion": [{"role": "assistant", "content": ex.output}]} for ex in examples]


def preference_records(pipeline: Pipeline, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """DPO pairs: the assistant turn is the chosen answer, the record's `rejected` the other."""
    return [{"prompt": _prompt(pipeline, ex),
             "chosen": [{"role": "assistant", "content": ex.output}],
             "rejected": [{"role": "assistant", "content": ex.extra["rejected"]}]}
            for ex in examples]
