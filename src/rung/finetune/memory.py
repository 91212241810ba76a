"""How much memory a fine-tune needs, before it starts, and how much it took, after.

Running out of memory mid-training is the commonest fine-tuning blocker (seeds), so `rung
estimate` sizes full, LoRA and QLoRA from a model's shape, and every tune records its
measured peak beside the estimate. The seeds' rule of thumb (full ~4x the model) counts
weights, gradients and optimizer states only; for small models, long sequences and big
vocabularies the activations dominate, so they are counted tensor by tensor, as autograd keeps
them for a Llama block (checked with saved-tensor hooks; measured peaks in
benchmarks/memory_estimate.py): per token, each RMSNorm's fp32 input and 1/rms (and its
normalised input when its weight trains), the roped q, k, v and attention output plus the
fp32 log-sum-exp (SDPA keeps no seq x seq matrix), SwiGLU's gate, silu(gate) and up, the
projections' inputs their weight gradients need, and for the loss three fp32 token x vocab
buffers, often the largest single term (SmolLM2's vocabulary is 49k) where the LM head runs
at every position; a tune's head runs at the answer positions only, or TRL's chunked head
a tile at a time (fit.logit_positions says how many).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rung.errors import ModelError

Method = Literal["full", "lora", "qlora"]
SEEDS_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# optimizer: (states, scratch copies at the step) per trainable parameter; foreach AdamW
# (torch's CUDA default outside Trainer) builds one state-sized list before its update
_OPTIM = {"adamw": (2, 0), "adamw_foreach": (2, 1), "sgd": (0, 0)}
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit weight, 8-bit absmax per 64, fp32 per 256 absmax
_ACCEPTED = ("a size like 7B or 135M, a config.json or model folder, a .gguf file, "
             "or a model alias")


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on: parameter count and the transformer's dimensions."""

    parameters: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tie_embeddings: bool
    head_dim: int = 0  # 0: hidden // heads (Gemma sets its own)
    name: str = ""

    @property
    def q_dim(self) -> int:
        return self.heads * (self.head_dim or self.hidden // self.heads)

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.head_dim or self.hidden // self.heads)

    def projections(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer in a block, by its usual module name."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_parameters(self) -> int:
        """Parameters in the blocks' projections: what QLoRA quantises to 4 bits."""
        return self.layers * sum(a * b for a, b in self.projections().values())


def llama_shape(layers: int, hidden: int, intermediate: int, heads: int, kv_heads: int,
                vocab: int, tie_embeddings: bool, head_dim: int = 0, name: str = "") -> ModelShape:
    """A Llama-family shape, its parameters counted exactly (projections, norms, embeddings)."""
    shape = ModelShape(0, layers, hidden, intermediate, heads, kv_heads, vocab, tie_embeddings,
                       head_dim, name)
    embeddings = vocab * hidden * (1 if tie_embeddings else 2)
    return replace(shape, parameters=shape.linear_parameters + (2 * layers + 1) * hidden
                   + embeddings)


def shape_from_size(parameters: float, *, vocab: int = 32000, name: str = "") -> ModelShape:
    """A plausible Llama-2-like shape for a bare size. Assumed ratios (those of Llama 2 7B and
    13B): hidden = 128 x layers, SwiGLU MLP of 8/3 x hidden rounded up to 256, heads of 128
    (64 below hidden 2048), as many KV heads as heads, untied embeddings, 32k vocabulary. The
    depth is the one whose count comes closest: 7B gives Llama 2 7B's 32 x 4096 x 11008."""
    def build(layers: int) -> ModelShape:
        hidden = 128 * layers
        heads = hidden // (128 if hidden >= 2048 else 64)
        return llama_shape(layers, hidden, math.ceil(hidden * 8 / 3 / 256) * 256, heads, heads,
                           vocab, False, name=name)
    return min((build(n) for n in range(1, 161)), key=lambda s: abs(s.parameters - parameters))


def shape_from_config(config: dict[str, Any] | Any, *, name: str = "") -> ModelShape:
    """From a transformers config (object or its config.json dict); multimodal configs give
    their text model. Keys follow Llama's, with GPT-2's names as fallbacks."""
    raw = config if isinstance(config, dict) else config.to_dict()
    raw = raw.get("text_config") or raw

    def get(*keys: str, default: Any = None) -> Any:
        return next((raw[k] for k in keys if raw.get(k) is not None), default)

    hidden = get("hidden_size", "n_embd", "d_model")
    layers = get("num_hidden_layers", "n_layer", "num_layers")
    heads = get("num_attention_heads", "n_head")
    vocab = get("vocab_size")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, heads, vocab)):
        raise ModelError(f"config of '{name or 'model'}' lacks hidden_size, num_hidden_layers,"
                         " num_attention_heads or vocab_size",
                         fix="give a decoder model's config.json, or a size like 7B")
    return llama_shape(layers, hidden, get("intermediate_size", "n_inner", default=4 * hidden),
                       heads, get("num_key_value_heads", default=heads), vocab,
                       bool(get("tie_word_embeddings", default=False)),
                       get("head_dim", default=0) or 0, name)


