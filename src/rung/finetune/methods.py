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


def learning_rate(settings: FineTuneTable) -> float:
    return settings.learning_rate or METHODS[settings.method].learning_rate


def check_method(settings: FineTuneTable, train: Sequence[Example], *, file: Any = None) -> None:
    """Everything that would make this method fail after minutes of loading, checked first."""
    method = METHODS[settings.method]
    if method.needs_cuda:
        import torch

        if not torch.cuda.is_available():
            raise RungError(
                f"method '{method.name}' quantises the base model to 4-bit NF4 with "
                "bitsandbytes, which needs a CUDA GPU; this machine has none", file=file,
                fix='use method = "lora" under [finetune] on this machine (same adapter, '
                    'the base stays in full precision), or run on a machine with a GPU')
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise RungError(f"method '{method.name}' needs the bitsandbytes package", file=file,
                            fix="pip install bitsandbytes") from None
    if method.objective == "dpo":
        missing = [ex.line for ex in train if not isinstance(ex.extra.get("rejected"), str)
                   or not ex.extra["rejected"].strip()]
        if missing:
            shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise RungError(
                f"method 'dpo' trains on preference pairs, but {len(missing)} of {len(train)} "
                f"training examples have no 'rejected' answer (lines {shown})", file=file,
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


def quantization_config() -> Any:
    """QLoRA's base: NF4 with double quantisation, computing in bf16 (the QLoRA paper's)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)
