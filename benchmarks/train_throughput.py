"""Training tokens per second of rung's LoRA fine-tune, beside the usual Trainer + PEFT script.

Both sides train SmolLM2-135M-Instruct (the support-tickets task's `models.small`, fp32 on the
CPU) with the same LoRA (the task's [finetune]: r=16, alpha=32, dropout 0.05 on q/k/v/o/up/down
projections), learning rate, schedule, batch, accumulation, epochs and seed, on the same first
`--examples` training examples rendered as rung trains them (the task's short [finetune]
instruction), both in batches of similar length (transformers' `LengthGroupedSampler`), each
evaluating on the same `--val` examples and keeping its best checkpoint: rung as its tunes do,
EVALS_PER_EPOCH (2) times an epoch and never fewer than patience + 2 times
(finetune/schedule.py: 4 readings in a 1-epoch run), the baseline once an epoch; evaluation is
not timed on either side. No record is longer than the training max length, so nothing is
truncated.

- rung: `rung.finetune.train.fine_tune` as it is: TRL's SFTTrainer with prompt-completion
  records (loss on the answer only), batches of similar length padded to the longest in the
  batch (`train_sampling_strategy="group_by_length"` on the CPU), the LM head run only at the
  answer positions (finetune/answer_loss.py).
- baseline (named "hf-trainer-group-by-length"): what a competent user writes: transformers
  `Trainer` + `peft.get_peft_model`, each record rendered with the chat template, labels -100
  outside the answer, batches of similar length (`train_sampling_strategy="group_by_length"`,
  the same one-argument option rung sets) padded to their longest record
  (`DataCollatorForSeq2Seq`), the LM head on every position as the model computes it.

What each side trained on is counted from the batches themselves: a forward pre-hook on each
trainer's model reads every training forward's `input_ids`, `attention_mask` and
`logits_to_keep`. Each row's real tokens (attention mask) must be the same on both sides: the
sorted per-row lengths are equal and cover every record once an epoch (asserted): identical
work. Whether the two samplers also formed the same batches is reported (`same_batches`);
what differs is padding and the LM head rows. Time: the same callback on both trainers sums
the wall time of the optimizer steps (batch fetch and collation, forward, backward, optimizer,
logging) and leaves out the evaluations, checkpoint saving and the best-model reload, which
both also do.

FLOPs are counted from what ran, per batch of B rows padded to width W with real lengths T_i:

    real tokens x (4*N_lin + 6*N_lora) + 12*L*d_attn * sum(T_i^2) + head rows x 4*h*V

N_lin = decoder linear weights (frozen: forward 2 FLOPs a weight, backward 2 for the activation
gradient, no weight gradient); N_lora = adapter weights (6); attention QK^T and AV; the LM head
(h*V, tied and frozen: 4 a row) counted on the rows where it ran on a real token: every real
position for the baseline, the answer positions for rung. MFU = those FLOPs / step seconds /
measured GEMM peak (the best fp32 `torch.matmul` of square n x n matrices, n = 512..2048, on
the same threads). HFU counts what ran on padding too (B*W rows, W^2 attention, every head row).

    OMP_NUM_THREADS=2 python benchmarks/train_throughput.py [--examples 64] [--val 8]

Last line: JSON with ratio, tokens_rung, tokens_baseline, mfu, hfu, baseline_mfu,
baseline_hfu, rung_tokens_per_s, baseline_tokens_per_s, gemm_peak_gflops, machine, ...
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may download: the model is a packaged GGUF
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from rung.climb import load_examples, make_split  # noqa: E402
from rung.finetune.data import sft_records  # noqa: E402
from rung.finetune.methods import learning_rate  # noqa: E402
from rung.finetune.train import fine_tune  # noqa: E402
from rung.models.registry import resolve  # noqa: E402
from rung.pipeline import Pipeline  # noqa: E402
from rung.task import TaskSpec, load_task  # noqa: E402

TASK = Path(__file__).resolve().parents[1] / "examples" / "support-tickets"


class StepClock(TrainerCallback):
    """Seconds spent in optimizer steps: from the start of training (or the end of the last
    evaluation or save) to each step's end. Evaluation, saving and the best-model reload
    fall outside."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self._mark: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.seconds += now - self._mark
        self.steps += 1
        self._mark = now

    def on_evaluate(self, args, state, control, **kwargs):
        self._mark = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        self._mark = time.perf_counter()


