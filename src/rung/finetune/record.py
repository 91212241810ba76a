"""A tune's record, tune.json beside its artifact: what the run did, and proof that it ended.

Apart from the run because the record outlives it: a rerun picks a finished tune up from it
instead of training again, `rung climb --tune` and `rung export` (artifacts.py) find a past
tune by it, and its summary is what the store keeps for the report and the costs. It is
written last and atomically, so a folder that holds one holds a whole tune.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rung.files import atomic_write
from rung.finetune.diagnose import Signal
from rung.finetune.methods import METHODS
from rung.models.registry import ADAPTER_BASE
from rung.pipeline import Pipeline

TUNE_FILE = "tune.json"  # beside the artifact; written last


@dataclass
class TuneResult:
    method: str
    artifact: Path  # adapter folder, or the whole model for method "full"
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
    config: dict[str, Any] = field(default_factory=dict)  # the exact [finetune] table used
    base_fingerprint: str = ""  # of the base weights it was trained from
    resumed_from: int | None = None  # the checkpoint step an interrupted run went on from
    world_size: int = 1
    rank_digests: list[str] = field(default_factory=list)  # of the trained weights, per rank
    peak_memory: dict[str, Any] | None = None  # measured, beside the estimate
    regression: dict[str, Any] | None = None  # general-capability suite, base vs tuned
    signals: list[Signal] = field(default_factory=list)
    unusual: list[str] = field(default_factory=list)  # settings outside the seeds' ranges
    device: str = "gpu"  # where it trained ("gpu" or "cpu"): prices its hours
    # examples left out because the training length cuts their answer, per split
    left_out: dict[str, int] = field(default_factory=dict)
    # tokens trained in this call (`seconds`), for the rate; None: all of train_tokens
    tokens_this_call: int | None = None
    reused: bool = False  # found finished in its folder, not trained in this call

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method, "adapter": str(self.artifact), "best_step": self.best_step,
            "best_val_loss": self.best_val_loss, "stopped_early": self.stopped_early,
            "steps": self.steps, "epochs": round(self.epochs, 2),
            "seconds": round(self.seconds, 1), "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            # None: a record from before parameters were counted whole under ZeRO-3 (0)
            "trainable_share": round(self.trainable_parameters / self.total_parameters, 5)
            if self.total_parameters else None,
            "train_tokens": self.train_tokens,
            # the rate of this call's segment (a resumed tune's earlier one was timed by
            # the call that trained it); train_tokens / rate is the whole tune's time
            "tokens_per_second": round(self._rated_tokens / self.seconds, 1)
            if self.seconds else None,
            "config": self.config, "base_fingerprint": self.base_fingerprint,
            "resumed_from": self.resumed_from, "world_size": self.world_size,
            "rank_digests": self.rank_digests, "peak_memory": self.peak_memory,
            "regression": self.regression, "reused": self.reused,
            "overfitting": [asdict(s) for s in self.signals],
            "unusual_settings": self.unusual, "device": self.device,
            "left_out": self.left_out,
        }

    @property
    def _rated_tokens(self) -> int:
        return self.train_tokens if self.tokens_this_call is None else self.tokens_this_call


def finished_tune(out: Path) -> TuneResult | None:
    """The record of the tune finished in `out`, or None where it has not finished."""
    record = out / "artifact" / TUNE_FILE
    if not record.exists():
        return None
    data = json.loads(record.read_text())
    data["artifact"] = out / "artifact"  # where it is now: the task folder may have moved
    data["signals"] = [Signal(**s) for s in data["signals"]]
    if "device" not in data:  # a record from before the device was kept: its memory says
        measured = ((data.get("peak_memory") or {}).get("measured") or {}).get("device")
        data["device"] = "cpu" if measured == "cpu" else "gpu"
    return TuneResult(**{**data, "reused": True})


def save_record(result: TuneResult, pipeline: Pipeline, *, staging: Path | None = None,
                serve_dtype: str | None = None) -> None:
    """Write the tune's tune.json, atomically last; with `staging` (the folder save_weights
    wrote the weights and tokenizer to) move it into place as the artifact first, with its
    note of the base and, for whole weights, the dtype they are served in."""
    artifact = result.artifact
    if staging is not None:
        method = METHODS[result.method]
        (staging / ADAPTER_BASE).write_text(json.dumps(
            {"model": pipeline.model, "base_dir": pipeline.base_dir, "method": method.name,
             "trains": method.trains,
             **({"serve_dtype": serve_dtype} if serve_dtype else {})}))
        shutil.rmtree(artifact, ignore_errors=True)
        staging.rename(artifact)
    data = asdict(result)
    data["artifact"] = str(result.artifact)
    data.pop("reused")
    atomic_write(artifact / TUNE_FILE, json.dumps(data, indent=1))


TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def save_weights(trainer: Any, staging: Path, *, dtype: str | None, sharded: bool) -> None:
    """The trained weights and tokenizer into `staging`; every rank calls it. Sharded weights
    (FSDP, ZeRO-3) are gathered by accelerate's get_state_dict on every rank, whatever state
    dict type the config checkpoints with (Trainer.save_model writes nothing under FSDP's
    SHARDED_STATE_DICT, the shipped fsdp.yaml's); the first rank writes. `dtype` ("bf16",
    "fp16"): whole weights trained in fp32 under that autocast are written in it, the dtype
    they are served and measured in (half the disk; vLLM's --dtype auto serves an fp32
    checkpoint as fp16)."""
    import torch

    accelerator = trainer.accelerator
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    state_dict = None
    if sharded:
        try:
            state_dict = accelerator.get_state_dict(trainer.model_wrapped)
        except ValueError as err:  # ZeRO-3 that does not gather 16-bit weights on save
            from rung.errors import RungError

            raise RungError(f"the tune trained, but its sharded weights cannot be gathered to "
                            f"save: {err}", fix="set zero3_save_16bit_model: true under "
                            "deepspeed_config in the accelerate config and run again (the tune "
                            "resumes from its last checkpoint)") from None
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(trainer.model)
        if dtype is not None:
            state_dict = cast_floating(model.state_dict() if state_dict is None else state_dict,
                                       getattr(torch, TORCH_DTYPES[dtype]))
        model.save_pretrained(str(staging), state_dict=state_dict)
        trainer.processing_class.save_pretrained(str(staging))
        if dtype is not None:
            _config_dtype(staging, TORCH_DTYPES[dtype])
    accelerator.wait_for_everyone()


def cast_floating(state_dict: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """`state_dict` with its floating-point tensors in `dtype`, on the CPU. Tensors that share
    storage (tied embeddings) stay shared, so save_pretrained still writes one of them."""
    cast: dict[tuple[int, int, tuple[int, ...]], Any] = {}
    out = {}
    for name, tensor in state_dict.items():
        if not (hasattr(tensor, "is_floating_point") and tensor.is_floating_point()):
            out[name] = tensor
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in cast:
            cast[key] = tensor.detach().to(device="cpu", dtype=dtype)
        out[name] = cast[key]
    return out


def _config_dtype(folder: Path, dtype: str) -> None:
    """save_pretrained writes the model's own dtype into config.json (fp32, the weights'
    in memory): the saved tensors' instead, which servers read."""
    config = folder / "config.json"
    if config.exists():
        data = json.loads(config.read_text())
        data["dtype"] = dtype
        config.write_text(json.dumps(data, indent=2) + "\n")
