"""Data-parallel fine-tuning: `accelerate launch` runs `rung tune` on two CPU processes (gloo),
each sees half of every batch, and both finish with the same adapter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_task

FINETUNE = """
[finetune]
rank = 4
alpha = 8
epochs = 1
batch_size = 4
gradient_accumulation = 1
"""


def test_two_processes_train_the_same_adapter(task_dir: Path, tiny_llama: Path) -> None:
    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    # accelerate's --cpu path for several processes goes through mpirun; its torchrun path
    # (--multi_gpu) starts the same gloo process group on a machine without GPUs.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
              "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no", "--main_process_port", "29533",
              "-m", "rung.cli", "tune", str(toml), "--force", "--json"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout)  # one record: only the first process prints
    [record] = [json.loads(p.read_text()) for p in (task_dir / ".rung" / "tunes").glob("*/artifact/tune.json")]
    assert record["world_size"] == printed["world_size"] == 2
    first, second = record["rank_digests"]
    assert first == second  # both ranks hold the same trained weights
    n_train = _train_size(toml)
    assert record["steps"] == -(-n_train // (4 * 2))  # each step: 4 examples on each of 2 ranks


def _train_size(toml: Path) -> int:
    from rung.climb import load_examples, make_split
    from rung.task import load_task

    task = load_task(toml)
    return len(make_split(task, load_examples(task)).train)
