"""The GPU paths' decisions, with the facts they depend on given: no GPU runs here, so each
decision a GPU machine makes (which GPU a rank takes, bf16 or fp16, FlashAttention or not,
whether weights are sharded, what is counted and saved) is a pure function tested on the
facts of the machines that make it, and what can run on a CPU (the attention fallback,
saving whole weights in their serving dtype) runs here with the real libraries."""

from __future__ import annotations

from rung.finetune.device import device_index, local_rank


def test_each_rank_of_a_launch_takes_its_own_gpu() -> None:
    """accelerate picks each rank's GPU only when the Trainer's arguments are built; until
    then every rank's CUDA work (the inference copy, QLoRA's 4-bit load, the memory
    reading) went to GPU 0. The rank's GPU follows accelerate's own rule: local rank
    modulo the GPUs; without a launcher, the current GPU."""
    assert local_rank({"LOCAL_RANK": "1", "RANK": "5"}) == 1
    assert local_rank({}) is None and local_rank({"LOCAL_RANK": ""}) is None
    assert device_index(local_rank({"LOCAL_RANK": "1"}), device_count=2, current=0) == 1
    assert device_index(3, device_count=2, current=0) == 1
    assert device_index(None, device_count=4, current=2) == 2
