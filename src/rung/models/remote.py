"""Models a team already runs, over HTTP: `openai:MODEL` (OpenAI's API, or any OpenAI-
compatible server: vLLM, TGI, Ollama, a llama.cpp server, LM Studio, Together, Groq, Azure,
by `base_url`) and `anthropic:MODEL` (Anthropic's Messages API).

Both sit behind the same two operations as an in-process model. Generation is one chat
request per prompt. Classification scores labels from the token log-probabilities the server
returns for the first answer token ("logprobs": OpenAI, vLLM and llama.cpp serve them); where
a server returns none (Anthropic never does), the model is asked to answer with one label and
its words are parsed ("parsed"), an answer that is no label counting as a format failure.

Requests go out `concurrency` at a time on threads (the official SDK clients are thread-safe).
rung retries 429s, 408s, 409s, 5xx, timeouts and cut connections itself (the SDK clients are
built with max_retries=0), with the SDKs' own exponential backoff and jitter, honouring
Retry-After, each attempt within the per-request timeout: so `--budget` reserves and settles
every attempt, not only the last (a retry the SDK made inside one call was never counted). A
request that still fails is that example's error, is never cached, and once more than
`max_error_rate` of the requests have failed the climb stops with the last error. Where a
model answers, and its key, are endpoint.py; token estimates and the usage counters usage.py.
"""

from __future__ import annotations

import email.utils
import importlib
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rung.data.example import Message
from rung.errors import ConfigError, ModelError
from rung.models.base import ChoiceScores, Generation
from rung.models.budget import BudgetReached, current_budget
from rung.models.endpoint import Endpoint, endpoint_for, is_remote
from rung.models.labels import FLOOR, Reply, alternatives, answer_budget, label_scores, \
    parsed_scores, with_label_rule
from rung.models.usage import Usage, estimate_tokens, most_tokens

_MIN_REQUESTS = 20  # the error rate is judged once this many requests have been made
_MIN_ERRORS = 3


