"""Training tokens per second of rung's LoRA fine-tune, beside the seeds' recipe written plainly.

Both sides train SmolLM2-135M-Instruct (the support-tickets task's `models.small`, fp32 on the
CPU) with the same LoRA (the task's [finetune]: r=16, alpha=32, dropout 0.05 on q/k/v/o/up/down
projections), learning rate, schedule, batch, accumulation, epochs and seed, on the same first
`--examples` training examples rendered with the zero-shot prompt pipeline, each evaluating
once per epoch on the same `--val` examples and keeping its best checkpoint.

- rung: `rung.finetune.train.fine_tune` as it is: TRL's SFTTrainer with prompt-completion
  records (loss on the answer only), batches of similar length padded to the longest in
  the batch (`train_sampling_strategy="group_by_length"` on the CPU).
- baseline (named "hf-trainer-pad-max-length"): transformers `Trainer` + `peft.get_peft_model`,
  every record rendered with the chat template and tokenized with `padding="max_length"`,
  labels -100 outside the answer. The max length is the first step of the seeds' table
  (512-4096: 512, 1024, 2048, 4096) that holds the longest training example of the task, as
  "match your data" asks (1024 here: the records run 440-670 tokens; 512 would cut answers
  off). `--max-length` overrides it; a length that would truncate a record is refused.

Time: the same callback on both trainers sums the wall time of the optimizer steps (batch
fetch and collation, forward, backward, optimizer, logging) and leaves out the per-epoch
evaluation, checkpoint saving and the best-model reload, which both recipes also do;
`*_wall_s` are the whole `train()` calls beside it. Model loading and tokenizing are outside
both. rung runs first, so any process-wide warm-up not absorbed by the GEMM measurement counts
against rung, not the baseline. Tokens are real training tokens (prompt + answer, no pads),
the same count on both sides; rung's own counter (TRL's `num_tokens`) is printed to check it.

Model FLOPs utilisation (MFU) = model FLOPs / step seconds / measured GEMM peak. The peak is
the best fp32 `torch.matmul` of square n x n matrices (n = 512..2048, best of several:
2n^3 / t) on the same threads. Model FLOPs of a sequence of T real tokens, LoRA on a frozen
base (PaLM's convention, attention counted without the causal half):

    T * (4*N_lin + 4*h*V + 6*N_lora) + 12 * L * d_attn * T^2

N_lin = weights of the decoder layers' linear projections (embeddings excluded); forward 2
FLOPs per weight, backward 2 more for the activation gradient; the frozen weights' own
gradients (another 2) are skipped. h*V = the LM head (tied to the embedding, frozen), run on
every position: 4*h*V, which on a 49k vocabulary is a third of N_lin. N_lora = adapter
weights, trained: 6 per weight. Attention: QK^T and AV, 4*d_attn*T per token per layer
forward, three times that with backward. Full fine-tuning would be 6*N_lin + 6*h*V + ...;
printed for reference only. The baseline's MFU uses the same model FLOPs (pads are not
useful work); its `baseline_hfu` counts the FLOPs it executes on padded rows as well.

    OMP_NUM_THREADS=2 python benchmarks/train_throughput.py [--examples 16] [--val 8]

Last line: JSON with ratio, mfu, rung_tokens_per_s, baseline_tokens_per_s, gemm_peak_gflops,
tokens, machine, and the rest.
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
SEEDS_LENGTHS = (512, 1024, 2048, 4096)  # the seeds' "Max sequence length 512-4096"


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


def zero_shot_pipeline(task: TaskSpec) -> Pipeline:
    """The plain prompt rung's first candidate: the task's instruction as the system turn."""
    return Pipeline(rung="prompt", kind=task.task.kind, model=task.models.small,
                    instruction=task.task.instruction, variant="instruction",
                    labels=list(task.task.labels), max_new_tokens=task.eval.max_new_tokens,
                    base_dir=str(task.root), details={"variant": "instruction"})


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


def padded_dataset(tokenizer: Any, records: list[dict[str, Any]], max_length: int) -> Any:
    """The seeds' recipe: every record padded to max_length, loss on the answer only."""
    from datasets import Dataset

    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for record in records:
        full = tokenizer.apply_chat_template(record["prompt"] + record["completion"],
                                             tokenize=False)
        enc = tokenizer(full, padding="max_length", max_length=max_length, truncation=True,
                        add_special_tokens=False)
        _, n_prompt = render(tokenizer, record)
        labels = [-100 if i < n_prompt or not m else t
                  for i, (t, m) in enumerate(zip(enc["input_ids"], enc["attention_mask"]))]
        rows["input_ids"].append(enc["input_ids"])
        rows["attention_mask"].append(enc["attention_mask"])
        rows["labels"].append(labels)
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
                   max_length: int, out: Path) -> dict[str, Any]:
    """transformers Trainer + PEFT LoRA on max-length-padded records, as the seeds write it."""
    from peft import LoraConfig, get_peft_model
    from transformers import PrinterCallback, Trainer, TrainingArguments, \
        default_data_collator, set_seed
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
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        save_total_limit=s.keep_checkpoints, logging_steps=1, report_to=[], use_cpu=True,
        seed=seed, disable_tqdm=True)
    clock = StepClock()
    trainer = Trainer(model=model, args=args,
                      train_dataset=padded_dataset(tokenizer, train_records, max_length),
                      eval_dataset=padded_dataset(tokenizer, val_records, max_length),
                      data_collator=default_data_collator, callbacks=[clock])
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


