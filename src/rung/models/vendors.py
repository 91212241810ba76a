"""One attempt at one request, in each vendor's own shape: OpenAI's chat completions (OpenAI's
API and every OpenAI-compatible server) and Anthropic's Messages API, whole or streamed.

Each function builds the request body, sends it once on the SDK's client and reads the reply
into a `Reply` (text, tokens in and out, the first token's log-probabilities where the server
gives them). Apart from the client (remote.py) because what differs between the vendors is
only this; retries, the budget and the counters around an attempt are the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rung.data.example import Message
from rung.models.endpoint import Endpoint
from rung.models.labels import Reply, alternatives
from rung.models.usage import estimate_tokens


class StreamCut(Exception):
    """A streamed answer ended without its finish (OpenAI's finish_reason, Anthropic's
    message_stop): what was heard is part of an answer, never the answer."""


def new_client(e: Endpoint) -> Any:
    """The SDK's client, which never retries: rung does (RemoteModel._ask), so that every
    attempt is reserved and settled in the budget."""
    options = {"api_key": e.key() or "none", "timeout": e.timeout_s, "max_retries": 0}
    if e.backend == "openai":
        from openai import OpenAI

        return OpenAI(base_url=e.url, **options)
    from anthropic import Anthropic

    return Anthropic(base_url=e.url, **options)


def send(client: Any, e: Endpoint, prompt: Sequence[Message], max_tokens: int,
         top_logprobs: int, on_text: Callable[[str], None] | None) -> Reply:
    """One attempt at one request."""
    if e.backend == "openai" and on_text is not None:
        return _openai_streamed(client, e.model, prompt, max_tokens, on_text)
    if e.backend == "openai":
        return _openai(client, e.model, prompt, max_tokens, top_logprobs)
    if on_text is not None:
        return _anthropic_streamed(client, e.model, prompt, max_tokens, on_text)
    return _anthropic(client, e.model, prompt, max_tokens)


def _chat(model: str, prompt: Sequence[Message], max_tokens: int) -> dict[str, Any]:
    """An OpenAI chat request's body, streamed or not: greedy, seeded."""
    return {"model": model, "max_tokens": max_tokens, "temperature": 0,
            "seed": 0, "messages": [{"role": m.role, "content": m.content} for m in prompt]}


def _openai(client: Any, model: str, prompt: Sequence[Message], max_tokens: int,
            top_logprobs: int) -> Reply:
    """One chat request, whole. Tokens are the server's usage fields; a server that sends
    none (or leaves a count out) is counted by estimate, ~4 characters a token as before
    asking: the prompt for tokens in, the answer's text for tokens out (at most
    `max_tokens`), so the budget and the `remote` block never take an answer for free."""
    extra: dict[str, Any] = {}
    if top_logprobs:
        extra = {"logprobs": True, "top_logprobs": top_logprobs}
    response = client.chat.completions.create(**_chat(model, prompt, max_tokens), **extra)
    choice = response.choices[0]
    text = choice.message.content or ""
    tokens_in, tokens_out = _counted(response.usage)
    if tokens_in is None:  # a server that sends no usage: estimated, as before asking
        tokens_in = estimate_tokens(prompt)
    if tokens_out is None:  # the reply's own estimate (never 0, which the budget would
        # take for free), at most what the request allowed
        tokens_out = min(max_tokens, estimate_tokens([Message("assistant", text)]))
    return Reply(text, tokens_in, tokens_out, alternatives(getattr(choice, "logprobs", None)))


def _openai_streamed(client: Any, model: str, prompt: Sequence[Message], max_tokens: int,
                     on_text: Callable[[str], None]) -> Reply:
    """The same request, streamed: `on_text` hears the answer so far after each piece.
    The usage comes in the last chunk where the server sends it (llama-cpp-python's does
    not): elsewhere tokens out are the pieces (servers send a token a chunk) and tokens
    in are estimated, as before any request."""
    stream = client.chat.completions.create(
        **_chat(model, prompt, max_tokens), stream=True, stream_options={"include_usage": True})
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
    return Reply(text, usage.prompt_tokens if usage else estimate_tokens(prompt),
                 usage.completion_tokens if usage else pieces, [])


def _counted(usage: Any) -> tuple[int | None, int | None]:
    """Tokens in and out from an OpenAI-style usage field; None for what it does not say."""
    if usage is None:
        return None, None
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


def _messages(model: str, prompt: Sequence[Message], max_tokens: int) -> dict[str, Any]:
    """A Messages API request's body, streamed or not: the system turns go on top."""
    system = "\n\n".join(m.content for m in prompt if m.role == "system")
    turns = [{"role": m.role, "content": m.content} for m in prompt if m.role != "system"]
    options: dict[str, Any] = {"system": system} if system else {}
    # no temperature: the Messages API (version 2026-10-21, which the SDK 2.x sends)
    # refuses every sampling parameter, so answers may vary; the cache keeps the first
    return {"model": model, "messages": turns, "max_tokens": max_tokens, **options}


def _anthropic(client: Any, model: str, prompt: Sequence[Message], max_tokens: int) -> Reply:
    response = client.messages.create(**_messages(model, prompt, max_tokens))
    text = "".join(block.text for block in response.content
                   if getattr(block, "type", "") == "text")
    return Reply(text, response.usage.input_tokens, response.usage.output_tokens, [])


def _anthropic_streamed(client: Any, model: str, prompt: Sequence[Message], max_tokens: int,
                        on_text: Callable[[str], None]) -> Reply:
    """The same request, streamed: `on_text` hears the text so far after each delta.
    The answer is whole only once `message_stop` arrives (its message carries the stop
    reason and the usage); a stream that ends before it was cut."""
    text, final = "", None
    with client.messages.stream(**_messages(model, prompt, max_tokens)) as stream:
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
