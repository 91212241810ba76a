"""The Trainer a tune runs: a fresh trainable model, the records, the method, the callbacks.

Apart from the run (train.py) because this is what the model is trained on and how, while
the run decides whether it trains at all (a finished tune, a lock, the memory) and saves the
result. Built here: a trainable copy of the base model separate from the one serving
inference (in the precision methods.precision gives, on this process's own GPU, with
FlashAttention where the GPU, the flash-attn package and the model class all allow it),
records built by data.py with the best prompt's rendering so the loss is on the answer only,
the method's PEFT config and trainer (answer_loss.py's SFT, or TRL's DPO), early stopping
and the evaluation schedule from schedule.py, the arguments from arguments.py. Examples the
training length would cut before their answer ends are left out here, and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rung.data.example import Example
from rung.errors import DataError, RungError
from rung.finetune.arguments import training_arguments
from rung.finetune.data import preference_records, sft_records
from rung.finetune.methods import METHODS, Precision, peft_config, quantization_config, \
    tune_precision
from rung.finetune.schedule import early_stopping, evaluation_schedule, evaluations
from rung.models.registry import resolve
from rung.pipeline import Pipeline
from rung.task import TaskSpec


def build_trainer(task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
                  val: Sequence[Example], out: Path, callbacks: Sequence[Any]) -> Any:
    """The Trainer for the tune in `out`, not yet run: its fresh model, its records, the
    method's PEFT config, early stopping and the default evaluation schedule before
    `callbacks`, and no printing."""
    from datasets import Dataset
    from transformers import PrinterCallback

    settings = task.finetune
    method = METHODS[settings.method]
    mixed = tune_precision(settings.method)
    model, tokenizer = _trainable_model(pipeline, settings.method, mixed)
    tokenizer.save_pretrained(str(out / "tokenizer"))  # prompt-tuning reads it for its init
    targets = lora_targets(task, model, pipeline) if method.trains == "lora" else []
    peft = peft_config(settings, targets,
                       init_text=pipeline.instruction or "Answer the request.",
                       tokenizer_dir=str(out / "tokenizer"))
    trainer_class, records = _objective(method.objective)
    args = training_arguments(task, method.objective, out / "checkpoints", mixed=mixed,
                              padding_free=attention(model) == "flash_attention_2")
    trainer = trainer_class(
        model=model, args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(records(pipeline, train, tokenizer)),
        eval_dataset=Dataset.from_list(records(pipeline, val, tokenizer)), peft_config=peft,
        callbacks=[early_stopping(settings.early_stopping_patience),
                   *([] if settings.eval_steps else [evaluation_schedule(
                       evaluations(settings.epochs, settings.early_stopping_patience))]),
                   *callbacks])
    trainer.remove_callback(PrinterCallback)  # the library never prints
    if mixed.fp16:  # after TRL, which casts a quantised model's adapters to bf16
        trainable_in_fp32(trainer.model)
    return trainer


def trainable_in_fp32(model: Any) -> int:
    """Hold every trainable weight in fp32, as fp16 mixed precision needs: the Trainer's
    loss scaler refuses fp16 gradients ("Attempting to unscale FP16 gradients"), a prompt
    tuned from the fp16 embeddings starts in fp16, and a T4's bf16 (TRL's dtype for QLoRA
    adapters) is emulated. Returns how many tensors it cast."""
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def attention(model: Any) -> str | None:
    """The attention implementation a loaded model runs ("sdpa", "flash_attention_2"...)."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


