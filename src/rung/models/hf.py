"""The transformers backend: any causal LM that `from_pretrained` can load, GGUF included.

Scoring reuses work twice over. Prompts of one evaluation usually share a long prefix (the
instruction, and for few-shot the same demonstrations), so that prefix is encoded once and its
key/value cache is copied into every batch. Each example then costs only its own tokens, and
each candidate label only its own few tokens on top of the example's cache.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io

from typing import Any, Callable, Sequence

import torch
from transformers import (
    AutoModelForCausalLM, AutoTokenizer, DynamicCache, StoppingCriteriaList,
)
from transformers.utils import logging as hf_logging

from rung.data.example import Message
from rung.errors import ModelError
from rung.models.answers import AnswerStream, FirstLineDone, first_line
from rung.models.base import ChoiceScores, Generation
from rung.models.converted import source_of
from rung.models.registry import ModelRef, weights_fingerprint
from rung.models.tokens import encode_prompt, plain_text_bos, render_chat

MIN_SHARED_PREFIX = 8  # tokens; below this a shared cache is not worth its bookkeeping
_MARK = "\u2063RUNG\u2063"  # a string no template produces, to find where content goes


def load_tokenizer(ref: ModelRef, *, convert: bool = True) -> Any:
    """The model's tokenizer; a GGUF's from its converted folder (rung.models.converted)
    unless `convert` is off."""
    location, kwargs = source_of(ref, convert=convert)
    with contextlib.redirect_stderr(io.StringIO()):  # GGUF parsing draws a bar
        return AutoTokenizer.from_pretrained(location, **kwargs)


def load_causal_lm(ref: ModelRef, *, dtype: torch.dtype | None = None, convert: bool = True,
                   **kwargs: Any) -> Any:
    """The base weights as a plain transformers model, GGUF included (from its converted
    folder unless `convert` is off: rung.models.converted).

    GGUF weights are dequantised on load, yet transformers keeps marking the model as
    GGUF-quantised, and the Trainer refuses to train a model so marked; the mark is dropped,
    since what is in memory is ordinary floating point.
    """
    location, gguf = source_of(ref, convert=convert)
    with contextlib.redirect_stderr(io.StringIO()):  # GGUF dequantisation draws a bar
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **gguf, **kwargs)
    quantizer = getattr(model, "hf_quantizer", None)
    if gguf and quantizer is not None and "quantization_config" not in kwargs:
        quantizer.remove_quantization_config(model)
        model.config._is_quantized = False
    return model


class HFModel:
    streams = True  # generate takes on_text, to hear answers as they are made

    def __init__(self, ref: ModelRef) -> None:
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        self.name = ref.name
        self.ref = ref
        # the current GPU by its index, so a copy cached here stays on the GPU it loaded on
        # (under `accelerate launch`, the rank's own: device.select_device)
        self.device = torch.device("cuda", torch.cuda.current_device()) \
            if torch.cuda.is_available() else torch.device("cpu")
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self.tokenizer = load_tokenizer(ref)
            self.model = load_causal_lm(ref, dtype=dtype)
        except (OSError, ValueError) as err:
            raise ModelError(
                f"could not load model '{ref.name}' from {ref.location}: {err}",
                fix="check the folder holds a transformers model (config.json, weights)",
            ) from None
        # Soft prompts (prefix, prompt tuning) stay a PeftModel that prepends them; LoRA
        # weights are merged, so a tuned model costs nothing extra at inference.
        self.prompt_learning = False
        if ref.adapter:
            from peft import PeftModel

            tuned = PeftModel.from_pretrained(self.model, ref.adapter)
            self.prompt_learning = tuned.active_peft_config.is_prompt_learning
            self.model = tuned if self.prompt_learning else tuned.merge_and_unload()
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.end_of_turn = self._find_end_of_turn()
        self._bos = plain_text_bos(self.tokenizer)
        windows = [getattr(layer, "sliding_window", None) for layer in self._new_cache().layers]
        self._window = min((w for w in windows if w), default=None)  # Gemma 3: 512
        self._fingerprint: str | None = None
        # the shared prefix's cache is reused (False: every prompt encoded whole, to compare)
        self.share_prefix = True
        # transformers 5 renamed past_key_values to cache; older 5.x releases take only the old
        forward = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in forward else "past_key_values"

    # -- identity ---------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.ref)
        return self._fingerprint

    # -- prompts ----------------------------------------------------------------------------

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        return render_chat(self.tokenizer, messages, add_generation_prompt=add_generation_prompt)

    def _find_end_of_turn(self) -> str:
        """What the template writes after an assistant's answer (e.g. '<|im_end|>')."""
        if not self.tokenizer.chat_template:
            return "\n"
        full = self.render(
            [Message("user", "q"), Message("assistant", _MARK)], add_generation_prompt=False
        )
        tail = full[full.rfind(_MARK) + len(_MARK):]
        return tail.rstrip("\n ") or (self.tokenizer.eos_token or "\n")

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _encode_prompt(self, messages: Sequence[Message]) -> list[int]:
        return encode_prompt(self.tokenizer, messages, self._bos)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._encode_prompt(messages))

    # -- generation -------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(
        self, prompts: Sequence[Sequence[Message]], max_new_tokens: int = 64, batch_size: int = 8,
        on_text: Callable[[int, str], None] | None = None,
    ) -> list[Generation]:
        """Greedy answers. With a chat template an answer ends at the template's end-of-turn
        token; a base model's plain transcript has no such token, and the model may open its
        answer with a line break, so there an answer is its first non-blank line.

        As in scoring, the prefix every prompt shares (instruction, fixed demonstrations) is
        encoded once; each batch starts from a copy of its cache and encodes only its own
        tokens. Each row is then [shared prefix][padding][own tokens]: the mask hides the
        padding and positions come from the mask, so every token sits where it would without
        the shared cache.

        `on_text(i, text)` hears prompt i's answer grow as it is generated (`rung serve`
        streams it): each text extends the last one heard, and the last is the answer."""
        encoded = [self._encode_prompt(p) for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        plain = not self.tokenizer.chat_template
        stop_ids = {self.tokenizer.eos_token_id}
        if not plain:
            stop_ids.update(self._encode(self.end_of_turn)[:1])
        shared = self._shared_prefix(encoded, max_new_tokens)
        prefix = self._prefill(shared) if shared else None
        cached = len(shared) if prefix is not None else 0
        results: dict[int, Generation] = {}
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            width = cached + max(len(encoded[i]) - cached for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            ids[:, :cached] = torch.tensor(shared[:cached])
            mask[:, :cached] = 1
            for row, i in enumerate(batch):  # left padding keeps every prompt's end aligned
                own = encoded[i][cached:]
                ids[row, width - len(own):] = torch.tensor(own)
                mask[row, width - len(own):] = 1
            reuse = {}
            if prefix is not None:
                cache = copy.deepcopy(prefix)
                if len(batch) > 1:
                    cache.batch_repeat_interleave(len(batch))
                reuse = {self._cache_kw: cache}
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                eos_token_id=sorted(i for i in stop_ids if i is not None),
                stopping_criteria=StoppingCriteriaList([FirstLineDone(self.tokenizer, width)]
                                                       if plain else []),
                streamer=AnswerStream(self.tokenizer, batch, stop_ids, plain, on_text)
                if on_text is not None else None,
                **reuse,
            )
            for row, i in enumerate(batch):
                new = out[row, width:].tolist()
                kept = []
                for token in new:
                    if token in stop_ids:
                        break
                    kept.append(token)
                if plain:
                    text, used = first_line(self.tokenizer, kept)
                else:
                    text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
                    used = len(kept)
                results[i] = Generation(text, len(encoded[i]), used)
                if on_text is not None:
                    on_text(i, text)
        return [results[i] for i in range(len(encoded))]

    def _shared_prefix(self, encoded: list[list[int]], extra: int) -> list[int]:
        """The token prefix all prompts share, when reusing its cache pays and is exact:
        long enough, more than one prompt, no soft prompt owning the cache, and no sliding
        window that the padding between prefix and suffix could push real tokens out of
        (`extra`: tokens appended after the longest prompt)."""
        if not self.share_prefix or self.prompt_learning or len(encoded) < 2:
            return []
        longest = max(len(e) for e in encoded) + extra
        if self._window is not None and longest >= self._window:
            return []
        shared = _common_prefix(encoded)
        return shared if len(shared) >= MIN_SHARED_PREFIX else []

    # -- scoring ----------------------------------------------------------------------------

    @torch.inference_mode()
    def score_choices(
        self, prompts: Sequence[Sequence[Message]], choices: Sequence[str], batch_size: int = 8
    ) -> list[ChoiceScores]:
        encoded = [self._encode_prompt(p) for p in prompts]
        choice_ids = [self._encode(c + self.end_of_turn) for c in choices]
        if any(not c for c in choice_ids):
            raise ModelError("an empty label cannot be scored", fix="remove empty labels")
        if self.prompt_learning:  # soft prompts own the cache: score whole sequences
            rows = [self._score_whole(seq, choice_ids) for seq in encoded]
            lengths = [len(c) for c in choice_ids]
            return [ChoiceScores(r, len(e), lengths) for r, e in zip(rows, encoded)]
        longest = max(len(e) for e in encoded) + max(len(c) for c in choice_ids)
        if self._window is not None and longest >= self._window:
            # A sliding window counts cache slots, not positions, so the padding between a
            # short row and its choice would cost that row real tokens: one row per batch.
            batch_size = 1
        shared = _common_prefix(encoded) if len(encoded) > 1 else []
        prefix = self._prefill(shared) if len(shared) >= MIN_SHARED_PREFIX else None
        cached = len(shared) if prefix is not None else 0
        # Similar lengths batch together, so little of each batch is padding.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        logprobs: dict[int, list[float]] = {}
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            rows = self._score_batch([encoded[i] for i in batch], cached, prefix, choice_ids)
            logprobs.update(zip(batch, rows))
        lengths = [len(c) for c in choice_ids]
        return [ChoiceScores(logprobs[i], len(encoded[i]), lengths) for i in range(len(encoded))]

    def _new_cache(self) -> DynamicCache:
        """A cache whose sliding-window layers keep what they let go of until `crop`, so a
        choice's tokens can be cut back off even once a window is full."""
        cache = DynamicCache(config=self.model.config)
        cache.activate_past_recording()
        return cache

    def _prefill(self, ids: list[int]) -> DynamicCache | None:
        cache = self._new_cache()
        if not cache.is_croppable:  # e.g. recurrent layers: no reuse, score from scratch
            return None
        # only the cache is wanted: one logit row, not one per prefix token (Gemma's
        # vocabulary is 262k, so a full row per token costs more than the layers do)
        self.model(torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1,
                   **{self._cache_kw: cache})
        return cache

    def _score_batch(
        self,
        sequences: list[list[int]],
        cached: int,
        prefix: DynamicCache | None,
        choice_ids: list[list[int]],
    ) -> list[list[float]]:
        """Log-likelihood of each choice after each sequence; the first `cached` tokens of
        every sequence are the shared prefix already in `prefix`.

        The suffixes go in one right-padded forward. A choice's tokens then continue each row
        from its own last real token: the mask hides the padding between, and explicit
        position ids keep the rotary positions those tokens would have had without it.
        Only the logits that are scored are computed.
        """
        n = len(sequences)
        device = self.device
        lens = torch.tensor([len(s) - cached for s in sequences], device=device)
        width = int(lens.max())
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s[cached:] + [pad] * (width - len(s) + cached) for s in sequences], device=device)
        suffix_mask = (torch.arange(width, device=device)[None, :] < lens[:, None]).long()
        mask = torch.cat([torch.ones(n, cached, dtype=torch.long, device=device), suffix_mask], dim=1)
        cache = copy.deepcopy(prefix) if prefix is not None else self._new_cache()
        if prefix is not None and n > 1:
            cache.batch_repeat_interleave(n)
        positions = torch.arange(cached, cached + width, device=device)[None, :].expand(n, -1)
        last = lens - 1
        keep = torch.unique(last)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
            logits_to_keep=keep, **{self._cache_kw: cache},
        )
        column = torch.searchsorted(keep, last)
        first = torch.log_softmax(out.logits[torch.arange(n, device=device), column].float(), dim=-1)
        scores = [[first[row, c[0]].item() for c in choice_ids] for row in range(n)]
        for k, choice in enumerate(choice_ids):
            steps = len(choice) - 1
            if steps == 0:
                continue
            step_ids = torch.tensor([choice[:-1]] * n, device=device)
            step_mask = torch.cat([mask, torch.ones(n, steps, dtype=torch.long, device=device)], dim=1)
            step_pos = (cached + lens)[:, None] + torch.arange(steps, device=device)[None, :]
            step = self.model(
                input_ids=step_ids, attention_mask=step_mask, position_ids=step_pos,
                use_cache=True, **{self._cache_kw: cache},
            )
            logp = torch.log_softmax(step.logits.float(), dim=-1)
            targets = torch.tensor(choice[1:], device=device)
            gained = logp[:, torch.arange(steps, device=device), targets].sum(dim=1)
            for row in range(n):
                scores[row][k] += gained[row].item()
            _crop_to(cache, cached + width)
        return scores


    def _score_whole(self, sequence: list[int], choice_ids: list[list[int]]) -> list[float]:
        """Each choice after one prompt, as full sequences in one padded forward: the path
        for soft prompts, which prepend their own tokens or cache entries to every call."""
        rows = [sequence + c for c in choice_ids]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows],
                            device=self.device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -width:].float()
        logp = torch.log_softmax(logits, dim=-1)
        scores = []
        for row, choice in enumerate(choice_ids):
            at = torch.arange(len(sequence) - 1, len(sequence) - 1 + len(choice), device=self.device)
            scores.append(logp[row, at, torch.tensor(choice, device=self.device)].sum().item())
        return scores


def _crop_to(cache: DynamicCache, length: int) -> None:
    """Cut the cache back to its first `length` positions (transformers 5 takes a negative
    count of tokens to drop)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _common_prefix(sequences: list[list[int]]) -> list[int]:
    """Longest shared token prefix, always leaving each sequence at least one token."""
    shortest = min(len(s) for s in sequences)
    n = 0
    while n < shortest - 1 and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return sequences[0][:n]
