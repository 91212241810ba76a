"""The GPU paths' decisions, with the facts they depend on given: no GPU runs here, so each
decision a GPU machine makes (which GPU a rank takes, bf16 or fp16, FlashAttention or not,
whether weights are sharded, what is counted and saved) is a pure function tested on the
facts of the machines that make it, and what can run on a CPU (the attention fallback,
saving whole weights in their serving dtype) runs here with the real libraries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rung.finetune.device import (
    GpuFacts,
    device_index,
    flash_attention_usable,
    local_rank,
)

A100 = GpuFacts(capability=(8, 0), bf16_native=True, flash_attn_2=True)
H100_FA4_ONLY = GpuFacts(capability=(9, 0), bf16_native=True, flash_attn_2=False)
T4_WITH_FLASH_ATTN = GpuFacts(capability=(7, 5), bf16_native=False, flash_attn_2=True)


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


def test_flash_attention_only_where_transformers_and_the_gpu_take_it() -> None:
    """`import flash_attn` working was taken as enough: transformers also wants the
    flash-attn distribution at 2.3.3 or later (FA4 reuses the module name), and FA2 runs on
    Ampere (capability 8.0) or newer."""
    assert flash_attention_usable(A100)
    assert not flash_attention_usable(H100_FA4_ONLY)
    assert not flash_attention_usable(T4_WITH_FLASH_ATTN)
    assert not flash_attention_usable(None)  # no GPU


def test_a_model_class_without_flash_attention_loads_with_the_default(tmp_path: Path) -> None:
    """A model class without FlashAttention 2 raised at load; now it loads with SDPA (or
    what transformers falls back to), and the batching follows what it loaded with."""
    import torch
    from transformers import BloomConfig, BloomForCausalLM

    from rung.finetune.trainer import attention, load_with_attention

    torch.manual_seed(0)
    BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=16, n_layer=1, n_head=2)) \
        .save_pretrained(tmp_path)

    def load(**kwargs: object) -> object:
        return BloomForCausalLM.from_pretrained(tmp_path, **kwargs)

    with pytest.raises(ValueError, match="does not support Flash Attention"):
        load(attn_implementation="flash_attention_2")
    model = load_with_attention(load, flash=True)
    assert attention(model) not in (None, "flash_attention_2")
    assert attention(load_with_attention(load, flash=False)) == attention(model)


def test_sharded_weights_are_fsdp_s_and_zero_3_s() -> None:
    from rung.finetune.train import weights_sharded

    assert weights_sharded(True, None) and weights_sharded(False, 3)
    assert not weights_sharded(False, 2) and not weights_sharded(False, None)


def test_parameters_are_counted_whole_under_zero_3_and_4_bit() -> None:
    """ZeRO-3 leaves every rank's parameters empty (numel 0; DeepSpeed keeps ds_numel), so
    total_parameters was 0 and the share divided by it; bitsandbytes packs two 4-bit
    weights a byte, so QLoRA's total was half and its trainable share twice the truth."""
    import torch

    from rung.finetune.train import parameter_count, parameter_counts

    assert parameter_count(0, ds_numel=4096) == 4096
    assert parameter_count(512, packed_bytes=1) == 1024  # a uint8-stored Params4bit
    assert parameter_count(512) == 512
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)
    assert parameter_counts(model) == (3 * 2 + 2, 4 * 3 + 3 + 3 * 2 + 2)


def test_a_record_with_no_parameters_counted_has_no_share() -> None:
    from rung.finetune.record import TuneResult

    result = TuneResult(method="full", artifact=Path("a"), curves=[], best_step=None,
                        best_val_loss=None, stopped_early=False, steps=0, epochs=0.0,
                        seconds=0.0, trainable_parameters=0, total_parameters=0,
                        train_tokens=0)
    assert result.summary()["trainable_share"] is None


def test_whole_weights_trained_under_autocast_are_saved_in_its_dtype() -> None:
    from rung.finetune.train import saved_dtype

    assert saved_dtype("all", "bf16") == "bf16" and saved_dtype("all", "fp16") == "fp16"
    assert saved_dtype("all", None) is None  # fp32 on a CPU: saved as trained
    assert saved_dtype("lora", "bf16") is None and saved_dtype("soft-prompt", "bf16") is None


def test_a_full_tune_is_written_in_bf16_with_its_tied_weights_once(tiny_llama: Path,
                                                                    tmp_path: Path) -> None:
    """A full tune keeps fp32 weights under bf16 autocast and was written in fp32: twice the
    disk, and vLLM's --dtype auto serves fp32 as fp16. Written through the Trainer's
    accelerator as a tune's first rank writes it: bf16 tensors, config.json saying so (vLLM
    reads it), the tied embedding once, and it loads back tied."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from rung.finetune.record import save_weights

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    trainer = Trainer(model=model, processing_class=AutoTokenizer.from_pretrained(tiny_llama),
                      args=TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True,
                                             report_to=[]))
    staging = tmp_path / "artifact.tmp"
    save_weights(trainer, staging, dtype="bf16", sharded=False)
    assert json.loads((staging / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(staging / "model.safetensors"), "pt") as saved:
        names = list(saved.keys())
        assert {saved.get_tensor(n).dtype for n in names} == {torch.bfloat16}
    assert ("lm_head.weight" in names) != ("model.embed_tokens.weight" in names)
    assert (staging / "tokenizer_config.json").exists()
    assert model.dtype == torch.float32  # the trained model itself is left as it was
    back = AutoModelForCausalLM.from_pretrained(staging)
    assert back.lm_head.weight.data_ptr() == back.model.embed_tokens.weight.data_ptr()
    assert torch.equal(back.lm_head.weight.float(), model.lm_head.weight.bfloat16().float())
