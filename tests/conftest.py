"""Shared fixtures: a fake model with canned answers, a tiny real Llama, task folders.

The fake model sits at the edge we do not want to test (a model's knowledge); the tiny Llama
is a real transformers model built here from the SmolLM2 tokenizer with random weights, so
every code path the packaged model takes runs in seconds and offline.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest

from rung.data.example import Message
from rung.models.base import ChoiceScores, Generation
from rung.models.registry import register_model, resolve, unregister_model

# Tests never reach a hub: a load that tried would fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELS = ["BILLING", "BUG", "FEATURE"]


@dataclass
class FakeModel:
    """Answers from a table (input text -> answer); anything else gets `default`.

    `calls` records every request so tests can check what the pipeline sent.
    """

    answers: dict[str, str] = field(default_factory=dict)
    default: str = "BILLING"
    rule: Callable[[Sequence[Message]], str | None] | None = None  # consulted first
    name: str = "fake"
    calls: list[tuple[str, list[list[Message]]]] = field(default_factory=list)
    streams: bool = False  # generate tells on_text each answer word by word, as HFModel does
    cut_after: int | None = None  # words streamed before the request fails (a cut stream)

    @property
    def fingerprint(self) -> str:
        return "fake-" + str(len(self.answers))

    def _answer(self, prompt: Sequence[Message]) -> str:
        if self.rule is not None and (answer := self.rule(prompt)) is not None:
            return answer
        return self.answers.get(prompt[-1].content, self.default)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def generate(self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64,
                 on_text: Callable[[int, str], None] | None = None) -> list[Generation]:
        self.calls.append(("generate", [list(p) for p in prompts]))
        answers = [self._answer(p) for p in prompts]
        if on_text is not None:
            for i, answer in enumerate(answers):
                words = answer.split(" ")
                for n in range(1, min(len(words), self.cut_after or len(words)) + 1):
                    on_text(i, " ".join(words[:n]))
        if self.cut_after is not None:
            return [Generation("", 0, 0, error=True) for _ in prompts]
        return [Generation(a, self.count_tokens(p), 1) for a, p in zip(answers, prompts)]

    def score_choices(self, prompts: Sequence[Sequence[Message]], choices: Sequence[str]) -> list[ChoiceScores]:
        self.calls.append(("score", [list(p) for p in prompts]))
        out = []
        for p in prompts:
            answer = self._answer(p)
            logprobs = [0.0 if c == answer else -10.0 - i for i, c in enumerate(choices)]
            out.append(ChoiceScores(logprobs, self.count_tokens(p), [1] * len(choices)))
        return out


@pytest.fixture
def fake_model():
    model = FakeModel()
    register_model("fake", model)
    yield model
    unregister_model("fake")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    ref = resolve("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(ref.location, gguf_file=ref.gguf_file)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def ticket_records(n_per_label: int = 20) -> list[dict]:
    """Distinct, labelled tickets in OpenAI chat format, with a customer group key."""
    records = []
    for i in range(n_per_label):
        for j, label in enumerate(LABELS):
            text = f"ticket {i} about {label.lower()} number {i * 7 + j}"
            records.append({
                "messages": [{"role": "user", "content": text},
                             {"role": "assistant", "content": label}],
                "customer": f"c{(i * len(LABELS) + j) % 17}",
            })
    return records


def finetune_table(**settings: object) -> str:
    """A [finetune] table for rung.toml from keyword settings (JSON values are TOML values)."""
    return "\n[finetune]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())


LLM_ONLY = {"skip": ["classifier"]}  # the tickets name their label: TF-IDF gets them all


def write_task(folder: Path, *, model: str = "fake", records: list[dict] | None = None,
               extra: str = "", group_key: bool = True, ladder: dict | None = None,
               fractions: tuple[float, float, float] | None = None) -> Path:
    """A complete task folder: tickets.jsonl + rung.toml. `ladder` is its [ladder] table;
    by default the classifier rung is left out, so the LLM rungs are what a test climbs.
    `fractions` (train, val, test) for a test whose few records need a bigger held-out share."""
    folder.mkdir(parents=True, exist_ok=True)
    records = ticket_records() if records is None else records
    (folder / "tickets.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    split = ('[split]\n' + ('group_key = "customer"\n' if group_key else "")
             + ("train = {}\nval = {}\ntest = {}\n".format(*fractions) if fractions else ""))
    table = LLM_ONLY if ladder is None else ladder
    ladder_toml = "[ladder]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
    (folder / "rung.toml").write_text(textwrap.dedent(f"""\
        [task]
        name = "tiny-tickets"
        kind = "classification"
        instruction = "Classify the ticket as BILLING, BUG or FEATURE."
        labels = {json.dumps(LABELS)}
        data = "tickets.jsonl"
        metric = "accuracy"
        target = 0.9
        seed = 7

        {split}
        [models]
        small = "{model}"

        {ladder_toml}
        [few_shot]
        k = [3, 6]

        [eval]
        bootstrap = 200
        latency_samples = 2
        """) + extra)
    return folder / "rung.toml"


@pytest.fixture
def task_dir(tmp_path) -> Path:
    """A fresh task folder per test, so every test has its own .rung store."""
    return tmp_path / "task"


def fuzz_settings(default: int = 40):
    """Hypothesis settings for the fuzz tests: a bounded, repeatable run inside `make test`;
    RUNG_FUZZ_EXAMPLES=N runs N random examples per test instead (say 5000, for an hour)."""
    from hypothesis import HealthCheck, settings

    wanted = os.environ.get("RUNG_FUZZ_EXAMPLES")
    return settings(max_examples=int(wanted) if wanted else default, deadline=None,
                    derandomize=not wanted, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


def free_port() -> int:
    """A loopback port nothing listens on now, for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, process: Any, log: Path, timeout_s: float = 120) -> None:
    """Until `url` answers (a server a test started in `process`, a Popen): RuntimeError
    with the end of its log if it exits or takes longer than `timeout_s`."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the server at {url} did not start:\n"
                                   + log.read_text()[-3000:]) from None
            time.sleep(0.2)

