"""The Trainer's arguments from a task's [finetune] table: the seeds' defaults, made concrete.

Apart from the run because this is where a setting becomes a number TRL acts on, and where
a reader checks that it is the one the seeds prescribe: cosine schedule, 5% warmup, decay
0.01, the method's learning rate, the best checkpoint by val loss, mixed precision on a GPU
(bf16, or fp16 where the GPU only emulates bf16; full fine-tuning over fp32 weights:
methods.precision), batches of similar length (or padding-free where the model loaded with
FlashAttention: trainer.py decides). When val is read comes from schedule.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rung.finetune.methods import Precision, learning_rate
from rung.finetune.schedule import evaluations
from rung.task import TaskSpec


def training_arguments(task: TaskSpec, objective: str, checkpoints: Path, *,
                       mixed: Precision, padding_free: bool = False) -> Any:
    """SFTConfig, or DPOConfig for a preference objective, writing checkpoints under
    `checkpoints`, computing in `mixed`; `padding_free` where the trainable model runs
    FlashAttention, which alone keeps the sequences of a padding-free batch apart."""
    import torch
    from trl import DPOConfig, SFTConfig

    settings = task.finetune
    cuda = torch.cuda.is_available()
    # a share of all steps (patience >= 1 makes it at most a third), until the schedule
    # callback sets the step count once the run's length is known
    steps = settings.eval_steps or 1 / evaluations(settings.epochs,
                                                   settings.early_stopping_patience)
    every = {"eval_strategy": "steps", "eval_steps": steps, "save_strategy": "steps",
             "save_steps": steps}
    common = dict(
        output_dir=str(checkpoints), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=learning_rate(settings), lr_scheduler_type=settings.scheduler,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of all steps
        weight_decay=settings.weight_decay, load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        save_total_limit=settings.keep_checkpoints, logging_steps=1, report_to=[],
        # early stopping's patience count travels with a checkpoint, so a resumed tune stops
        # where an uninterrupted one would
        restore_callback_states_from_checkpoint=True,
        use_cpu=not cuda, bf16=mixed.bf16, fp16=mixed.fp16,
        activation_checkpointing=settings.gradient_checkpointing,
        seed=settings.seed if settings.seed is not None else task.task.seed,
        disable_tqdm=True, **every)
    length = settings.max_seq_length or task.audit.max_seq_length
    if objective == "dpo":  # its collator cuts at max_length; leave_out_long drops longer first
        return DPOConfig(beta=settings.dpo_beta, max_length=length, **common)
    # Padding-free batches need FlashAttention to keep sequences apart; elsewhere batches of
    # similar length waste almost as little on padding.
    batching = {"padding_free": True} if padding_free else \
        {"train_sampling_strategy": "group_by_length"}
    # No max_length: TRL would cut every longer example at it and keep those with an answer
    # token left; leave_out_long drops them whole instead, and says how many.
    return SFTConfig(max_length=None, **common, **batching)
