"""Whether a tune fits the memory free now, asked before it starts, and refused if not.

The seeds say to right-size the hardware before starting: a tune over the memory free would
fail on its first long batch, or swap for hours on a CPU. Apart from memory.py, which
estimates any model's shape (`rung estimate` too), and peak.py, which measures the run: this
module sizes this very tune (its longest batch, its targets), reads what this device has free
now, and words the refusal with what would make the tune fit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rung.errors import ModelError, RungError
from rung.finetune.memory import MemoryEstimate, estimate_memory, gb, shape_for
from rung.finetune.methods import tune_precision
from rung.finetune.trainer import lora_targets
from rung.pipeline import Pipeline
from rung.task import TaskSpec


# Token rows TRL's chunked LM head projects at once (trl/kernels/chunked_logprob.py,
# TOKEN_CHUNK_SIZE): the most positions whose logits exist together on that path
TRL_TOKEN_TILE = 4096


def logit_positions(batch: int, longest: int, answer: int, *, chunked_head: bool,
                    padding_free: bool) -> int:
    """How many positions of a batch hold logits at once, which the estimate counts at
    three fp32 rows of the vocabulary each (an upper bound on every path). `answer`: the
    most answer tokens of any example; `chunked_head`: TRL's own LM head runs, which it
    does wherever Triton runs (CUDA with the triton package: sft_trainer patches it in and
    scores the labelled positions only, in tiles of TRL_TOKEN_TILE rows).

    - chunked head: the batch's labelled positions, at most `answer` per example, a tile
      at a time;
    - padding-free off Triton (TRL's head, every position scored, a tile at a time);
    - otherwise answer_loss.py's head: every row of the batch at the union of the batch's
      answer columns (at most batch x answer of them, at most the longest)."""
    if chunked_head:
        return min(batch * min(longest, answer), TRL_TOKEN_TILE)
    if padding_free:
        return min(batch * longest, TRL_TOKEN_TILE)
    return batch * min(longest, batch * answer)


def tune_estimate(task: TaskSpec, pipeline: Pipeline, trainer: Any) -> MemoryEstimate | None:
    """The estimated peak of this very tune: its longest batch, padded, and the LM head at
    answer positions only (logit_positions). None for a method the estimate does not model
    (prefix, prompt tuning, DPO)."""
    import torch
    from transformers.utils import is_triton_available

    settings = task.finetune
    if settings.method not in ("full", "lora", "qlora"):
        return None
    data = trainer.train_dataset
    longest = max(len(ids) for ids in data["input_ids"])
    # TRL keeps the answer as the labels not masked with -100 (its completion_mask column is
    # gone once labels are built)
    answer = max(sum(1 for t in row if t != -100) for row in data["labels"]) \
        if "labels" in data.column_names else longest
    batch = settings.batch_size
    cuda = torch.cuda.is_available()
    padding_free = bool(getattr(trainer.args, "padding_free", False))
    try:
        return estimate_memory(
            shape_for(pipeline.model,
                      base_dir=Path(pipeline.base_dir) if pipeline.base_dir else None),
            method=settings.method, seq_len=longest, batch_size=batch, lora_rank=settings.rank,
            lora_targets=lora_targets(task, trainer.model, pipeline)
            if settings.method != "full" else [], lora_dropout=settings.dropout,
            **tune_precision(settings.method).estimate_options(),
            device="cuda" if cuda else "cpu", padded=not padding_free,
            gradient_checkpointing=settings.gradient_checkpointing or None,
            data_parallel=trainer.args.world_size > 1 and not _sharded(),
            logit_tokens=logit_positions(batch, longest, answer,
                                         chunked_head=cuda and is_triton_available(),
                                         padding_free=padding_free))
    except ModelError:  # a model whose layers it does not know (GPT-2's c_attn): no estimate,
        return None     # and so no refusal; the tune runs as asked


def check_tune_fits(task: TaskSpec, estimate: MemoryEstimate | None, model: Any) -> None:
    """check_fits for the tune about to start, where it is asked for and can judge: [finetune]
    memory_check on, an estimate of the method, and weights not sharded across devices.
    `model` is the tune's own, loaded already. Under a launch of several processes every
    rank reports its device and all decide on the tightest (tightest_device), so all refuse
    or none does: a rank refusing alone would leave the others waiting for it in their first
    collective until the process group's timeout."""
    if not (task.finetune.memory_check and estimate is not None and not _sharded()):
        return
    from accelerate.utils import gather_object

    free, where, device = device_memory()
    reports = gather_object([(free, _loaded_bytes(model), where, device)])  # [mine] alone
    free, loaded, where = tightest_device(reports)
    check_fits(task, estimate, loaded=loaded, available=(free, where))


def tightest_device(reports: list[tuple[int, int, str, str]]) -> tuple[int, int, str]:
    """Of every rank's (free bytes, bytes its loaded model holds, where, device key), the
    (free, loaded, where) to decide on: the rank with the least room (free + loaded),
    named with its rank when there are several. Ranks sharing one device (several
    processes on one machine's RAM) split what it has free: each needs the estimate less its
    own loaded model, which is already out of the free figure."""
    sharing: dict[str, int] = {}
    for *_, device in reports:
        sharing[device] = sharing.get(device, 0) + 1
    rooms = []
    for rank, (free, loaded, where, device) in enumerate(reports):
        share = free // sharing[device]
        named = where if len(reports) == 1 else \
            f"{where} (rank {rank} of {len(reports)}" + (
                f", one of {sharing[device]} processes sharing it)" if sharing[device] > 1
                else ")")
        rooms.append((share + loaded, share, loaded, named))
    _, free, loaded, where = min(rooms, key=lambda room: room[0])
    return free, loaded, where


def _sharded() -> bool:
    """FSDP or DeepSpeed under accelerate split the weights and optimizer across devices,
    which the one-device estimate does not model: no refusal there (DDP replicates, so the
    estimate holds per device once it counts DDP's gradient buckets: data_parallel)."""
    return any(os.environ.get(name, "").lower() in ("1", "true")
               for name in ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"))


def device_memory() -> tuple[int, str, str]:
    """Bytes the tune can use now, where, and a key naming the device: what this process's
    GPU has free (other processes, and this one's own inference copy of the model, hold the
    rest) plus what PyTorch's allocator keeps reserved for reuse (device.usable_gpu_bytes),
    else the memory the machine has available (MemAvailable: free plus what the kernel can
    reclaim)."""
    import socket

    import torch

    host = socket.gethostname()
    if torch.cuda.is_available():
        from rung.finetune.device import usable_gpu_bytes_now

        index = torch.cuda.current_device()
        return (usable_gpu_bytes_now(), f"GPU {torch.cuda.get_device_name(index)}",
                f"{host}:cuda:{index}")
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:  # not Linux: the physical memory, the best figure without /proc
        meminfo = ""
    available = available_ram(meminfo)
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return available, "this machine's RAM", f"{host}:ram"


def available_ram(meminfo: str) -> int | None:
    """Bytes of MemAvailable in the text of /proc/meminfo ("MemAvailable: 123 kB"), or None
    where it is not stated."""
    for line in meminfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "MemAvailable":
            number, *unit = value.split()
            scale = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}.get(
                unit[0].lower() if unit else "", 1)
            return int(number) * scale
    return None


def _loaded_bytes(model: Any) -> int:
    """The bytes the tune's own model holds already (its weights and buffers): part of the
    estimate, and no longer free."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def check_fits(task: TaskSpec, estimate: MemoryEstimate, *, loaded: int = 0,
               available: tuple[int, str] | None = None) -> None:
    """The seeds: right-size the hardware before you start. A tune whose estimated peak is
    over what the device has free now (its whole memory less what is already loaded, the
    trainable copy aside) would fail on its first long batch, or swap for hours on a CPU; so
    it is refused with what would make it fit."""
    free, where = available or device_memory()[:2]
    room = free + loaded  # the loaded weights are in the estimate: theirs counts as room
    if estimate.total <= room:
        return
    s = task.finetune
    import torch

    ways = []
    quantised = torch.cuda.is_available()  # QLoRA's 4-bit weights need a CUDA GPU
    if s.method == "full":
        ways.append('method = "lora" or "qlora"' if quantised else 'method = "lora"')
    elif s.method == "lora" and quantised:
        ways.append('method = "qlora" (4-bit base weights)')
    if not s.gradient_checkpointing:
        ways.append("gradient_checkpointing = true")
    ways.append(f"a smaller batch_size (now {s.batch_size}; raise gradient_accumulation to keep "
                "the effective batch) or max_seq_length")
    raise RungError(
        f"the {s.method} tune needs about {gb(estimate.total)} at its peak (weights "
        f"{gb(estimate.weights)}, optimizer {gb(estimate.optimizer)}, activations "
        f"{gb(estimate.activations)}) and {where} has {gb(free)} free now"
        + (f" besides the {gb(loaded)} its loaded weights hold" if loaded else ""),
        file=task.path,
        fix="in [finetune] set " + ", or ".join(ways) + "; or free the memory other "
            "processes hold; `rung estimate` shows the figures; memory_check = false tries "
            "anyway")
