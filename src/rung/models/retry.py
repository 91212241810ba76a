"""Whether and when to ask a remote model again, and how its errors are told.

rung retries itself (the SDK clients are built with max_retries=0) so that `--budget`
reserves and settles every attempt, not only the last; this module is the policy it follows,
the SDKs' own: which errors a retry can mend, how long to wait (the server's Retry-After, or
exponential backoff with jitter), and an error's description with the key taken out. Apart
from the client so the policy reads in one place, without the requests around it.
"""

from __future__ import annotations

import email.utils
import importlib
import math
import random
import time
from typing import Any

REFUSED = (401, 403, 404)  # a wrong key, no access, no such model: retries cannot help
_FIRST_RETRY_S, _LONGEST_BACKOFF_S = 0.5, 8.0  # the SDKs' backoff
_MOST_RETRY_AFTER_S = 120.0  # a server asking for a longer wait is not retried


def retry_wait(backend: str, error: Exception, attempt: int) -> float | None:
    """Seconds to wait before asking again, or None where a retry cannot help; the SDKs'
    own policy. Retried: a timeout or failed connection, 408, 409, 429 and 5xx (or what
    the server's x-should-retry header says). The wait is the server's Retry-After (or
    retry-after-ms) when it asks for 0 to 120 seconds; one asking for longer is not
    retried (OpenAI's SDK gives up too); else 0.5 s doubling each retry up to 8 s, less up
    to a quarter at random."""
    sdk = importlib.import_module(backend)
    if isinstance(error, sdk.APIStatusError):
        headers = error.response.headers
        asked = headers.get("x-should-retry")
        status = error.status_code
        if status in REFUSED or asked == "false" or (
                asked != "true" and status not in (408, 409, 429) and status < 500):
            return None
        after = _retry_after(headers)
        if after is not None and after > _MOST_RETRY_AFTER_S:
            return None
        if after is not None and after > 0:
            return after
    elif not isinstance(error, sdk.APIConnectionError):  # a timeout is one too
        return None  # a cut stream, an answer that could not be read: not retried
    return min(_FIRST_RETRY_S * 2.0 ** attempt, _LONGEST_BACKOFF_S) * \
        (1 - 0.25 * random.random())


def _retry_after(headers: Any) -> float | None:
    """The wait a response asks for, in seconds, as the SDKs read it: retry-after-ms, then
    Retry-After as seconds (a float allowed) or as an HTTP date; None where it asks none."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return seconds
        return None if math.isnan(seconds) else _MOST_RETRY_AFTER_S + 1
    date = headers.get("retry-after")
    try:
        parsed = email.utils.parsedate_tz(date) if date else None
        return None if parsed is None else float(email.utils.mktime_tz(parsed) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def describe(error: Exception, secret: str | None = None) -> str:
    """The error for a message and the run's record, with the key taken out: some servers
    and proxies echo the key they refused in their error body."""
    status = getattr(error, "status_code", None)
    text = f"{type(error).__name__}" + (f" {status}" if status else "") + f": {error}"
    if secret and len(secret) >= 8:
        for piece in {secret, secret[:16], secret[-16:]}:
            text = text.replace(piece, "***")
    return text[:300]
