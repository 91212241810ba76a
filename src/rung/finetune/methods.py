"""The fine-tuning methods the seeds compare, each one entry: what it trains, its default
learning rate, what it needs from the machine and the data.

Adding a method is adding an entry here; the recipe (train.py), the registry's loader and
the test matrix read this table, so a new method joins all three at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rung.data.example import Example
from rung.errors import RungError
from rung.task import FineTuneTable


@dataclass(frozen=True)
class Method:
    name: str
    trains: Literal["lora", "soft-prompt", "all"]  # what the artifact holds
    objective: Literal["sft", "dpo"]
    learning_rate: float  # used when [finetune] learning_rate is not set
    why: str  # for the docs and `rung estimate`: the seeds' trade-off in a line
    needs_cuda: bool = False


# Learning rates: the seeds' range is 1e-5..5e-4, "lower for larger models". LoRA sits at the
# seeds' example (2e-4); full tuning moves every weight, so it takes the low end; DPO's
# preference loss is sharper than cross-entropy and is usually run an order of magnitude
# lower than SFT. Soft prompts start from nothing and the seeds' range is too small for them
# to move in a few epochs: 5e-3 is the usual setting for prompt and prefix tuning.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("lora", "lora", "sft", 2e-4, "0.1-1% of parameters; model + adapters in memory"),
    Method("qlora", "lora", "sft", 2e-4, "LoRA on a 4-bit NF4 base: the least memory",
           needs_cuda=True),
    Method("full", "all", "sft", 2e-5, "every weight; ~4x the model in memory"),
    Method("prefix", "soft-prompt", "sft", 5e-3, "trained key/value prefixes per layer"),
    Method("prompt-tuning", "soft-prompt", "sft", 5e-3, "a few trained input embeddings"),
    Method("dpo", "lora", "dpo", 5e-5, "LoRA trained on chosen/rejected pairs, no reward model"),
)}


@dataclass(frozen=True)
class Precision:
    """How a method's trainable copy is held and computed."""

    weights: Literal["fp32", "bf16", "fp16"]  # the dtype the trainable copy loads in
    autocast: Literal["bf16", "fp16"] | None  # the Trainer's mixed precision (bf16=/fp16=True)
    master_weights: bool  # fp32 weights, gradients and AdamW states under half compute
    # the trainable adapters' dtype: fp32 as PEFT makes them, bf16 where TRL casts those of a
    # quantised model (sft_trainer.py, after the QLoRA paper)
    adapters: Literal["fp32", "bf16"] = "fp32"

    @property
    def bf16(self) -> bool:
        return self.autocast == "bf16"

    @property
    def fp16(self) -> bool:
        return self.autocast == "fp16"

    def estimate_options(self) -> dict[str, Any]:
        """How memory.estimate_memory is to count this precision."""
        return {"dtype": self.autocast or "fp32", "master_weights": self.master_weights,
                "adapter_dtype": self.adapters}


def precision(method: str, half: str | None) -> Precision:
    """`half`: the GPU's compute dtype (device.compute_dtype: bf16 where the hardware has it,
    fp16 on a T4 or V100, whose bf16 is emulated and slow), None on a CPU, where everything
    is fp32. Full fine-tuning keeps fp32 weights and lets the Trainer autocast (mixed
    precision): at its learning rate of 2e-5 most AdamW updates are below half a bf16 step
    of a weight, so weights held in bf16 would round most of them away. LoRA and QLoRA hold
    the frozen base in the half dtype, and so do the soft prompts and DPO, which train
    adapters too. The adapters are fp32 as PEFT makes them, except QLoRA's under bf16, which
    TRL casts to bf16; under fp16 every trainable weight is fp32 (trainer.py makes it so),
    since the Trainer's loss scaler refuses fp16 gradients."""
    if half is None:
        return Precision("fp32", None, master_weights=False)
    autocast: Literal["bf16", "fp16"] = "bf16" if half == "bf16" else "fp16"
    if METHODS[method].trains == "all":
        return Precision("fp32", autocast, master_weights=True)
    return Precision(autocast, autocast, master_weights=False,
                     adapters="bf16" if method == "qlora" and autocast == "bf16" else "fp32")


def tune_precision(method: str) -> Precision:
    """precision() on this machine's current device."""
    from rung.finetune.device import compute_dtype, gpu_facts

    return precision(method, compute_dtype(gpu_facts()))


def learning_rate(settings: FineTuneTable) -> float:
    return settings.learning_rate or METHODS[settings.method].learning_rate