def model_flops(lengths: list[int], terms: dict[str, int], n_lora: int, *,
                full: bool = False) -> float:
    """Training FLOPs of sequences of these lengths (see the module docstring)."""
    per_token = (6 * terms["n_lin"] + 6 * terms["head"]) if full else \
        (4 * terms["n_lin"] + 4 * terms["head"] + 6 * n_lora)
    attention = 12 * terms["layers"] * terms["d_attn"]
    return float(sum(t * per_token + attention * t * t for t in lengths))


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
    parser.add_argument("--examples", type=int, default=16, help="training examples (the first N)")
    parser.add_argument("--val", type=int, default=8, help="val examples for the per-epoch eval")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="default: the task's batch_size")
    parser.add_argument("--accumulation", type=int, default=1,
                        help="gradient accumulation (the task's 4 leaves a small subset one step)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="the baseline's padded width; default: the seeds' smallest step "
                             "(512/1024/2048/4096) holding the task's longest training example")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    task = load_task(TASK)
    settings = task.finetune.model_copy(update={
        "epochs": float(args.epochs), "batch_size": args.batch or task.finetune.batch_size,
        "gradient_accumulation": args.accumulation})
    task = task.model_copy(update={"finetune": settings})
    split = make_split(task, load_examples(task))
    pipeline = zero_shot_pipeline(task)
    train, val = split.train[: args.examples], split.val[: args.val]
    train_records, val_records = sft_records(pipeline, train), sft_records(pipeline, val)

    tokenizer = load_tokenizer(pipeline)
    lengths = [len(render(tokenizer, r)[0]) for r in train_records]
    val_lengths = [len(render(tokenizer, r)[0]) for r in val_records]
    longest = max(len(render(tokenizer, r)[0]) for r in sft_records(pipeline, split.train))
    max_length = args.max_length or next((n for n in SEEDS_LENGTHS if n >= longest), longest)
    too_long = sum(n > max_length for n in lengths + val_lengths)
    if too_long:
        raise SystemExit(f"--max-length {max_length} would truncate {too_long} records (the "
                         f"longest has {max(lengths + val_lengths)} tokens): the baseline would "
                         "train on less than rung")
    per_epoch = sum(lengths)

    peak = gemm_peak()
    peak_flops = peak["flops"]
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; "
          f"fp32 GEMM peak {peak_flops / 1e9:.1f} GFLOP/s {peak['by_size_gflops']}")
    print(f"task support-tickets: {len(train)} train x {args.epochs} epoch(s), {len(val)} val; "
          f"batch {settings.batch_size} x accumulation {settings.gradient_accumulation}, "
          f"lr {learning_rate(settings):g}, LoRA r={settings.rank} alpha={settings.alpha}; "
          f"records {min(lengths)}-{max(lengths)} tokens, {per_epoch} real tokens per epoch")

    with tempfile.TemporaryDirectory() as folder:
        rung_clock = StepClock()
        started = time.perf_counter()
        result = fine_tune(task, pipeline, train, val, Path(folder) / "rung",
                           callbacks=[rung_clock])
        rung_call = time.perf_counter() - started  # loading and tokenizing included
        base = baseline_train(task, pipeline, train_records, val_records, max_length,
                              Path(folder) / "baseline")

    terms, n_lora, base_clock = base["terms"], result.trainable_parameters, base["clock"]
    # 1 epoch never stops early; with more, rung's early stopping may end it sooner
    rung_epochs, base_epochs = round(result.epochs), round(base["epochs"])
    rung_tokens, base_tokens = per_epoch * rung_epochs, per_epoch * base_epochs
    if result.train_tokens != rung_tokens:
        print(f"warning: rung's token counter says {result.train_tokens}, this script "
              f"{rung_tokens}")
    if n_lora != base["trainable"]:
        print(f"warning: trainable parameters differ: rung {n_lora}, baseline "
              f"{base['trainable']}")

    flops_epoch = model_flops(lengths, terms, n_lora)
    per_token = flops_epoch / per_epoch
    full_per_token = model_flops(lengths, terms, 0, full=True) / per_epoch
    padded_epoch = model_flops([max_length] * len(lengths), terms, n_lora)
    rung_tps = rung_tokens / rung_clock.seconds
    base_tps = base_tokens / base_clock.seconds
    mfu = flops_epoch * rung_epochs / rung_clock.seconds / peak_flops
    base_mfu = flops_epoch * base_epochs / base_clock.seconds / peak_flops
    base_hfu = padded_epoch * base_epochs / base_clock.seconds / peak_flops
    ratio = rung_tps / base_tps

    print(f"FLOPs: N_lin {terms['n_lin'] / 1e6:.1f}M, LM head h*V {terms['head'] / 1e6:.1f}M, "
          f"N_lora {n_lora / 1e6:.2f}M, L {terms['layers']}, d_attn {terms['d_attn']}")
    print("model FLOPs per sequence of T tokens (LoRA, frozen base) = "
          "T*(4*N_lin + 4*h*V + 6*N_lora) + 12*L*d_attn*T^2: "
          f"{per_token / 1e6:.0f} MFLOP per token here (full fine-tuning, "
          f"T*(6*N_lin + 6*h*V) + the same attention: {full_per_token / 1e6:.0f})")
    print(f"hf-trainer-pad-max-length (padding to {max_length}): {base_tps:.1f} tokens/s "
          f"({base_clock.seconds:.1f} s in {base_clock.steps} steps; "
          f"train() {base['wall']:.1f} s), MFU {base_mfu:.1%}, "
          f"{base_hfu:.1%} counting the padded rows")
    print(f"rung fine_tune (group_by_length): {rung_tps:.1f} tokens/s "
          f"({rung_clock.seconds:.1f} s in {rung_clock.steps} steps; "
          f"train() {result.seconds:.1f} s), MFU {mfu:.1%}")
    print(f"ratio {ratio:.2f}x (target >= 1.5)")
    print(json.dumps({
        "ratio": round(ratio, 3),
        "mfu": round(mfu, 4),
        "baseline_mfu": round(base_mfu, 4),
        "baseline_hfu": round(base_hfu, 4),
        "rung_tokens_per_s": round(rung_tps, 2),
        "baseline_tokens_per_s": round(base_tps, 2),
        "gemm_peak_gflops": round(peak_flops / 1e9, 2),
        "gemm_by_size_gflops": peak["by_size_gflops"],
        "tokens": rung_tokens,
        "baseline_tokens": base_tokens,
        "rung_counted_tokens": result.train_tokens,
        "rung_step_s": round(rung_clock.seconds, 2),
        "baseline_step_s": round(base_clock.seconds, 2),
        "rung_train_wall_s": round(result.seconds, 2),
        "baseline_train_wall_s": round(base["wall"], 2),
        "ratio_wall": round(base["wall"] / result.seconds * rung_tokens / base_tokens, 3),
        "rung_call_wall_s": round(rung_call, 2),
        "steps": {"rung": rung_clock.steps, "baseline": base_clock.steps},
        "baseline": f"hf-trainer-pad-max-length (Trainer + PEFT LoRA, padding to {max_length})",
        "max_length": max_length,
        "examples": len(train),
        "val": len(val),
        "epochs": {"rung": rung_epochs, "baseline": base_epochs},
        "batch_size": settings.batch_size,
        "gradient_accumulation": settings.gradient_accumulation,
        "flops_per_token": round(per_token),
        "flops_formula": "T*(4*N_lin + 4*h*V + 6*N_lora) + 12*L*d_attn*T^2 per sequence",
        "n_lin": terms["n_lin"], "lm_head": terms["head"], "n_lora": n_lora,
        "machine": machine(),
    }))


if __name__ == "__main__":
    main()
