"""Models a team already runs, over HTTP: `openai:MODEL` (OpenAI's API, or any OpenAI-
compatible server: vLLM, TGI, Ollama, a llama.cpp server, LM Studio, Together, Groq, Azure,
by `base_url`) and `anthropic:MODEL` (Anthropic's Messages API).

Both sit behind the same two operations as an in-process model. Generation is one chat
request per prompt. Classification scores labels from the token log-probabilities the server
returns for the first answer token ("logprobs": OpenAI, vLLM and llama.cpp serve them); where
a server returns none (Anthropic never does), the model is asked to answer with one label and
its words are parsed ("parsed"), an answer that is no label counting as a format failure.

Requests go out `concurrency` at a time on threads (the official SDK clients are thread-safe).
rung retries 429s, 408s, 409s, 5xx, timeouts and cut connections itself (retry.py says when
and how long to wait), each attempt within the per-request timeout: so `--budget` reserves
and settles every attempt, not only the last (a retry the SDK made inside one call was never
counted). A request that still fails is that example's error, is never cached, and once more
than `max_error_rate` of the requests have failed the climb stops with the last error.

This module is what is the same for both vendors: the batch, the attempts around one request
and their accounting, and one shared model per endpoint with what it has spent. Where a
model answers is endpoint.py; one attempt in each vendor's shape is vendors.py; token
estimates and the usage counters are usage.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rung.data.example import Message
from rung.errors import ConfigError, ModelError
from rung.models import vendors
from rung.models.base import ChoiceScores, Generation
from rung.models.budget import BudgetReached, current_budget
from rung.models.endpoint import Endpoint, endpoint_for, is_remote
from rung.models.labels import FLOOR, Reply, answer_budget, label_scores, parsed_scores, \
    with_label_rule
from rung.models.retry import REFUSED, describe, retry_wait
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
                self._client = vendors.new_client(self.endpoint)
        return self._client

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
                reply = vendors.send(self.client, self.endpoint, prompt, max_tokens,
                                     top_logprobs, None if on_text is None else listen)
            except Exception as error:  # noqa: BLE001 - this attempt's error
                status = getattr(error, "status_code", None)
                if budget:
                    budget.settle(reserved, self.endpoint.model,
                                  *((0, 0) if status else (most_tokens(prompt), max_tokens)))
                described = describe(error, self._secret())
                wait = None if heard else retry_wait(self.endpoint.backend, error, attempt)
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

    def _failed(self, described: str, status: int | None = None) -> None:
        """An example whose request failed after its retries: counted, and a refusal no
        retry mends (a wrong key, no access, no such model) stops the rest of its batch."""
        with self._lock:
            self.usage.requests += 1
            self.usage.errors += 1
            self.usage.last_error = described
            if status in REFUSED and self._refused is None:
                self._refused = ModelError(
                    f"{self.endpoint.reference} at {self.endpoint.url} refused the "
                    f"request ({described}); no retry changes that",
                    fix="check the key (its variable: [models."
                        f"{self.endpoint.backend}] api_key_env) and the model's name")

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


# -- one model per endpoint, shared by every rung of a climb, and what each rung spent at it --

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
