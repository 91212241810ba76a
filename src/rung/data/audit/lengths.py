"""Token lengths against the model's context and the training max sequence length.

Training truncates every conversation to `max_seq_length` tokens, and the answer is at the
end, so a truncated example teaches a cut-off answer or none at all. Past the model's context
the example cannot be used at all. The other way round, the seeds warn that padding wastes
compute: a max length far above the data is paid for on every batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rung.data.audit.base import CheckResult, Status
from rung.data.example import Example
from rung.models.tokens import TokenCounter

DEFAULT_MAX_SEQ_LENGTH = 2048  # the seeds' SFT example; their table gives 512-4096
_STEPS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def suggested_max_seq_length(lengths: Sequence[int]) -> int:
    """The smallest usual size that fits every example."""
    longest = max(lengths, default=0)
    return next((step for step in _STEPS if step >= longest), longest)


def token_lengths(
    examples: Sequence[Example], counter: TokenCounter, max_seq_length: int
) -> CheckResult:
    lengths = counter.count([ex.messages for ex in examples])
    array = np.asarray(lengths)
    context = counter.context_length
    over_context = sorted(ex.line for ex, n in zip(examples, lengths) if context and n > context)
    truncated = sorted(ex.line for ex, n in zip(examples, lengths) if n > max_seq_length)
    suggestion = suggested_max_seq_length(lengths)
    if context:
        suggestion = min(suggestion, context)
    details = {"model": counter.name, "context_length": context, "max_seq_length": max_seq_length,
               "p50": int(np.percentile(array, 50)), "p95": int(np.percentile(array, 95)),
               "p99": int(np.percentile(array, 99)), "max": int(array.max()),
               "total_tokens": int(array.sum()), "over_max_seq_length": len(truncated),
               "over_context": len(over_context), "suggested_max_seq_length": suggestion}
    spread = (f"tokens per example p50 {details['p50']}, p95 {details['p95']}, "
              f"max {details['max']} ({counter.name})")
    if over_context:
        return CheckResult(
            "token-lengths", "fail",
            f"{len(over_context)} examples exceed the model's context of {context} tokens; "
            + spread,
            fix="shorten or split these examples, or pick a model with a longer context",
            rows=over_context, details=details)
    if truncated:
        status: Status = "fail" if len(truncated) > 0.05 * len(examples) else "warn"
        return CheckResult(
            "token-lengths", status,
            f"{len(truncated)} examples are longer than max_seq_length {max_seq_length} and "
            f"would lose the end of their answer; " + spread,
            fix=f"set [audit] max_seq_length = {suggestion}"
                " (memory grows with it), or shorten these examples",
            rows=truncated, details=details)
    finding = spread + f"; all fit max_seq_length {max_seq_length}"
    if suggestion < max_seq_length:
        finding += f" (a max_seq_length of {suggestion} would fit them and pad less)"
    return CheckResult("token-lengths", "pass", finding, details=details)