class WorkMeter(TrainerCallback):
    """What every training forward pass processed, read off its inputs by a pre-hook on the
    trainer's model: real tokens, padded rows and width, and the rows the LM head ran on."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        model.register_forward_pre_hook(self._seen, with_kwargs=True)

    def _seen(self, module, args, kwargs):
        if not module.training:  # evaluation is not training work
            return
        ids = kwargs["input_ids"]
        rows, width = ids.shape
        mask = kwargs.get("attention_mask")
        lengths = mask.sum(dim=1).tolist() if mask is not None else [width] * rows
        keep = kwargs.get("logits_to_keep", 0)
        positions = keep.tolist() if torch.is_tensor(keep) else \
            list(range(width - keep, width)) if keep else list(range(width))
        self.batches.append({
            "lengths": lengths, "rows": rows, "width": width, "head_rows": rows * len(positions),
            # a head row on a real token: position p of a row of length T, with p < T
            "head_real": sum(sum(1 for p in positions if p < t) for t in lengths)})

    @property
    def tokens(self) -> int:
        return int(sum(sum(b["lengths"]) for b in self.batches))

    @property
    def rows(self) -> list[int]:
        """Every training row's real length, sorted: what was trained on, whatever the
        order."""
        return sorted(int(t) for b in self.batches for t in b["lengths"])

    @property
    def batch_shapes(self) -> list[list[int]]:
        """Each training batch's sorted real lengths, in step order."""
        return [sorted(int(t) for t in b["lengths"]) for b in self.batches]

    @property
    def padded(self) -> int:
        """Positions that ran, padding included."""
        return int(sum(b["rows"] * b["width"] for b in self.batches))

    def flops(self, terms: dict[str, int], n_lora: int, *, padded: bool) -> float:
        """Training FLOPs of the batches seen (see the module docstring): on real tokens
        only, or (padded) on everything that ran."""
        linear = 4 * terms["n_lin"] + 6 * n_lora
        attention = 12 * terms["layers"] * terms["d_attn"]
        total = 0.0
        for b in self.batches:
            if padded:
                total += b["rows"] * b["width"] * linear + attention * b["rows"] * b["width"] ** 2
                total += b["head_rows"] * 4 * terms["head"]
            else:
                total += sum(b["lengths"]) * linear + attention * sum(t * t for t in b["lengths"])
                total += b["head_real"] * 4 * terms["head"]
        return total


def gemm_peak(sizes=(512, 1024, 1536, 2048), repeats: int = 5) -> dict[str, Any]:
    """Best fp32 matmul rate of square matrices on this process's torch threads."""
    best: dict[int, float] = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - start)
        best[n] = 2 * n**3 / min(times)
    return {"flops": max(best.values()), "by_size_gflops": {n: round(f / 1e9, 1)
                                                           for n, f in best.items()}}


def tuning_pipeline(task: TaskSpec) -> Pipeline:
    """What rung's tune of this task is trained through: the plain prompt variant with the
    [finetune] instruction (the task's own instruction when it sets none)."""
    return Pipeline(rung="prompt", kind=task.task.kind, model=task.models.small,
                    instruction=task.finetune.instruction or task.task.instruction,
                    variant="instruction", labels=list(task.task.labels),
                    max_new_tokens=task.eval.max_new_tokens, base_dir=str(task.root),
                    details={"variant": "instruction"})


