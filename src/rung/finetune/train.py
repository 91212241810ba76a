"""The fine-tuning recipe: TRL's SFTTrainer (or DPOTrainer) with PEFT, as the seeds prescribe.

What it does, top to bottom; a step done in another module names it:
1. check what would fail late (QLoRA without CUDA, DPO without rejected answers) first;
2. pick up a finished tune in `out` as it is (record.py), or an interrupted one from its
   last checkpoint (folder.py, which also names the folder and locks it);
3. load a fresh, trainable copy of the base model (never the shared inference copy);
4. build records with the best prompt's rendering, so the loss is on the answer only and the
   tuned model is asked exactly what it was trained on (a model without a chat template
   too: data.py); leave out, and count, examples longer than the training length, whose
   answer would be cut before its end (3 and 4: trainer.py);
5. check the estimated peak against the memory free now (fit.py); train with the seeds'
   defaults (cosine, 5% warmup, decay 0.01, batch 4 x 4; the method's learning rate; full
   fine-tuning on a GPU in mixed precision over fp32 weights), batches of similar length
   (no padding to a fixed width; padding-free with FlashAttention on a GPU; arguments.py),
   evaluate on val twice an epoch (never fewer than patience + 2 times) or every N steps,
   stop early when val loss stops improving by more than diagnose's FLAT (schedule.py),
   keep the best checkpoint;
6. save the artifact (adapter, soft prompt, or whole model: gathered from every rank when
   FSDP or ZeRO-3 shard it, and in the dtype it is served in) with a note of its base and
   the run's record, `tune.json`, written last: its presence means the tune finished
   (record.py). The intermediate checkpoints exist to resume and are removed then.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rung.data.example import Example
from rung.errors import RungError
from rung.finetune.diagnose import diagnose
from rung.finetune.fit import check_tune_fits, tune_estimate
from rung.finetune.folder import last_complete_checkpoint, step_of, tune_lock
from rung.finetune.methods import METHODS, check_method, tune_precision, unusual_settings
from rung.finetune.peak import PeakMemory, memory_record, return_freed_memory
from rung.finetune.record import TuneResult, finished_tune, save_record, save_weights
from rung.finetune.trainer import build_trainer, leave_out_long
from rung.models.registry import fingerprint
from rung.pipeline import Pipeline
from rung.task import TaskSpec

CURVE_KEYS = ("loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy",
              "eval_mean_token_accuracy", "num_tokens")


class NotReadyError(RungError):
    """The audit says the data would not carry a fine-tune."""


def require_ready(task: TaskSpec, *, force: bool) -> dict[str, Any]:
    """The latest audit of exactly this data file (audited now if there is none)."""
    from rung.data.audit.report import audit_for

    audit = audit_for(task)
    if audit["verdict"] == "not ready" and not force:
        reasons = "; ".join(audit["reasons"])
        raise NotReadyError(
            f"the audit ({audit['audit_id']}) says the data is not ready to fine-tune on: {reasons}",
            file=task.data_path,
            fix=f"fix the data (rung audit {task.path} --fix OUT shows how), or pass --force to "
                "tune anyway")
    return audit


def fine_tune(task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
              val: Sequence[Example], out: Path, *, callbacks: Sequence[Any] = ()) -> TuneResult:
    """Train (or resume, or pick up) the tune in `out`; `callbacks` go to the trainer."""
    check_method(task.finetune, [*train, *val], file=task.path,
                 line=task.line_of("finetune", "method"), data=task.data_path)
    if (done := finished_tune(out)) is not None:
        return _with_settings(done, task, len(train))
    with tune_lock(out):  # another climb of this task may be training the same tune
        if (done := finished_tune(out)) is not None:  # it was: take its result instead
            return _with_settings(done, task, len(train))
        return _train(task, pipeline, train, val, out, callbacks)


def _with_settings(done: TuneResult, task: TaskSpec, n_train: int) -> TuneResult:
    """A record from before unusual settings were kept: the config that named its folder
    trained it, so they are read off that."""
    if not done.unusual:
        done.unusual = unusual_settings(task.finetune, n_train=n_train,
                                        max_seq_length=task.audit.max_seq_length,
                                        world_size=done.world_size)
    return done


def _train(task: TaskSpec, pipeline: Pipeline, train: Sequence[Example],
           val: Sequence[Example], out: Path, callbacks: Sequence[Any]) -> TuneResult:
    import torch
    from transformers.utils import logging as hf_logging

    import datasets

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()  # the library never prints
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        return_freed_memory()  # else freed activations stay in the heap and RSS overstates
    with PeakMemory() as peak, warnings.catch_warnings():  # peak: from before the weights load
        # transformers' own deprecation notices (its gradient_checkpointing rename) are not
        # the user's to act on
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
        trainer = build_trainer(task, pipeline, train, val, out, callbacks)
        # counted now, while every rank holds the whole model: FSDP and ZeRO-3 shard it in
        # training, and ZeRO-3 leaves each rank's parameters empty
        counts = parameter_counts(trainer.model)
        left_out = leave_out_long(task, trainer, len(train), len(val))
        estimate = tune_estimate(task, pipeline, trainer)
        check_tune_fits(task, estimate, trainer.model)
        last = last_complete_checkpoint(out / "checkpoints")
        earlier_tokens = _continue_token_count(trainer, last)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - started
    return _finish(task, pipeline, trainer, out, seconds, counts=counts,
                   resumed_from=step_of(last), peak=memory_record(estimate, peak),
                   left_out=left_out, earlier_tokens=earlier_tokens)


def _continue_token_count(trainer: Any, checkpoint: str | None) -> int:
    """TRL counts trained tokens from 0 in each call, so a resumed tune's count would restart
    part-way through its curves: it goes on from the checkpoint's last count instead. Returns
    that count (tokens trained before this call)."""
    if checkpoint is None:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    earlier = int(max((row.get("num_tokens", 0) for row in state.get("log_history", [])),
                      default=0))
    if hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = earlier
    return earlier


def _finish(task: TaskSpec, pipeline: Pipeline, trainer: Any, out: Path, seconds: float, *,
            counts: tuple[int, int], resumed_from: int | None, peak: dict[str, Any] | None,
            left_out: dict[str, Any] | None = None, earlier_tokens: int = 0) -> TuneResult:
    """Save the best weights (loaded at the end of training) and the record of the run;
    every rank calls it. `counts`: (trainable, total) parameters, counted before training."""
    state, model = trainer.state, trainer.model
    sharded = weights_sharded(trainer.is_fsdp_enabled, _zero_stage(trainer))
    world, digests = trainer.args.world_size, []
    if not sharded:  # a sharded rank holds its own shard: its digest is no one else's
        digests = [_digest(model)]
        if world > 1:  # data parallel: every rank must hold the same weights, or the run is wrong
            from accelerate.utils import gather_object

            digests = gather_object(digests)
            if len(set(digests)) != 1:
                raise RungError(f"data-parallel ranks finished with different weights: {digests}",
                                fix="check the accelerate config; every rank must see the same "
                                    "seed")
    curves = [{"step": row["step"], "epoch": float(row.get("epoch", 0)),
               **{k: float(row[k]) for k in CURVE_KEYS if k in row}}
              for row in state.log_history if any(k in row for k in CURVE_KEYS)]
    trainable, total = counts
    left_out = left_out or {"counts": {}, "said": []}
    tokens = int(max((c.get("num_tokens", 0) for c in curves), default=0))
    result = TuneResult(
        method=task.finetune.method, artifact=out / "artifact", curves=curves,
        best_step=step_of(state.best_model_checkpoint), best_val_loss=state.best_metric,
        stopped_early=state.global_step < state.max_steps, steps=state.global_step,
        epochs=float(state.epoch or 0), seconds=seconds, trainable_parameters=trainable,
        total_parameters=total,
        train_tokens=tokens, tokens_this_call=max(tokens - earlier_tokens, 0),
        config=task.finetune.model_dump(), left_out=left_out["counts"],
        device="cpu" if trainer.args.device.type == "cpu" else "gpu",
        unusual=[*unusual_settings(task.finetune, max_seq_length=task.audit.max_seq_length,
                                   n_train=len(trainer.train_dataset), world_size=world),
                 *left_out["said"]],
        base_fingerprint=fingerprint(pipeline.model, base_dir=task.root),
        resumed_from=resumed_from, world_size=world, rank_digests=digests, peak_memory=peak,
        signals=diagnose([c["loss"] for c in curves if "loss" in c],
                         [c["eval_loss"] for c in curves if "eval_loss" in c],
                         [c["mean_token_accuracy"] for c in curves if "mean_token_accuracy" in c],
                         [c["grad_norm"] for c in curves if c.get("grad_norm") is not None],
                         stopped_early=state.global_step < state.max_steps))
    dtype = saved_dtype(METHODS[task.finetune.method].trains,
                        tune_precision(task.finetune.method).autocast)
    staging = out / "artifact.tmp"
    save_weights(trainer, staging, dtype=dtype, sharded=sharded)  # every rank: FSDP gathers
    if trainer.is_world_process_zero():
        save_record(result, pipeline, staging=staging,
                    serve_dtype={"bf16": "bfloat16", "fp16": "float16"}.get(dtype or ""))
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # they were only for resuming
    return result


def weights_sharded(fsdp: bool, zero_stage: int | None) -> bool:
    """Whether each rank holds only its shard of the weights: FSDP, or DeepSpeed ZeRO-3
    (ZeRO-1 and 2 shard the optimizer and gradients, every rank keeping whole weights)."""
    return fsdp or zero_stage == 3


def _zero_stage(trainer: Any) -> int | None:
    if not trainer.is_deepspeed_enabled:
        return None
    return trainer.accelerator.state.deepspeed_plugin.zero_stage


def saved_dtype(trains: str, autocast: str | None) -> str | None:
    """The dtype a tune's weights are written in when it is not the one they trained in:
    whole weights (a full tune) kept in fp32 under bf16 or fp16 autocast are written in
    that half dtype, the one they are measured and served in; adapters and soft prompts are
    written as trained (small, and PEFT loads them onto the base's dtype)."""
    return autocast if trains == "all" else None


def parameter_count(numel: int, *, ds_numel: int | None = None, packed_bytes: int = 0) -> int:
    """The parameters one tensor stands for: its numel; under ZeRO-3, whose ranks hold empty
    tensors once it partitions them, DeepSpeed's ds_numel; a bitsandbytes 4-bit weight packs
    two per byte of its storage elements (`packed_bytes`: their size), as PEFT counts it."""
    if numel == 0 and ds_numel is not None:
        numel = ds_numel
    return numel * 2 * packed_bytes if packed_bytes else numel


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters of a model, by parameter_count."""
    trainable = total = 0
    for param in model.parameters():
        packed = param.element_size() if type(param).__name__ == "Params4bit" else 0
        n = parameter_count(param.numel(), ds_numel=getattr(param, "ds_numel", None),
                            packed_bytes=packed)
        total += n
        trainable += n if param.requires_grad else 0
    return trainable, total


def _digest(model: Any) -> str:
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