class RemoteModel:
    """One endpoint; every rung of a climb shares it (and its usage counters)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.name = endpoint.reference
        self.usage = Usage()
        self._lock = threading.Lock()
        self._client: Any = None
        # a climb stops when too many of a batch's requests failed; `rung serve` answers
        # each failed request with its own 502 and keeps serving
        self.stop_on_errors = True
        self._refused: ModelError | None = None  # a refusal no retry mends (key, model name)

    @property
    def fingerprint(self) -> str:
        return self.endpoint.fingerprint

    @property
    def client(self) -> Any:
        with self._lock:  # the first requests of a batch ask for it at once, from threads
            if self._client is None:
                self._client = self._new_client()
        return self._client

    def _new_client(self) -> Any:
        """The SDK's client, which never retries: rung does (`_ask`), so that every attempt
        is reserved and settled in the budget."""
        e = self.endpoint
        options = {"api_key": e.key() or "none", "timeout": e.timeout_s, "max_retries": 0}
        if e.backend == "openai":
            from openai import OpenAI

            return OpenAI(base_url=e.url, **options)
        from anthropic import Anthropic

        return Anthropic(base_url=e.url, **options)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return estimate_tokens(messages)

    # -- the two operations -------------------------------------------------------------------

    @property
    def streams(self) -> bool:
        """Whether generate can hand answers over as they arrive (`rung serve` streams
        them): both backends stream when asked to."""
        return True

    def generate(self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64,
                 on_text: Callable[[int, str], None] | None = None) -> list[Generation]:
        def one(i: int, prompt: Sequence[Message]) -> Generation:
            heard = None if on_text is None else (lambda text: on_text(i, text))
            reply = self._ask(prompt, max_tokens=max_new_tokens, on_text=heard)
            if reply is None:
                return Generation("", 0, 0, error=True)
            return Generation(reply.text, reply.tokens_in, reply.tokens_out)

        return self._many(one, prompts)

    def score_choices(self, prompts: Sequence[Sequence[Message]],
                      choices: Sequence[str]) -> list[ChoiceScores]:
        n = len(choices)

        def one(_: int, prompt: Sequence[Message]) -> ChoiceScores:
            if self.endpoint.backend == "openai" and self.usage.scoring != "parsed":
                reply = self._ask(prompt, max_tokens=answer_budget(choices), top_logprobs=20)
                if reply is None:
                    return ChoiceScores([FLOOR] * n, 0, [1] * n, answer="", error=True)
                if reply.alternatives:
                    self.usage.scoring = "logprobs"
                    return label_scores(reply, choices)
                if self.usage.scoring == "logprobs":  # none this once: read its answer instead
                    return parsed_scores(reply, choices)
            self.usage.scoring = "parsed"  # the server gives no log-probabilities
            reply = self._ask(with_label_rule(prompt, choices), max_tokens=answer_budget(choices))
            if reply is None:
                return ChoiceScores([FLOOR] * n, 0, [1] * n, answer="", error=True)
            return parsed_scores(reply, choices)

        return self._many(one, prompts)

    # -- requests -----------------------------------------------------------------------------

    def _many(self, one: Callable[[int, Sequence[Message]], Any],
              prompts: Sequence[Sequence[Message]]) -> list[Any]:
        answered: dict[int, Any] = {}
        stopped: ModelError | None = None  # the budget reached, or a refusal (401/403/404)
        with self._lock:
            self._refused = None
            before = (self.usage.requests, self.usage.errors)
        if len(prompts) <= 1 or self.endpoint.concurrency == 1:
            for i, prompt in enumerate(prompts):
                try:
                    answered[i] = one(i, prompt)
                except ModelError as error:
                    stopped = error
                    break
        else:  # every request runs to its end, so none that was paid for is dropped
            with ThreadPoolExecutor(max_workers=self.endpoint.concurrency) as pool:
                futures = [pool.submit(one, i, prompt) for i, prompt in enumerate(prompts)]
            for i, future in enumerate(futures):
                error = future.exception()
                if error is None:
                    answered[i] = future.result()
                elif isinstance(error, ModelError):  # a refusal outranks the budget: a
                    # larger --budget would not mend it
                    if stopped is None or isinstance(stopped, BudgetReached):
                        stopped = error
                else:
                    raise error
        if stopped is not None:  # every answer paid for goes to the response cache
            stopped.answered = answered
            raise stopped
        self._check_errors(answered, before)
        return [answered[i] for i in range(len(prompts))]

    def _ask(self, prompt: Sequence[Message], *, max_tokens: int, top_logprobs: int = 0,
             on_text: Callable[[str], None] | None = None) -> "Reply | None":
        """One example's request, with up to `max_retries` retries. Each attempt reserves its
        worst case in the budget before it is sent and settles what it may have cost: the
        usage for an answer; the worst case for a timeout or a cut connection (the server may
        have generated, and billed, the whole answer); nothing for an error status. A
        streamed request is not retried once any of its text was heard."""
        budget = current_budget()
        started = time.perf_counter()
        heard = False

        def listen(text: str) -> None:
            nonlocal heard
            heard = True
            on_text(text)  # type: ignore[misc]

        for attempt in range(self.endpoint.max_retries + 1):
            if self._refused is not None:  # an earlier request of this batch was refused
                raise self._refused          # for good: the rest are not sent
            try:
                reserved = budget.reserve(self.endpoint.model, most_tokens(prompt),
                                          max_tokens) if budget else 0.0
            except BudgetReached:
                if attempt:  # this example had failed: it stays a failure, not an answer
                    self._failed(self.usage.last_error)
                raise
            try:
                reply = self._send(prompt, max_tokens, top_logprobs,
                                   None if on_text is None else listen)
            except Exception as error:  # noqa: BLE001 - this attempt's error
                status = getattr(error, "status_code", None)
                if budget:
                    budget.settle(reserved, self.endpoint.model,
                                  *((0, 0) if status else (most_tokens(prompt), max_tokens)))
                described = _describe(error, self._secret())
                wait = None if heard else self._retry_wait(error, attempt)
                if wait is not None and attempt < self.endpoint.max_retries:
                    with self._lock:
                        self.usage.last_error = described
                    time.sleep(wait)
                    continue
                self._failed(described, status)
                if self._refused is not None:
                    raise self._refused
                return None
            if budget:
                budget.settle(reserved, self.endpoint.model, reply.tokens_in, reply.tokens_out)
            with self._lock:
                self.usage.requests += 1
                self.usage.tokens_in += reply.tokens_in
                self.usage.tokens_out += reply.tokens_out
                self.usage.seconds.append(time.perf_counter() - started)
            return reply
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(self, prompt: Sequence[Message], max_tokens: int, top_logprobs: int,
              on_text: Callable[[str], None] | None) -> "Reply":
        """One attempt at one request."""
        if self.endpoint.backend == "openai" and on_text is not None:
            return self._openai_streamed(prompt, max_tokens, on_text)
        if self.endpoint.backend == "openai":
            return self._openai(prompt, max_tokens, top_logprobs)
        if on_text is not None:
            return self._anthropic_streamed(prompt, max_tokens, on_text)
        return self._anthropic(prompt, max_tokens)

    def _failed(self, described: str, status: int | None = None) -> None:
        """An example whose request failed after its retries: counted, and a refusal no
        retry mends (a wrong key, no access, no such model) stops the rest of its batch."""
        with self._lock:
            self.usage.requests += 1
            self.usage.errors += 1
            self.usage.last_error = described
            if status in _REFUSED and self._refused is None:
                self._refused = ModelError(
                    f"{self.endpoint.reference} at {self.endpoint.url} refused the "
                    f"request ({described}); no retry changes that",
                    fix="check the key (its variable: [models."
                        f"{self.endpoint.backend}] api_key_env) and the model's name")

    def _retry_wait(self, error: Exception, attempt: int) -> float | None:
        """Seconds to wait before asking again, or None where a retry cannot help; the SDKs'
        own policy. Retried: a timeout or failed connection, 408, 409, 429 and 5xx (or what
        the server's x-should-retry header says). The wait is the server's Retry-After (or
        retry-after-ms) when it asks for 0 to 120 seconds; one asking for longer is not
        retried (OpenAI's SDK gives up too); else 0.5 s doubling each retry up to 8 s, less up
        to a quarter at random."""
        sdk = importlib.import_module(self.endpoint.backend)
        if isinstance(error, sdk.APIStatusError):
            headers = error.response.headers
            asked = headers.get("x-should-retry")
            status = error.status_code
            if status in _REFUSED or asked == "false" or (
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

    def _chat(self, prompt: Sequence[Message], max_tokens: int) -> dict[str, Any]:
        """An OpenAI chat request's body, streamed or not: greedy, seeded."""
        return {"model": self.endpoint.model, "max_tokens": max_tokens, "temperature": 0,
                "seed": 0, "messages": [{"role": m.role, "content": m.content} for m in prompt]}

    def _openai(self, prompt: Sequence[Message], max_tokens: int, top_logprobs: int) -> "Reply":
        """One chat request, whole. Tokens are the server's usage fields; a server that sends
        none (or leaves a count out) is counted by estimate, ~4 characters a token as before
        asking: the prompt for tokens in, the answer's text for tokens out (at most
        `max_tokens`), so the budget and the `remote` block never take an answer for free."""
        extra: dict[str, Any] = {}
        if top_logprobs:
            extra = {"logprobs": True, "top_logprobs": top_logprobs}
        response = self.client.chat.completions.create(**self._chat(prompt, max_tokens),
                                                       **extra)
        choice = response.choices[0]
        text = choice.message.content or ""
        tokens_in, tokens_out = _counted(response.usage)
        if tokens_in is None:  # a server that sends no usage: estimated, as before asking
            tokens_in = self.count_tokens(prompt)
        if tokens_out is None:  # the reply's own estimate (never 0, which the budget would
            # take for free), at most what the request allowed
            tokens_out = min(max_tokens, self.count_tokens([Message("assistant", text)]))
        return Reply(text, tokens_in, tokens_out, alternatives(getattr(choice, "logprobs", None)))

    def _openai_streamed(self, prompt: Sequence[Message], max_tokens: int,
                         on_text: Callable[[str], None]) -> "Reply":
        """The same request, streamed: `on_text` hears the answer so far after each piece.
        The usage comes in the last chunk where the server sends it (llama-cpp-python's does
        not): elsewhere tokens out are the pieces (servers send a token a chunk) and tokens
        in are estimated, as before any request."""
        stream = self.client.chat.completions.create(
            **self._chat(prompt, max_tokens), stream=True, stream_options={"include_usage": True})
        text, usage, finished, pieces = "", None, None, 0
        for chunk in stream:
            usage = chunk.usage or usage
            if chunk.choices:
                finished = chunk.choices[0].finish_reason or finished
                if chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                    pieces += 1
                    on_text(text)
        if finished is None:  # cut off: a partial answer must not pass for a whole one
            raise StreamCut("the server ended the stream before the answer finished (no "
                            "finish_reason; llama-cpp-python's server does this to a stream "
                            "when another request arrives: start it with "
                            "--interrupt_requests false)")
        return Reply(text, usage.prompt_tokens if usage else self.count_tokens(prompt),
                     usage.completion_tokens if usage else pieces, [])

    def _messages(self, prompt: Sequence[Message], max_tokens: int) -> dict[str, Any]:
        """A Messages API request's body, streamed or not: the system turns go on top."""
        system = "\n\n".join(m.content for m in prompt if m.role == "system")
        turns = [{"role": m.role, "content": m.content} for m in prompt if m.role != "system"]
        options: dict[str, Any] = {"system": system} if system else {}
        # no temperature: the Messages API (version 2026-10-21, which the SDK 2.x sends)
        # refuses every sampling parameter, so answers may vary; the cache keeps the first
        return {"model": self.endpoint.model, "messages": turns, "max_tokens": max_tokens,
                **options}

    def _anthropic(self, prompt: Sequence[Message], max_tokens: int) -> "Reply":
        response = self.client.messages.create(**self._messages(prompt, max_tokens))
        text = "".join(block.text for block in response.content
                       if getattr(block, "type", "") == "text")
        return Reply(text, response.usage.input_tokens, response.usage.output_tokens, [])

    def _anthropic_streamed(self, prompt: Sequence[Message], max_tokens: int,
                            on_text: Callable[[str], None]) -> "Reply":
        """The same request, streamed: `on_text` hears the text so far after each delta.
        The answer is whole only once `message_stop` arrives (its message carries the stop
        reason and the usage); a stream that ends before it was cut."""
        text, final = "", None
        with self.client.messages.stream(**self._messages(prompt, max_tokens)) as stream:
            for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text += event.delta.text
                    on_text(text)
                elif event.type == "message_stop":
                    final = event.message
        if final is None or final.stop_reason is None:
            raise StreamCut("the server ended the stream before the answer finished (no "
                            "message_stop); the request is asked again on the next run")
        return Reply(text, final.usage.input_tokens, final.usage.output_tokens, [])

    def _secret(self) -> str | None:
        try:
            return self.endpoint.key()
        except ConfigError:
            return None

    def _check_errors(self, answered: dict[int, Any], before: tuple[int, int]) -> None:
        """Too many of this batch's requests failed: stop (a climb), unless serving. Counted
        per batch, so failures long past do not fail every batch after them."""
        u, e = self.usage, self.endpoint
        requests, errors = u.requests - before[0], u.errors - before[1]
        if self.stop_on_errors and errors >= _MIN_ERRORS and \
                errors > e.max_error_rate * max(requests, _MIN_REQUESTS):
            raise ModelError(
                f"{e.reference} at {e.url} failed {errors} of {requests} requests "
                f"(last: {u.last_error})",
                fix="check the server and the key; lower [models] concurrency if it is "
                    "rate-limited, or raise [models] timeout_s / max_retries / max_error_rate; "
                    "answers already received are cached, so running again resumes",
                answered=answered)


class StreamCut(Exception):
    """A streamed answer ended without its finish (OpenAI's finish_reason, Anthropic's
    message_stop): what was heard is part of an answer, never the answer."""


_REFUSED = (401, 403, 404)  # a wrong key, no access, no such model: retries cannot help
_FIRST_RETRY_S, _LONGEST_BACKOFF_S = 0.5, 8.0  # the SDKs' backoff
_MOST_RETRY_AFTER_S = 120.0  # a server asking for a longer wait is not retried


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


def _counted(usage: Any) -> tuple[int | None, int | None]:
    """Tokens in and out from an OpenAI-style usage field; None for what it does not say."""
    if usage is None:
        return None, None
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


def _describe(error: Exception, secret: str | None = None) -> str:
    """The error for a message and the run's record, with the key taken out: some servers
    and proxies echo the key they refused in their error body."""
    status = getattr(error, "status_code", None)
    text = f"{type(error).__name__}" + (f" {status}" if status else "") + f": {error}"
    if secret and len(secret) >= 8:
        for piece in {secret, secret[:16], secret[-16:]}:
            text = text.replace(piece, "***")
    return text[:300]


_REMOTE: dict[Endpoint, RemoteModel] = {}


def remote_model(reference: str) -> RemoteModel:
    endpoint = endpoint_for(reference)
    if endpoint not in _REMOTE:
        _REMOTE[endpoint] = RemoteModel(endpoint)
    return _REMOTE[endpoint]


def spent(reference: str, before: dict[str, Any] | None, prices: Any) -> dict[str, Any] | None:
    """What a rung spent at its remote model: requests, failures, tokens from the server's
    usage fields and, where [costs] api prices the model, dollars. None for a local model."""
    if not is_remote(reference):
        return None
    model = remote_model(reference)
    now, before = model.usage.snapshot(), before or {}
    delta = {k: now[k] - before.get(k, 0) for k in ("requests", "errors", "tokens_in",
                                                    "tokens_out")}
    price = prices.api.get(model.endpoint.model)
    dollars = None if price is None else round(
        delta["tokens_in"] / 1e6 * price.input_per_million
        + delta["tokens_out"] / 1e6 * price.output_per_million, 6)
    return {"backend": model.endpoint.backend, "model": model.endpoint.model,
            "base_url": model.endpoint.url, "scoring": now["scoring"], **delta,
            "dollars": dollars, "latency": "remote: measured per request against the server"}


def usage_before(reference: str) -> dict[str, Any] | None:
    return remote_model(reference).usage.snapshot() if is_remote(reference) else None