def shape_from_gguf(path: str | Path) -> ModelShape:
    """From a GGUF header, memory-mapped: no tensor data is read, so no dequantising. Parsing
    the header takes GGUFReader seconds (Gemma's 262k-token vocabulary is read entry by entry),
    so a file's shape is kept for as long as the file is unchanged."""
    stat = Path(path).stat()
    try:
        return _gguf_shape(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    except (ValueError, IndexError, KeyError) as err:  # gguf's words for a file it cannot parse
        raise ModelError(f"{path} is not a GGUF file rung can read ({err})",
                         fix="give a .gguf model file, its config.json, or a size like 7B") from None


@functools.lru_cache(maxsize=16)
def _gguf_shape(path: str, size: int, mtime_ns: int) -> ModelShape:
    import gguf

    reader = gguf.GGUFReader(path)

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        value = f.parts[f.data[0]]
        return bytes(value).decode() if f.types[0] == gguf.GGUFValueType.STRING else int(value[0])

    arch = field("general.architecture")
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    dims = [field(f"{arch}.{k}") for k in ("block_count", "embedding_length",
                                          "feed_forward_length", "attention.head_count")]
    vocab = field(f"{arch}.vocab_size") or (len(tokens.data) if tokens else None)
    if None in dims or vocab is None:
        raise ModelError(f"{path} does not state its {arch} architecture in full",
                         fix="give the model's config.json, or a size like 7B")
    return ModelShape(sum(int(t.n_elements) for t in reader.tensors), *dims,
                      field(f"{arch}.attention.head_count_kv") or dims[3], vocab,
                      "output.weight" not in {t.name for t in reader.tensors},
                      field(f"{arch}.attention.key_length") or 0, Path(path).name)


def shape_for(reference: str, *, base_dir: Path | None = None) -> ModelShape:
    """A size ("7B", "135M", "1.5b"), a config.json or model folder, a .gguf file, or
    anything the model registry resolves (alias, adapter folder, hf:org/name)."""
    size = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmbt])\s*", reference, re.IGNORECASE)
    if size:
        scale = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[size[2].lower()]
        if float(size[1]) * scale < 1e6:
            raise ModelError(f"'{reference}' is too small a model to size",
                             fix="give a size of a million parameters or more, like 135M or 7B")
        return shape_from_size(float(size[1]) * scale, name=reference.strip().upper())
    path = Path(reference).expanduser()
    if path.suffix == ".json":
        if not path.is_file():
            raise ModelError(f"no such file: {path}", fix=f"give {_ACCEPTED}")
        return shape_from_config(_json_file(path), name=reference)
    from rung.models.registry import ALIASES, resolve

    try:
        ref = resolve(reference, base_dir=base_dir)
    except ModelError as err:
        if reference in ALIASES:
            raise  # a known alias whose package is missing: its fix says what to install
        raise ModelError(f"cannot size '{reference}': {err.message}",
                         fix=f"give {_ACCEPTED} ({', '.join(sorted(ALIASES))})") from None
    if ref.gguf_file:
        return replace(shape_from_gguf(Path(ref.location) / ref.gguf_file), name=reference)
    return shape_from_config(_json_file(Path(ref.location) / "config.json"), name=reference)


