"""What the GPU a tune runs on can do, and which GPU that is: read once, decided apart.

Each decision below is a pure function of the facts it depends on (compute capability,
native bf16, which process of a launch this is, the allocator's figures), so it is tested
with the facts given; the thin readers at the bottom (`gpu_facts`, `select_device`,
`usable_gpu_bytes_now`) take them from torch on a real machine and are all that needs one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# FlashAttention 2 runs on Ampere (compute capability 8.0) and newer
FLASH_ATTENTION_2_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class GpuFacts:
    """What the tune's GPU offers, as the decisions need it."""

    capability: tuple[int, int]  # CUDA compute capability: (8, 0) is an A100
    bf16_native: bool  # bf16 in hardware; T4 and V100 only emulate it (slowly)
    flash_attn_2: bool  # transformers' is_flash_attn_2_available(): flash-attn >= 2.3.3


def compute_dtype(gpu: GpuFacts | None) -> str | None:
    """The half precision a GPU computes in under autocast: bf16 where the hardware has it,
    else fp16 (whose narrow range needs the Trainer's loss scaling); None on a CPU (fp32)."""
    if gpu is None:
        return None
    return "bf16" if gpu.bf16_native else "fp16"


def flash_attention_usable(gpu: GpuFacts | None) -> bool:
    """Whether to ask transformers for FlashAttention 2: the flash-attn distribution it
    accepts (not FA4, which reuses the module name; not older than 2.3.3), on a GPU it
    runs on (Ampere or newer). Whether the model class supports it is learnt by loading
    (trainer._trainable_model falls back to SDPA)."""
    return (gpu is not None and gpu.flash_attn_2
            and gpu.capability >= FLASH_ATTENTION_2_CAPABILITY)


def local_rank(env: Mapping[str, str]) -> int | None:
    """This process's index on its machine under a launcher (accelerate, torchrun set
    LOCAL_RANK), or None when nothing launched several."""
    value = env.get("LOCAL_RANK", "").strip()
    return int(value) if value.lstrip("-").isdigit() and int(value) >= 0 else None


def device_index(rank: int | None, device_count: int, current: int) -> int:
    """The GPU this process trains on: under a launcher its local rank's (accelerate's own
    rule, state.py: local process index modulo the devices), else the current one."""
    if rank is None or device_count < 1:
        return current
    return rank % device_count


def usable_gpu_bytes(free: int, reserved: int, allocated: int) -> int:
    """What a GPU has for a tune: what the driver reports free, plus what this process's
    caching allocator holds reserved but not allocated (freed tensors it keeps for reuse,
    which the driver counts as taken)."""
    return free + max(reserved - allocated, 0)


# -- the thin readers: torch on a real machine ----------------------------------------------

def gpu_facts() -> GpuFacts | None:
    """The current CUDA device's facts, or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    from transformers.utils import is_flash_attn_2_available

    return GpuFacts(capability=tuple(torch.cuda.get_device_capability()),  # type: ignore[arg-type]
                    bf16_native=torch.cuda.is_bf16_supported(including_emulation=False),
                    flash_attn_2=is_flash_attn_2_available())


def select_device(env: Mapping[str, str] | None = None) -> int | None:
    """Make this process's own GPU the current one, before anything touches CUDA: under
    `accelerate launch` every rank would otherwise load the inference copy, open its CUDA
    context and quantise QLoRA's base on GPU 0, since accelerate picks each rank's GPU only
    when the Trainer's arguments are built. Returns the index, or None without CUDA."""
    import os

    import torch

    if not torch.cuda.is_available():
        return None
    index = device_index(local_rank(os.environ if env is None else env),
                         torch.cuda.device_count(), torch.cuda.current_device())
    torch.cuda.set_device(index)
    return index


def training_device_index() -> int | None:
    """The GPU index this process trains on (QLoRA's device_map), None without CUDA."""
    import os

    import torch

    if not torch.cuda.is_available():
        return None
    return device_index(local_rank(os.environ), torch.cuda.device_count(),
                        torch.cuda.current_device())


def usable_gpu_bytes_now() -> int:
    """usable_gpu_bytes of the current GPU."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    return usable_gpu_bytes(free, torch.cuda.memory_reserved(), torch.cuda.memory_allocated())
