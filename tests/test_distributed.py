"""Data-parallel fine-tuning: `accelerate launch` runs `rung tune` on two CPU processes (gloo),
each sees half of every batch, and both finish with the same adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import finetune_table, write_task

CONFIGS = Path(__file__).parent.parent / "examples" / "accelerate"

# val read every 3 steps: twice in the epoch's 6, too few for a patience of 2 to end it
# early, so the test counts the steps of the whole epoch
FINETUNE = finetune_table(rank=4, alpha=8, epochs=1, batch_size=4, gradient_accumulation=1,
                          eval_steps=3)


def test_two_processes_train_the_same_adapter(task_dir: Path, tiny_llama: Path) -> None:
    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # The shipped ddp.yaml: accelerate's --cpu path for several processes goes through
    # mpirun; its torchrun path starts the same gloo process group on a machine without GPUs.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(CONFIGS / "ddp.yaml"), "--main_process_port", "29533",
              "-m", "rung.cli", "tune", str(toml), "--force", "--json"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)  # one record: only the first process prints
    [record] = [json.loads(p.read_text()) for p in (task_dir / ".rung" / "tunes").glob("*/artifact/tune.json")]
    assert record["world_size"] == printed["world_size"] == 2
    first, second = record["rank_digests"]
    assert first == second  # both ranks hold the same trained weights
    n_train = _train_size(toml)
    assert not record["stopped_early"]
    assert record["steps"] == -(-n_train // (4 * 2))  # each step: 4 examples on each of 2 ranks


def _train_size(toml: Path) -> int:
    from rung.climb import load_examples, make_split
    from rung.task import load_task

    task = load_task(toml)
    return len(make_split(task, load_examples(task)).train)


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"),
                                        ("deepspeed_zero2", "DEEPSPEED")])
def test_shipped_accelerate_configs_load(name: str, kind: str) -> None:
    """The GPU configs cannot run here; accelerate must at least read them as meant."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert config.distributed_type.name == kind and config.num_machines == 1
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    if kind == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 2
