"""Count a model's tokens without loading its weights.

The audit needs token lengths of whole training conversations (chat template included, the
answer too) and the model's context length. Loading a tokenizer takes seconds; loading the
weights of even a small model takes much longer and is not needed for either.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from rung.data.example import Message
from rung.errors import ModelError
from rung.models.endpoint import is_remote
from rung.models.registry import ModelRef, in_process, resolve

Conversation = Sequence[Message]


@dataclass(frozen=True)
class TokenCounter:
    name: str
    context_length: int | None  # None when the model does not say
    count: Callable[[Sequence[Conversation]], list[int]]  # whole conversations, template included


def token_counter(reference: str, *, base_dir: Path | None = None) -> TokenCounter:
    """A counter for `reference` (alias, folder, .gguf file, hf: model, or in-process)."""
    model = in_process(reference)
    if model is not None:
        return TokenCounter(reference, getattr(model, "context_length", None),
                            lambda convs: [model.count_tokens(c) for c in convs])
    if is_remote(reference):  # its tokenizer is at the server: the backend's stated estimate
        from rung.models.remote import remote_model

        remote = remote_model(reference)
        return TokenCounter(reference, None, lambda convs: [remote.count_tokens(c) for c in convs])
    return _load(resolve(reference, base_dir=base_dir))


@lru_cache(maxsize=4)
def _load(ref: ModelRef) -> TokenCounter:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from rung.models.converted import source_of

    hf_logging.set_verbosity_error()
    try:  # a GGUF's converted folder: seconds faster (converting may fail as loading would)
        location, kwargs = source_of(ref)
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelError(f"could not load the tokenizer of '{ref.name}' from {ref.location}: "
                         f"{err}", fix="check models.small (or --model): the folder must hold a "
                         "tokenizer") from None

    bos = len(plain_text_bos(tokenizer))  # what the model is given before the text

    def count(conversations: Sequence[Conversation]) -> list[int]:
        texts = [render_chat(tokenizer, c) for c in conversations]
        encoded = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False) \
            if hasattr(tokenizer, "backend_tokenizer") else \
            [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return [bos + len(e) for e in encoded]

    return TokenCounter(ref.name, _context_length(ref, location, bool(kwargs)), count)


def render_chat(tokenizer: Any, conversation: Conversation, *,
                add_generation_prompt: bool = False) -> str:
    """The model's chat template, or for a base model without one a plain transcript."""
    turns = [{"role": m.role, "content": m.content} for m in conversation]
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(turns, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    text = "".join(f"{t['role'].capitalize()}: {t['content']}\n" for t in turns)
    return text + ("Assistant:" if add_generation_prompt else "")


def encode_prompt(tokenizer: Any, conversation: Conversation,
                  bos: list[int] | None = None) -> list[int]:
    """The token ids a prompt is asked with: the rendered conversation up to the answer's
    cue, after the BOS plain text needs (`bos`, when the caller already knows it). Serving
    (HFModel) and training on a model without a chat template (finetune.data) both encode
    through here, so the tune learns on exactly the ids it is later asked."""
    bos = plain_text_bos(tokenizer) if bos is None else bos
    text = render_chat(tokenizer, conversation, add_generation_prompt=True)
    return bos + tokenizer(text, add_special_tokens=False)["input_ids"]


def plain_text_bos(tokenizer: Any) -> list[int]:
    """The BOS token to put before a prompt rendered without a chat template, if any.

    A chat template writes the BOS its model wants into the text itself, so rendered prompts
    are encoded without special tokens. The plain transcript of a base model has no such
    token, yet a model that always saw one in training can fall apart without it: Gemma 3 270M
    (base) answered 'User: ...\nAssistant:' with a newline and then repeated the cue, and with
    its BOS answers the question. So plain text gets the BOS its tokenizer adds to plain text.
    """
    bos = tokenizer.bos_token_id
    if tokenizer.chat_template or bos is None:
        return []
    return [bos] if tokenizer("x")["input_ids"][:1] == [bos] else []


def _context_length(ref: ModelRef, location: str, gguf: bool) -> int | None:
    """From the model's config (a GGUF's converted folder has one), or the GGUF header
    (memory-mapped, no tensors read)."""
    if gguf:
        import gguf

        reader = gguf.GGUFReader(str(Path(ref.location) / ref.gguf_file))
        arch = reader.fields.get("general.architecture")
        if arch is None:
            return None
        name = bytes(arch.parts[arch.data[0]]).decode()
        field = reader.fields.get(f"{name}.context_length")
        return int(field.parts[field.data[0]][0]) if field is not None else None
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError):
        return None
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None) or getattr(getattr(config, "text_config", None), key, None)
        if isinstance(value, int):
            return value
    return None
