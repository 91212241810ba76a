"""An HTTP-level FAKE of the vendors' APIs, on loopback, for what no local server can show:
Anthropic's Messages API itself, 429s with Retry-After, 500s and timeouts.

It speaks real HTTP to the real SDKs (nothing in rung or the SDKs is patched): POST
/v1/messages (Anthropic) and POST /v1/chat/completions (OpenAI). Each request is recorded
(time, path, headers, body). `script` is a queue of (status, headers, delay_s[, error
message]) to play before
answering normally; the normal answer is `answer(request_body) -> text`, streamed a word a
chunk when the request asks for a stream (in each vendor's own event shape). With
`send_usage` off, OpenAI answers come without their `usage` field, as some servers send them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _words(text: str) -> list[str]:
    """The pieces a streamed answer comes in: its words, each but the first after a space."""
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]


@dataclass
class Recorded:
    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeVendorAPI:
    answer: Callable[[dict[str, Any]], str] = lambda body: "BILLING"
    script: deque = field(default_factory=deque)  # (status, headers, delay_s) to play first
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    cut_streams: bool = False  # end streamed answers early, without a finish_reason
    send_usage: bool = True  # off: OpenAI answers carry no usage field

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeVendorAPI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(Recorded(time.monotonic(), self.path,
                                              {k.lower(): v for k, v in self.headers.items()},
                                              body))
                if fake.script:  # (status, headers, delay_s[, error message])
                    status, headers, delay, *said = fake.script.popleft()
                    time.sleep(delay)
                    if status != 200:
                        message = said[0] if said else f"{status}"
                        self._send(status, {"error": {"type": "fake", "message": message}},
                                   headers)
                        return
                text = fake.answer(body)
                if body.get("stream") and self.path.endswith("/messages"):
                    self._send_events(self._anthropic_events(body, text))
                    return
                if body.get("stream"):
                    self._send_events(self._openai_events(body, text))
                    return
                if self.path.endswith("/messages"):
                    self._send(200, {
                        "id": "msg_fake", "type": "message", "role": "assistant",
                        "model": body.get("model"), "stop_reason": "end_turn",
                        "stop_sequence": None, "content": [{"type": "text", "text": text}],
                        "usage": {"input_tokens": 11, "output_tokens": 2}})
                else:  # OpenAI returns the first token's alternatives when asked
                    logprobs = None
                    if body.get("logprobs"):
                        first = {"token": text, "logprob": -0.05, "bytes": None,
                                 "top_logprobs": [{"token": text, "logprob": -0.05,
                                                   "bytes": None}]}
                        logprobs = {"content": [first], "refusal": None}
                    usage = {"usage": {"prompt_tokens": 11, "completion_tokens": 2,
                                       "total_tokens": 13}} if fake.send_usage else {}
                    self._send(200, {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                        "model": body.get("model"), "choices": [{
                            "index": 0, "finish_reason": "stop", "logprobs": logprobs,
                            "message": {"role": "assistant", "content": text}}], **usage})

            def _openai_events(self, body: dict, text: str) -> list[tuple[str | None, dict]]:
                """OpenAI's chunks, a word each; with `cut_streams`, the stream ends as
                llama-cpp-python's does when it interrupts one: [DONE], no finish_reason."""
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                        "created": 0, "model": body.get("model")}
                chunks = [{**base, "choices": [{"index": 0, "delta": {"content": w},
                                                "finish_reason": None}]}
                          for w in _words(text)[:2 if fake.cut_streams else None]]
                if not fake.cut_streams:
                    chunks.append({**base, "choices": [{"index": 0, "delta": {},
                                                        "finish_reason": "stop"}]})
                    chunks.append({**base, "choices": [], "usage": {
                        "prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}})
                return [(None, chunk) for chunk in chunks]

            def _anthropic_events(self, body: dict, text: str) -> list[tuple[str | None, dict]]:
                """Anthropic's named events, a word a text delta; with `cut_streams`, the
                stream stops after two deltas, before message_delta and message_stop."""
                start = {"type": "message_start", "message": {
                    "id": "msg_fake", "type": "message", "role": "assistant",
                    "model": body.get("model"), "content": [], "stop_reason": None,
                    "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}}
                events = [start, {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}]
                events += [{"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": w}}
                           for w in _words(text)[:2 if fake.cut_streams else None]]
                if not fake.cut_streams:
                    events += [{"type": "content_block_stop", "index": 0},
                               {"type": "message_delta", "usage": {"output_tokens": 2},
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
                               {"type": "message_stop"}]
                return [(event["type"], event) for event in events]

            def _send_events(self, events: list[tuple[str | None, dict]]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for name, data in events:
                    head = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                if not events or events[0][0] is None:  # OpenAI's stream ends with [DONE]
                    self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
