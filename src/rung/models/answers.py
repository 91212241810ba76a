"""Where a generated answer ends, and how it is heard growing before it does.

A model with a chat template ends its answer with the template's end-of-turn token. A base
model's plain transcript has none, and it may open with a line break, so there an answer is
its first non-blank line (FirstLineDone stops each row once that line has ended). While
`rung serve` streams, AnswerStream hands each row's answer so far to a listener, cut the same
way, so what is streamed grows into exactly the answer generate returns.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer


def line_ended(text: str) -> bool:
    """Whether a plain-text answer is complete: a line break after some non-space text."""
    return "\n" in text.lstrip()


def first_line(tokenizer: Any, ids: list[int]) -> tuple[str, int]:
    """The first non-blank line that `ids` decode to, and how many ids come before the one
    that ends it (the stop is not counted, as an end-of-turn token is not)."""
    for n in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        if line_ended(text):
            return text.lstrip().split("\n", 1)[0].strip(), n - 1
    return tokenizer.decode(ids, skip_special_tokens=True).strip(), len(ids)


class AnswerStream(BaseStreamer):
    """Each row's answer so far, as generate makes it, handed to `on_text(prompt index,
    text)`: the tokens before the row's stop, decoded, with what the finished answer would
    strip held back (leading and trailing space, a character whose bytes are not all in yet,
    for a base model all after its first line), so each text heard extends the last."""

    def __init__(self, tokenizer: Any, rows: list[int], stop_ids: set[int], plain: bool,
                 on_text: Callable[[int, str], None]) -> None:
        self.tokenizer, self.rows, self.stop_ids, self.plain = tokenizer, rows, stop_ids, plain
        self.on_text = on_text
        self.ids: list[list[int]] = [[] for _ in rows]
        self.heard = [""] * len(rows)
        self.done = [False] * len(rows)
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate hands over the prompt first
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(len(self.rows), -1)[:, -1].tolist()):
            if self.done[row]:
                continue
            if token in self.stop_ids:
                self.done[row] = True
                continue
            self.ids[row].append(token)
            text = self.tokenizer.decode(self.ids[row], skip_special_tokens=True).lstrip()
            if self.plain and "\n" in text:
                text, self.done[row] = text.split("\n", 1)[0], True
            text = text.rstrip("\ufffd").rstrip()
            if text != self.heard[row] and text.startswith(self.heard[row]):
                self.heard[row] = text
                self.on_text(self.rows[row], text)

    def end(self) -> None:
        pass


class FirstLineDone(StoppingCriteria):
    """Stops each row once its answer's first non-blank line has ended, so a base model
    neither stops on a leading line break nor runs on into the next turn of the transcript."""

    def __init__(self, tokenizer: Any, prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_width:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([line_ended(t) for t in texts], device=input_ids.device)