def leave_out_long(task: TaskSpec, trainer: Any, n_train: int, n_val: int) -> dict[str, Any]:
    """Leave out the examples longer than the training length, and say so. Cut at the
    length, such an example loses the end of its answer (the token that ends the turn
    first): trained on it, the model learns answers that never end. TRL would cut them and
    keep those with any answer token left, without a word. None left is refused before
    training; some left out is said beside the tune's unusual settings. Returns the counts
    ({"train": n, "val": n}) and the sentences."""
    length = task.finetune.max_seq_length or task.audit.max_seq_length
    key = "[finetune] max_seq_length" if task.finetune.max_seq_length else \
        "[audit] max_seq_length"
    given = {"train": n_train, "val": n_val}
    counts: dict[str, int] = {}
    for part in ("train", "val"):
        data = trainer.train_dataset if part == "train" else trainer.eval_dataset
        whole = data.filter(lambda row: _tokens(row) <= length)
        counts[part] = given[part] - len(whole)
        if part == "train":
            trainer.train_dataset = whole
        else:
            trainer.eval_dataset = whole
        if not len(whole):
            raise DataError(f"no {part} example fits whole within {key} = {length}: its prompt "
                            "(instruction, demonstrations, input) and its answer with the token "
                            "that ends it", file=task.path,
                            fix=f"raise {key}, or shorten the instruction, inputs or answers")
    said = [f"{key} = {length} cuts {counts[part]} of {given[part]} {part} examples before "
            "their answer ends, and training leaves them out (a cut answer would teach the "
            "model not to stop)" for part in ("train", "val") if counts[part]]
    return {"counts": {k: v for k, v in counts.items() if v}, "said": said}


def _tokens(row: dict[str, Any]) -> int:
    """A record's length as trained: SFT's whole sequence; for DPO the longer of prompt +
    chosen and prompt + rejected."""
    if "input_ids" in row:
        return len(row["input_ids"])
    return len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"]))


def _objective(objective: str) -> tuple[Any, Any]:
    from trl import DPOTrainer

    from rung.finetune.answer_loss import AnswerOnlySFTTrainer

    if objective == "dpo":
        return DPOTrainer, preference_records
    return AnswerOnlySFTTrainer, sft_records


def lora_targets(task: TaskSpec, model: Any, pipeline: Pipeline) -> list[str]:
    """The [finetune] target_modules this model has (a name matches any module ending in
    it), for the adapter and for the memory estimate; none at all is the user's to fix."""
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in task.finetune.target_modules if m in present]
    if not targets:
        raise RungError(f"none of [finetune] target_modules {task.finetune.target_modules} is "
                        f"a module of {pipeline.model}", file=task.path,
                        fix="name the model's projection layers, e.g. q_proj, v_proj")
    return targets


def _trainable_model(pipeline: Pipeline, method: str, mixed: Precision) -> tuple[Any, Any]:
    """A fresh copy of the base weights, separate from the copy that serves inference: in
    fp32, or on a GPU in its half precision (4-bit NF4 for QLoRA), except full fine-tuning's,
    which stays fp32 under autocast (methods.precision). QLoRA's is quantised straight onto
    this process's GPU: without a device_map the 4-bit loader puts every rank's copy on the
    current device, GPU 0 on ranks whose device accelerate has not chosen yet."""
    import torch

    from rung.finetune.device import flash_attention_usable, gpu_facts, training_device_index
    from rung.models.hf import load_causal_lm, load_tokenizer

    ref = resolve(pipeline.model, base_dir=Path(pipeline.base_dir) if pipeline.base_dir else None)
    kwargs: dict[str, Any] = {}
    if method == "qlora":
        kwargs["quantization_config"] = quantization_config(mixed.autocast or "bf16")
        kwargs["device_map"] = {"": training_device_index()}
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed.weights, torch.float32)
    tokenizer = load_tokenizer(ref)
    model = load_with_attention(lambda **more: load_causal_lm(ref, dtype=dtype, **kwargs, **more),
                                flash=flash_attention_usable(gpu_facts()))
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_with_attention(load: Callable[..., Any], *, flash: bool) -> Any:
    """`load()` with FlashAttention 2 where `flash` says the machine has it; a model class
    without it (transformers raises ValueError at load) or a kernel that will not import
    (ImportError) loads with the default attention (SDPA) instead. The batching follows the
    attention the model did load with (`attention`), so the two cannot disagree."""
    if flash:
        try:
            return load(attn_implementation="flash_attention_2")
        except (ValueError, ImportError):
            pass
    return load()
