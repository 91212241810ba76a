"""Training records in the shape the model will be asked in: the best prompt's messages.

The tuned model is evaluated through the same Pipeline as the prompt rung, so it must be
trained on the same rendering of each input (instruction, variant, system prompt); otherwise
it learns one format and is tested on another. Records are TRL's conversational
prompt-completion form, so the loss falls on the assistant's answer only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rung.data.example import Example
from rung.pipeline import Pipeline


def sft_records(pipeline: Pipeline, examples: Sequence[Example]) -> list[dict[str, Any]]:
    return [
        {"prompt": [{"role": m.role, "content": m.content} for m in pipeline.messages(ex.input)],
         "completion": [{"role": "assistant", "content": ex.output}]}
        for ex in examples
    ]