def _json_file(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path} is not JSON: {getattr(err, 'msg', err)}",
                         fix="give a model's config.json as transformers writes it, or a size "
                             "like 7B") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path} is not a JSON object", fix="give a model's config.json")
    return config


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step. Each pool is at its largest; `total` is the step's peak,
    below the pools' sum because backward frees activations as it makes gradients. The peak
    comes either as backward starts (weights + optimizer + activations + overhead, the first
    gradients) or at the optimizer step (weights + gradients + optimizer + overhead, the
    step's scratch); DDP's `buckets` are held at both. `peak_at` says which."""

    method: str
    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int
    total: int
    trainable_parameters: int
    peak_at: str
    # DDP's gradient buckets, a gradient-sized copy each rank holds throughout (accelerate
    # leaves gradient_as_bucket_view off); 0 on one device
    buckets: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LOGIT_COPIES = 3  # fp32 token x vocab: log-softmax kept for backward, its gradient, the logits'


def estimate_memory(shape: ModelShape, *, method: Method = "lora", seq_len: int = 512,
                    batch_size: int = 4, lora_rank: int = 16,
                    lora_targets: tuple[str, ...] | list[str] = SEEDS_TARGETS,
                    lora_dropout: float = 0.05, dtype: str = "bf16", optimizer: str = "adamw",
                    gradient_checkpointing: bool | None = None, master_weights: bool = False,
                    device: str = "cuda", padded: bool = False,
                    logit_tokens: int | None = None, adapter_dtype: str | None = None,
                    data_parallel: bool = False) -> MemoryEstimate:
    """Peak bytes of a steady training step (optimizer states exist) of `method`.

    It assumes what transformers, PEFT and torch do by default: weights, gradients and
    activations in `dtype`, AdamW fused (Trainer's default: in place, no scratch) with its two
    states in the parameters' dtype (`master_weights` adds an fp32 copy and fp32 states, as
    apex/DeepSpeed mixed precision does); adapters in `adapter_dtype`, and under QLoRA the
    unquantised parameters in fp32 (prepare_model_for_kbit_training, which also turns
    gradient checkpointing on: the default here for QLoRA only); SDPA attention (no seq x
    seq matrix); `padded` batches make transformers expand grouped KV heads; `device` sets
    dropout's mask width;
    `logit_tokens` is how many positions the LM head runs at (all, unless a loss asks for
    fewer, as rung's answer-only loss and TRL's chunked head do: fit.logit_positions).
    `adapter_dtype`: the adapters' (and so their gradients' and AdamW states') dtype, fp32
    as PEFT makes them, except QLoRA's under bf16, which TRL casts to bf16 (the default
    follows that). `data_parallel`: one of several DDP ranks, which each hold a
    gradient-sized bucket copy besides the gradients."""
    if adapter_dtype is None:
        adapter_dtype = "bf16" if method == "qlora" and dtype == "bf16" else "fp32"
    if method not in ("full", "lora", "qlora") or dtype not in _BYTES or optimizer not in _OPTIM \
            or adapter_dtype not in _BYTES:
        raise ModelError(f"cannot estimate method={method!r} dtype={dtype!r} optimizer="
                         f"{optimizer!r} adapter_dtype={adapter_dtype!r}",
                         fix="method full|lora|qlora, dtype and adapter_dtype bf16|fp16|fp32, "
                             f"optimizer {'|'.join(_OPTIM)}")
    proj = shape.projections()
    targets = list(proj) if "all-linear" in lora_targets else list(lora_targets)
    if method != "full" and (not targets or set(targets) - set(proj)):
        raise ModelError(f"unknown LoRA target modules {sorted(set(targets) - set(proj))}",
                         fix=f"name some of {', '.join(proj)} (or all-linear)")
    d, f, tokens, h, i = _BYTES[dtype], 4, seq_len * batch_size, shape.hidden, shape.intermediate
    states, scratch_copies = _OPTIM[optimizer]
    if method == "full":
        trainable = shape.parameters
        weights = gradients = trainable * d
        state_bytes = 4 if master_weights else d
        master = 4 if master_weights and d < 4 else 0
        optimizer_bytes = trainable * (states * state_bytes + master)
        gradient_bytes = 4 if master_weights else d  # fp32 weights' gradients are fp32
    else:  # adapters: rank x (in + out) per target and layer, in adapter_dtype
        a = _BYTES[adapter_dtype]
        trainable = shape.layers * sum(lora_rank * sum(proj[t]) for t in targets)
        frozen = shape.parameters * d if method == "lora" else int(
            shape.linear_parameters * NF4_BYTES) + (shape.parameters - shape.linear_parameters) * f
        weights, gradients, state_bytes = frozen + trainable * a, trainable * a, a
        optimizer_bytes = trainable * states * a
        gradient_bytes = a

    # Per token and block, what autograd keeps for backward (module docstring).
    norm = f * h + f + (d * h if method == "full" else 0)  # fp32 input, 1/rms, normalised x
    kv = shape.q_dim if padded and shape.kv_heads < shape.heads else shape.kv_dim
    attention = d * (2 * shape.q_dim + 2 * kv) + f * shape.heads  # q, k, v, output; logsumexp
    block = 2 * norm + attention + 3 * d * i + _projection_inputs(
        shape, method, targets, lora_rank, lora_dropout, d, device)
    checkpointing = method == "qlora" if gradient_checkpointing is None else gradient_checkpointing
    if checkpointing:  # each block's input (an fp32 residual under QLoRA), one block recomputed
        blocks = shape.layers * (f if method == "qlora" else d) * h + block
    else:
        blocks = shape.layers * block
    head = norm + (d * h if method == "full" else 0)  # final norm, lm_head's input
    logits = f * shape.vocab * (tokens if logit_tokens is None else logit_tokens)
    activations = tokens * (blocks + head) + LOGIT_COPIES * logits
    if method != "full" and d != _BYTES[adapter_dtype]:
        activations += trainable * d  # autocast's low-precision copies of the adapters
    # lm_head's gradient comes once the loss's buffers but one are freed
    first_gradients = max(shape.vocab * h * d - (LOGIT_COPIES - 1) * logits, 0) \
        if method == "full" else 0
    scratch = scratch_copies * trainable * state_bytes
    buckets = trainable * gradient_bytes if data_parallel else 0
    backward = weights + optimizer_bytes + activations + first_gradients + buckets
    step = weights + gradients + optimizer_bytes + scratch + buckets
    return MemoryEstimate(method, weights, gradients, optimizer_bytes, activations,
                          first_gradients if backward >= step else scratch, max(backward, step),
                          trainable, "backward" if backward >= step else "optimizer step",
                          buckets)


def _projection_inputs(shape: ModelShape, method: str, targets: list[str], rank: int,
                       dropout: float, d: int, device: str) -> int:
    """Bytes per token and layer of the projections' inputs kept for weight gradients.

    Full: the two norms' outputs and the SwiGLU product (o_proj reads the attention output,
    already kept). LoRA: frozen layers keep nothing, lora_A keeps its input: shared when it is
    the very tensor, one copy per target when PEFT casts it to the fp32 adapter's dtype
    (autocast then keeps a copy in `dtype`) or dropout makes a new one, whose mask costs one
    byte on CUDA and a full fp32 element on CPU; lora_B keeps lora_A's rank-wide output."""
    h, i = shape.hidden, shape.intermediate
    if method == "full":
        return d * (2 * h + i)
    proj = shape.projections()
    mask = 1 if device == "cuda" else 4
    if dropout > 0 or d != 4:
        per_target = d + (mask if dropout > 0 else 0)
        return sum(proj[t][0] * per_target + rank * d for t in targets)
    groups = [("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"), ("down_proj",)]
    shared = sum(proj[g[0]][0] * d for g in groups if set(g) & set(targets))
    return shared + len(targets) * rank * d