def render(tokenizer: Any, record: dict[str, Any]) -> tuple[list[int], int]:
    """Token ids of the whole conversation and how many of them are the prompt."""
    full = tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=False)
    prompt = tokenizer.apply_chat_template(record["prompt"], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if ids[: len(prompt_ids)] != prompt_ids:
        raise SystemExit("the rendered prompt is not a prefix of the rendered conversation")
    return ids, len(prompt_ids)


def tokenized_dataset(tokenizer: Any, records: list[dict[str, Any]]) -> Any:
    """Each record rendered with the chat template, unpadded, loss on the answer only."""
    from datasets import Dataset

    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for record in records:
        ids, n_prompt = render(tokenizer, record)
        rows["input_ids"].append(ids)
        rows["attention_mask"].append([1] * len(ids))
        rows["labels"].append([-100] * n_prompt + ids[n_prompt:])
    return Dataset.from_dict(rows)


def load_tokenizer(pipeline: Pipeline) -> Any:
    from rung.models.hf import load_tokenizer as load

    tokenizer = load(resolve(pipeline.model, base_dir=Path(pipeline.base_dir)))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(pipeline: Pipeline) -> Any:
    """The base weights in fp32, loaded exactly as rung's recipe loads them on a CPU."""
    from rung.models.hf import load_causal_lm

    return load_causal_lm(resolve(pipeline.model, base_dir=Path(pipeline.base_dir)),
                          dtype=torch.float32)


def baseline_train(task: TaskSpec, pipeline: Pipeline, train_records: list, val_records: list,
                   out: Path, meter: WorkMeter) -> dict[str, Any]:
    """transformers Trainer + PEFT LoRA, length-grouped batches padded to their longest
    record."""
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, \
        TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    import datasets

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    s = task.finetune
    seed = s.seed if s.seed is not None else task.task.seed
    set_seed(seed)
    tokenizer = load_tokenizer(pipeline)
    model = load_model(pipeline)
    terms = flop_terms(model)
    model = get_peft_model(model, LoraConfig(
        r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=s.target_modules,
        bias="none", task_type="CAUSAL_LM"))
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=s.epochs, per_device_train_batch_size=s.batch_size,
        per_device_eval_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation,
        learning_rate=learning_rate(s), lr_scheduler_type=s.scheduler,
        warmup_steps=s.warmup_ratio, weight_decay=s.weight_decay,
        train_sampling_strategy="group_by_length",  # batches of similar length, as rung's
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        save_total_limit=s.keep_checkpoints, logging_steps=1, report_to=[], use_cpu=True,
        seed=seed, disable_tqdm=True)
    clock = StepClock()
    trainer = Trainer(model=model, args=args,
                      train_dataset=tokenized_dataset(tokenizer, train_records),
                      eval_dataset=tokenized_dataset(tokenizer, val_records),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest"),
                      callbacks=[clock, meter])
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.train()
    wall = time.perf_counter() - started
    return {"clock": clock, "wall": wall, "steps": trainer.state.global_step,
            "epochs": trainer.state.epoch, "terms": terms,
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def flop_terms(model: Any) -> dict[str, int]:
    """N_lin (decoder linear weights), h*V (LM head), L, d_attn, read off the base model."""
    cfg = model.config
    n_lin = sum(m.weight.numel() for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and ".layers." in f".{name}.")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return {"n_lin": n_lin, "head": model.get_output_embeddings().weight.numel(),
            "layers": cfg.num_hidden_layers, "d_attn": cfg.num_attention_heads * head_dim}


def machine() -> dict[str, Any]:
    model_name = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpu": model_name,
            "torch": torch.__version__, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=64, help="training examples (the first N)")
    parser.add_argument("--val", type=int, default=8, help="val examples each evaluation reads")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="default: the task's batch_size")
    parser.add_argument("--accumulation", type=int, default=1,
                        help="gradient accumulation (the task's 4 leaves a small subset one step)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    task = load_task(TASK)
    settings = task.finetune.model_copy(update={
        "epochs": float(args.epochs), "batch_size": args.batch or task.finetune.batch_size,
        "gradient_accumulation": args.accumulation})
    task = task.model_copy(update={"finetune": settings})
    split = make_split(task, load_examples(task))
    pipeline = tuning_pipeline(task)
    train, val = split.train[: args.examples], split.val[: args.val]
    train_records, val_records = sft_records(pipeline, train), sft_records(pipeline, val)

    tokenizer = load_tokenizer(pipeline)
    lengths = [len(render(tokenizer, r)[0]) for r in train_records]
    val_lengths = [len(render(tokenizer, r)[0]) for r in val_records]
    max_length = settings.max_seq_length or task.audit.max_seq_length
    if max(lengths + val_lengths) > max_length:
        raise SystemExit(f"a record of {max(lengths + val_lengths)} tokens is longer than the "
                         f"training max length {max_length}: rung would train on a truncated "
                         "copy and the two sides would not do the same work")

    peak = gemm_peak()
    peak_flops = peak["flops"]
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; "
          f"fp32 GEMM peak {peak_flops / 1e9:.1f} GFLOP/s {peak['by_size_gflops']}")
    print(f"task support-tickets: {len(train)} train x {args.epochs} epoch(s), {len(val)} val; "
          f"batch {settings.batch_size} x accumulation {settings.gradient_accumulation}, "
          f"lr {learning_rate(settings):g}, LoRA r={settings.rank} alpha={settings.alpha}; "
          f"records {min(lengths)}-{max(lengths)} tokens (max length {max_length}), "
          f"{sum(lengths)} real tokens per epoch")

    rung_meter, base_meter = WorkMeter(), WorkMeter()
    with tempfile.TemporaryDirectory() as folder:
        rung_clock = StepClock()
        started = time.perf_counter()
        result = fine_tune(task, pipeline, train, val, Path(folder) / "rung",
                           callbacks=[rung_clock, rung_meter])
        rung_call = time.perf_counter() - started  # loading and tokenizing included
        base = baseline_train(task, pipeline, train_records, val_records,
                              Path(folder) / "baseline", base_meter)

    terms, n_lora, base_clock = base["terms"], result.trainable_parameters, base["clock"]
    tokens_rung, tokens_base = rung_meter.tokens, base_meter.tokens
    # identical work: the same rows went through both trainers, every record whole once an
    # epoch (sorted real lengths, row for row, not only equal totals)
    every_record = sorted(lengths * args.epochs)
    assert rung_meter.rows == base_meter.rows == every_record, \
        (rung_meter.rows, base_meter.rows, every_record)
    same_batches = rung_meter.batch_shapes == base_meter.batch_shapes
    assert n_lora == base["trainable"], (n_lora, base["trainable"])
    rung_tps = tokens_rung / rung_clock.seconds
    base_tps = tokens_base / base_clock.seconds
    ratio = rung_tps / base_tps
    rung_model, rung_hw = (rung_meter.flops(terms, n_lora, padded=p) for p in (False, True))
    base_model, base_hw = (base_meter.flops(terms, n_lora, padded=p) for p in (False, True))
    mfu, hfu = (f / rung_clock.seconds / peak_flops for f in (rung_model, rung_hw))
    base_mfu, base_hfu = (f / base_clock.seconds / peak_flops for f in (base_model, base_hw))
    head_rung = sum(b["head_rows"] for b in rung_meter.batches)
    head_base = sum(b["head_rows"] for b in base_meter.batches)

    print(f"FLOPs: N_lin {terms['n_lin'] / 1e6:.1f}M, LM head h*V {terms['head'] / 1e6:.1f}M, "
          f"N_lora {n_lora / 1e6:.2f}M, L {terms['layers']}, d_attn {terms['d_attn']}")
    print(f"tokens trained, counted from the batches: rung {tokens_rung}, baseline "
          f"{tokens_base}; padded rows x width: rung {rung_meter.padded}, baseline "
          f"{base_meter.padded}; same batches: {same_batches}; LM head rows: rung "
          f"{head_rung}, baseline {head_base}")
    print(f"hf-trainer-group-by-length: {base_tps:.1f} tokens/s ({base_clock.seconds:.1f} s in "
          f"{base_clock.steps} steps; train() {base['wall']:.1f} s), MFU {base_mfu:.1%}, "
          f"HFU {base_hfu:.1%}")
    print(f"rung fine_tune: {rung_tps:.1f} tokens/s ({rung_clock.seconds:.1f} s in "
          f"{rung_clock.steps} steps; train() {result.seconds:.1f} s), MFU {mfu:.1%}, "
          f"HFU {hfu:.1%}")
    print(f"ratio {ratio:.2f}x")
    print(json.dumps({
        "ratio": round(ratio, 3),
        "tokens_rung": tokens_rung,
        "tokens_baseline": tokens_base,
        "rows": len(rung_meter.rows),
        "same_batches": same_batches,
        "padded_positions": {"rung": rung_meter.padded, "baseline": base_meter.padded},
        "mfu": round(mfu, 4), "hfu": round(hfu, 4),
        "baseline_mfu": round(base_mfu, 4), "baseline_hfu": round(base_hfu, 4),
        "rung_tokens_per_s": round(rung_tps, 2),
        "baseline_tokens_per_s": round(base_tps, 2),
        "model_flops": {"rung": rung_model, "baseline": base_model},
        "executed_flops": {"rung": rung_hw, "baseline": base_hw},
        "lm_head_rows": {"rung": head_rung, "baseline": head_base},
        "gemm_peak_gflops": round(peak_flops / 1e9, 2),
        "gemm_by_size_gflops": peak["by_size_gflops"],
        "rung_step_s": round(rung_clock.seconds, 2),
        "baseline_step_s": round(base_clock.seconds, 2),
        "rung_train_wall_s": round(result.seconds, 2),
        "baseline_train_wall_s": round(base["wall"], 2),
        "rung_call_wall_s": round(rung_call, 2),
        "steps": {"rung": rung_clock.steps, "baseline": base_clock.steps},
        "baseline": "hf-trainer-group-by-length (Trainer + PEFT LoRA, "
                    "train_sampling_strategy='group_by_length', DataCollatorForSeq2Seq "
                    "padding each batch to its longest record)",
        "max_length": max_length,
        "examples": len(train),
        "val": len(val),
        "epochs": args.epochs,
        "batch_size": settings.batch_size,
        "gradient_accumulation": settings.gradient_accumulation,
        "n_lin": terms["n_lin"], "lm_head": terms["head"], "n_lora": n_lora,
        "n": len(train),
        "cores": os.cpu_count(),
        "machine": machine(),
    }))


if __name__ == "__main__":
    main()