def check_method(settings: FineTuneTable, train: Sequence[Example], *, file: Any = None,
                 line: int | None = None, data: Any = None) -> None:
    """Everything that would make this method fail after minutes of loading, checked first:
    a problem with the method is at `file`:`line` (rung.toml's method key), one with the
    examples in `data`."""
    method = METHODS[settings.method]
    if method.needs_cuda:
        import torch

        if not torch.cuda.is_available():
            raise RungError(
                f"method '{method.name}' quantises the base model to 4-bit NF4 with "
                "bitsandbytes, which needs a CUDA GPU; this machine has none", file=file,
                line=line,
                fix='use method = "lora" under [finetune] on this machine (same adapter, '
                    'the base stays in full precision), or run on a machine with a GPU')
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise RungError(f"method '{method.name}' needs the bitsandbytes package", file=file,
                            line=line, fix="pip install bitsandbytes") from None
    if method.objective == "dpo":  # val too: its loss is the preference loss on its pairs
        missing = [ex.line for ex in train if not isinstance(ex.extra.get("rejected"), str)
                   or not ex.extra["rejected"].strip()]
        if missing:
            shown = ", ".join(str(n) for n in sorted(missing)[:10]) + \
                (" ..." if len(missing) > 10 else "")
            raise RungError(
                f"method 'dpo' trains on preference pairs, but {len(missing)} of {len(train)} "
                f"train and val examples have no 'rejected' answer (lines {shown})",
                file=data if data is not None else file,
                fix="add a \"rejected\" field (the worse answer) to every record, the "
                    "assistant turn being the chosen one; or use method = \"lora\"")


def peft_config(settings: FineTuneTable, targets: list[str], *, init_text: str,
                tokenizer_dir: str) -> Any:
    """The PEFT configuration for the method; None for full fine-tuning."""
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, PromptTuningInit

    method = METHODS[settings.method]
    if method.trains == "lora":
        return LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                          lora_dropout=settings.dropout, target_modules=targets, bias="none",
                          task_type="CAUSAL_LM")
    if method.name == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=settings.virtual_tokens,
                                  task_type="CAUSAL_LM")
    if method.name == "prompt-tuning":
        # Starting from the task's own instruction converges far faster than random vectors.
        return PromptTuningConfig(num_virtual_tokens=settings.virtual_tokens,
                                  task_type="CAUSAL_LM", prompt_tuning_init=PromptTuningInit.TEXT,
                                  prompt_tuning_init_text=init_text,
                                  tokenizer_name_or_path=tokenizer_dir)
    return None


def quantization_config(compute: str = "bf16") -> Any:
    """QLoRA's base: NF4 with double quantisation, computing in `compute` (the QLoRA
    paper's bf16; fp16 on a GPU without bf16 in hardware)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if compute == "bf16"
                              else torch.float16)


# The seeds' "typical range" for each training setting (their Training Parameters table and
# LoRA key concepts). Outside one is allowed, never silent: a failed tune names them first.
SEED_RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-5, 5e-4), "epochs": (1, 5), "batch_size": (4, 32),
    "gradient_accumulation": (2, 16), "warmup_ratio": (0.05, 0.10),
    "weight_decay": (0.01, 0.1), "max_seq_length": (512, 4096), "rank": (4, 64),
}
FULL_TUNE_EXAMPLES = 10_000  # the seeds: full fine-tuning wants 10k-100k+ examples


def unusual_settings(settings: FineTuneTable, *, max_seq_length: int,
                     n_train: int | None = None, world_size: int = 1) -> list[str]:
    """The settings outside the seeds' typical ranges, each with the range; a soft prompt's
    learning rate is judged by its own usual value, the seeds' range being for weights. The
    seeds' batch size ("limited by GPU memory; use gradient accumulation") is the effective
    batch an optimizer step sees: batch_size x gradient_accumulation x devices."""
    method = METHODS[settings.method]
    devices = max(1, world_size)
    batch = f"batch_size {settings.batch_size} x gradient_accumulation " \
        f"{settings.gradient_accumulation}" + (f" x {devices} devices" if devices > 1 else "")
    values: dict[str, tuple[str, float]] = {  # range: (name said, value)
        "epochs": ("epochs", settings.epochs),
        "batch_size": (f"effective batch = {batch}", settings.batch_size
                       * settings.gradient_accumulation * devices),
        "gradient_accumulation": ("gradient_accumulation", settings.gradient_accumulation),
        "warmup_ratio": ("warmup_ratio", settings.warmup_ratio),
        "weight_decay": ("weight_decay", settings.weight_decay),
        "max_seq_length": ("max_seq_length", settings.max_seq_length or max_seq_length)}
    if method.trains != "soft-prompt":
        values["learning_rate"] = ("learning_rate", learning_rate(settings))
    if method.trains == "lora":
        values["rank"] = ("rank", settings.rank)
    found = [f"{name} = {value:g} (the seeds' typical range is {low:g} to {high:g})"
             for key, (name, value) in values.items()
             for low, high in [SEED_RANGES[key]] if not low <= value <= high]
    # only where the modules have Llama-style names: GPT-2's c_attn has no q_proj to miss
    if method.trains == "lora" and any(m.endswith("_proj") for m in settings.target_modules) \
            and not {"q_proj", "v_proj"} <= set(settings.target_modules):
        found.append(f"target_modules = {settings.target_modules} (the seeds' minimum is "
                     "q_proj and v_proj)")
    if method.trains == "lora" and settings.alpha != 2 * settings.rank:
        found.append(f"alpha = {settings.alpha} with rank {settings.rank} (the seeds: alpha "
                     "is typically twice the rank)")
    if settings.scheduler == "constant":
        found.append("scheduler = constant (the seeds: cosine or linear decay)")
    if method.name == "full" and n_train is not None and n_train < FULL_TUNE_EXAMPLES:
        found.append(f"method = full on {n_train} training examples (the seeds: full "
                     f"fine-tuning wants {FULL_TUNE_EXAMPLES:,}+; LoRA needs far fewer)")
    return found
