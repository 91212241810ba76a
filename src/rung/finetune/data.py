"""Training records in the shape the model will be asked in: the best prompt's messages.

The tuned model is evaluated through the same Pipeline as the prompt rung, so it must be
trained on the same rendering of each input (instruction, variant, system prompt); otherwise
it learns one format and is tested on another. With a chat template, records are TRL's
conversational prompt-completion form, so the loss falls on the assistant's answer only;
preference records add the rejected answer beside the chosen one.

A base model without a chat template (Gemma 3 270M base) is served a plain transcript
(models/tokens.py render_chat: 'User: ...\\nAssistant:', after the BOS its tokenizer puts
before plain text) and its answer is read up to the end of its first line (models/answers.py;
a choice is scored as its tokens and then '\\n'). Its records are built from exactly those
tokens: the prompt as serving encodes it, the answer and the line break that ends it, with
the loss on the answer and its line break only. TRL's own path would apply a chat template
the model does not have, or append EOS where serving ends at the line break.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rung.data.example import Example
from rung.models.tokens import encode_prompt, plain_text_bos, render_chat
from rung.pipeline import Pipeline

PLAIN_END = "\n"  # what ends an answer without a chat template (HFModel.end_of_turn there)
IGNORED = -100  # a label the loss skips


def has_template(tokenizer: Any) -> bool:
    return tokenizer is None or bool(getattr(tokenizer, "chat_template", None))


def _prompt(pipeline: Pipeline, ex: Example) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in pipeline.messages(ex.input)]


def plain_answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """The answer's ids as serving scores it after the prompt: its text, then the line break
    that ends it, encoded on their own."""
    return tokenizer(answer + PLAIN_END, add_special_tokens=False)["input_ids"]


def sft_records(pipeline: Pipeline, examples: Sequence[Example],
                tokenizer: Any = None) -> list[dict[str, Any]]:
    """Conversational prompt-completion records; for a tokenizer without a chat template,
    tokenised records (input_ids, labels) of exactly what serving encodes."""
    if not has_template(tokenizer):
        records, bos = [], plain_text_bos(tokenizer)  # asked once, not per example
        for ex in examples:
            prompt = encode_prompt(tokenizer, pipeline.messages(ex.input), bos)
            answer = plain_answer_ids(tokenizer, ex.output)
            records.append({"input_ids": prompt + answer,
                            "labels": [IGNORED] * len(prompt) + answer})
        return records
    return [{"prompt": _prompt(pipeline, ex),
             "completion": [{"role": "assistant", "content": ex.output}]} for ex in examples]


def preference_records(pipeline: Pipeline, examples: Sequence[Example],
                       tokenizer: Any = None) -> list[dict[str, Any]]:
    """DPO pairs: the assistant turn is the chosen answer, the record's `rejected` the other.
    Without a chat template, plain-text pairs: the prompt is the transcript serving renders
    (TRL's tokeniser call adds the BOS serving puts before it) and each answer ends with the
    line break that ends it in serving (TRL appends EOS after it, where generation stops
    too)."""
    if not has_template(tokenizer):
        return [{"prompt": render_chat(tokenizer, pipeline.messages(ex.input),
                                       add_generation_prompt=True),
                 "chosen": ex.output + PLAIN_END, "rejected": ex.extra["rejected"] + PLAIN_END}
                for ex in examples]
    return [{"prompt": _prompt(pipeline, ex),
             "chosen": [{"role": "assistant", "content": ex.output}],
             "rejected": [{"role": "assistant", "content": ex.extra["rejected"]}]}
            for ex in examples]
