"""Tokens at a remote model: estimated before asking, counted from the server afterwards.

Apart from the client because the dry run and the plan estimate a climb's tokens before any
model exists, the budget reserves a request's worst case before it is sent, and the vendor
code falls back on the estimate where a server sends no usage. What a model was actually
sent is counted in `Usage`, from the servers' own usage fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rung.data.example import Message


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Tokens a conversation takes, before asking: about 4 characters a token in English, plus
    a few per message for the chat template. What was sent is counted from the server's usage
    fields afterwards."""
    return sum(4 + math.ceil(len(m.content) / 4) for m in messages)


def most_tokens(messages: Sequence[Message]) -> int:
    """Tokens a conversation can take at most, for the budget's worst case: a byte-level BPE
    never needs more tokens than UTF-8 bytes (nor a tokenizer with byte fallback), plus a
    template's few a message. The ~4-characters estimate undercounts code and most
    languages other than English, and a budget reserved on it could be passed."""
    return sum(8 + len(m.content.encode("utf-8")) for m in messages)


@dataclass
class Usage:
    """What this process has spent at one endpoint, from the servers' own usage fields."""

    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: list[float] = field(default_factory=list)  # each request, end to end
    last_error: str = ""
    scoring: str | None = None  # logprobs | parsed: how labels were scored

    def snapshot(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "scoring": self.scoring}