def serving_memory(shape: ModelShape, tokens: float, *, dtype: str = "bf16") -> int:
    """Bytes to answer one request of `tokens` (prompt and answer): the weights and the KV
    cache the request fills. Batching more requests adds a KV cache each; generation keeps
    logits for the last position only, so they are left out."""
    d = _BYTES[dtype]
    return shape.parameters * d + int(2 * shape.layers * shape.kv_dim * tokens * d)


def seeds_header(lora_rank: int = 16) -> list[str]:
    return ["Model Size", "Full FT", f"LoRA (r={lora_rank})", "QLoRA (4-bit)"]


@dataclass(frozen=True)
class SeedsRow:
    """One row of the seeds' "GPU Memory Estimation" table, with the estimates behind it."""

    model: str
    parameters: int
    full: MemoryEstimate
    lora: MemoryEstimate
    qlora: MemoryEstimate

    def cells(self) -> list[str]:
        return [self.model] + [gb(e.total) for e in (self.full, self.lora, self.qlora)]

    def to_dict(self) -> dict[str, Any]:
        """The row for `rung estimate --json`: each method's estimate keyed by its name."""
        return {"model": self.model, "parameters": self.parameters,
                **{e.method: e.to_dict() for e in (self.full, self.lora, self.qlora)}}

    def breakdown(self) -> list[list[str]]:
        """Per method: weights, gradients, optimizer, activations, total, peak (the small
        CUDA-context overhead stays in `to_dict`)."""
        return [[e.method] + [gb(getattr(e, k)) for k in (
            "weights", "gradients", "optimizer", "activations", "total")]
            + [e.peak_at] for e in (self.full, self.lora, self.qlora)]


def seeds_table(models: tuple[str | ModelShape, ...] | list[str | ModelShape] = (
        "1B", "7B", "13B", "70B"), *, seq_len: int = 512, batch_size: int = 4,
        **options: Any) -> list[SeedsRow]:
    """The seeds' table (a row per model; full, LoRA, QLoRA) for these models and batch."""
    rows = []
    for model in models:
        shape = model if isinstance(model, ModelShape) else shape_for(model)
        est = {m: estimate_memory(shape, method=m, seq_len=seq_len, batch_size=batch_size,
                                  **options) for m in ("full", "lora", "qlora")}
        rows.append(SeedsRow(shape.name or str(model), shape.parameters, **est))
    return rows


def gb(n: int) -> str:
    """The seeds' way of writing a size: "~56 GB"."""
    return f"~{n / 1e9:.0f} GB" if n >= 9.5e9 else f"~{n / 1e9:.1f} GB"
