"""LoRA supervised fine-tuning with TRL's SFTTrainer and PEFT, as the seeds prescribe.

What the recipe does, top to bottom:
1. refuse to start when the audit calls the data "not ready" (unless forced);
2. load a fresh, trainable copy of the base model (never the shared inference copy);
3. build prompt-completion records with the best prompt's rendering, so the loss is on the
   answer only and the tuned model is asked exactly what it was trained on;
4. train with the seeds' defaults (lr 2e-4, cosine, 5% warmup, decay 0.01, batch 4 x 4),
   evaluate on val every epoch (or N steps), stop early when val loss stops improving, keep
   the best checkpoint, and record every logged point (train loss, val loss, learning rate,
   gradient norm) for the store and the overfitting diagnosis;
5. save the adapter with a note of its base, so the registry can load base + adapter.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rung.data.example import Example
from rung.errors import RungError
from rung.finetune.data import sft_records
from rung.finetune.diagnose import Signal, diagnose
from rung.models.registry import ADAPTER_BASE, resolve
from rung.pipeline import Pipeline
from rung.task import TaskSpec


@dataclass
class TuneResult:
    adapter: Path
    curves: list[dict[str, Any]]  # one row per logged point
    best_step: int | None
    best_val_loss: float | None
    stopped_early: bool
    steps: int
    epochs: float
    seconds: float
    trainable_parameters: int
    total_parameters: int
    train_tokens: int
    signals: list[Signal] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "adapter": str(self.adapter), "best_step": self.best_step,
            "best_val_loss": self.best_val_loss, "stopped_early": self.stopped_early,
            "steps": self.steps, "epochs": round(self.epochs, 2),
            "seconds": round(self.seconds, 1), "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "trainable_share": round(self.trainable_parameters / self.total_parameters, 5),
            "tokens_per_second": round(self.train_tokens / self.seconds, 1) if self.seconds else None,
            "overfitting": [s.__dict__ for s in self.signals],
        }


class NotReadyError(RungError):
    """The audit says the data would not carry a fine-tune."""


def require_ready(task: TaskSpec, *, force: bool) -> dict[str, Any]:
    """The latest audit of exactly this data file (audited now if there is none)."""
    from rung.data.audit.report import audit_dataset
    from rung.store import Store, file_hash

    store = Store(task.store_dir)
    try:
        row = store.latest_audit(file_hash(task.data_path))
    finally:
        store.close()
    if row is None:
        report, _ = audit_dataset(task.path)
        audit = report.to_dict()
    else:
        audit = json.loads(row["summary_json"])
    if audit["verdict"] == "not ready" and not force:
        reasons = "; ".join(audit["reasons"])
        raise NotReadyError(
            f"the audit ({audit['audit_id']}) says the data is not ready to fine-tune on: {reasons}",
            file=task.data_path,
            fix=f"fix the data (rung audit {task.path} --fix OUT shows how), or pass --force to "
                "tune anyway")
    return audit


def train_lora(task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
               val: Sequence[Example], out: Path) -> TuneResult:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import EarlyStoppingCallback, PrinterCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    import datasets

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()  # the library never prints
    settings = task.finetune
    model, tokenizer = _trainable_model(pipeline)
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [m for m in settings.target_modules if m in present]
    if not targets:
        raise RungError(f"none of [finetune] target_modules {settings.target_modules} is a "
                        f"module of {pipeline.model}", file=task.path,
                        fix="name the model's projection layers, e.g. q_proj, v_proj")
    curves: list[dict[str, Any]] = []

    class Curves(TrainerCallback):  # every logged point, for the store and the diagnosis
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            logs = logs or {}
            keep = {k: float(v) for k, v in logs.items() if k in (
                "loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy",
                "num_tokens")}
            if keep:
                curves.append({"step": state.global_step, "epoch": float(state.epoch or 0), **keep})

    every = {"eval_strategy": "steps", "eval_steps": settings.eval_steps,
             "save_strategy": "steps", "save_steps": settings.eval_steps} \
        if settings.eval_steps else {"eval_strategy": "epoch", "save_strategy": "epoch"}
    args = SFTConfig(
        output_dir=str(out / "checkpoints"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate, lr_scheduler_type=settings.scheduler,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of all steps
        weight_decay=settings.weight_decay, load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        save_total_limit=settings.keep_checkpoints, logging_steps=1, report_to=[],
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(),
        max_length=settings.max_seq_length or task.audit.max_seq_length,
        seed=settings.seed if settings.seed is not None else task.task.seed,
        disable_tqdm=True, **every)
    trainer = SFTTrainer(
        model=model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list(sft_records(pipeline, train)),
        eval_dataset=Dataset.from_list(sft_records(pipeline, val)),
        peft_config=LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                               lora_dropout=settings.dropout, target_modules=targets,
                               bias="none", task_type="CAUSAL_LM"),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience),
                   Curves()])
    trainer.remove_callback(PrinterCallback)  # the library never prints
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    seconds = time.perf_counter() - started
    state = trainer.state
    adapter = out / "adapter"
    trainer.model.save_pretrained(str(adapter))  # the best checkpoint: loaded at the end
    tokenizer.save_pretrained(str(adapter))
    (adapter / ADAPTER_BASE).write_text(json.dumps(
        {"model": pipeline.model, "base_dir": pipeline.base_dir}))
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    train_loss = [c["loss"] for c in curves if "loss" in c]
    val_loss = [c["eval_loss"] for c in curves if "eval_loss" in c]
    accuracy = [c["mean_token_accuracy"] for c in curves if "mean_token_accuracy" in c]
    return TuneResult(
        adapter=adapter, curves=curves,
        best_step=_step_of(state.best_model_checkpoint), best_val_loss=state.best_metric,
        stopped_early=state.global_step < state.max_steps, steps=state.global_step,
        epochs=float(state.epoch or 0), seconds=seconds, trainable_parameters=trainable,
        total_parameters=total,
        train_tokens=int(max((c.get("num_tokens", 0) for c in curves), default=0)),
        signals=diagnose(train_loss, val_loss, accuracy))


def _trainable_model(pipeline: Pipeline) -> tuple[Any, Any]:
    """A fresh copy of the base weights in fp32 (bf16 on a GPU), separate from inference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = resolve(pipeline.model, base_dir=Path(pipeline.base_dir) if pipeline.base_dir else None)
    kwargs = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    with contextlib.redirect_stderr(io.StringIO()):  # GGUF dequantisation draws a bar
        tokenizer = AutoTokenizer.from_pretrained(ref.location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(ref.location, dtype=dtype, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None
