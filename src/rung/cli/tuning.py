"""Commands of the fine-tune: `rung tune` (train only), `rung export` (the tuned model or the
classifier, for vLLM or transformers) and `rung estimate` (training memory before any of it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from rung.cli.shared import check_choice, err, out, progress, task_store, user_errors
from rung.terminal import print_estimate


def tune(
    path: Path = typer.Argument(..., help="rung.toml, or the folder that holds it"),
    force: bool = typer.Option(False, "--force", help="tune even on data the audit calls not ready"),
    as_json: bool = typer.Option(False, "--json", help="print the tune's record as JSON"),
) -> None:
    """Train the fine-tune only (under `accelerate launch` for several processes); the next
    `rung climb` measures it without training again."""
    from rung.climb import tune_task

    with user_errors(), progress(not as_json) as reporter:
        result = tune_task(path, reporter=reporter, force=force)
    if os.environ.get("RANK", "0") != "0":  # under accelerate, the first process speaks
        return
    if as_json:
        print(json.dumps(result.summary(), indent=2, default=str))
    else:
        out.print(f"{result.method}: {result.steps} steps, best val loss "
                  f"{result.best_val_loss:.4f} at step {result.best_step}; {result.artifact}")
        for signal in result.signals:  # the seeds' overfitting signals, each with its fix
            out.print(f"  - {signal.name}: {signal.evidence} (fix: {signal.fix})",
                      style="yellow", highlight=False, markup=False)
        for setting in result.unusual:
            out.print(f"  - outside the seeds' ranges: {setting}", style="yellow",
                      highlight=False, markup=False)


def _check_export_options(rung: str, fmt: Optional[str], merge: bool) -> None:
    """Options that contradict each other are refused, never one of them silently dropped."""
    from rung.errors import ConfigError

    if rung == "classifier" and fmt in ("hf", "vllm"):
        raise ConfigError(f"--format {fmt} exports a fine-tuned LLM, and --rung classifier "
                          "names a scikit-learn model", fix="drop --format (or use --format "
                          "classifier) to export the classifier")
    if fmt == "classifier" and rung == "finetune" and merge:
        raise ConfigError("--merge folds a LoRA adapter into its base; a classifier has none",
                          fix="drop --merge")
    if merge and fmt == "vllm":
        raise ConfigError("--merge folds the adapter in, and --format vllm serves base + adapter",
                          fix="--format hf writes merged weights; or drop --merge")


def export(
    run: str = typer.Argument(..., help="the run id (rung runs PATH lists them)"),
    to: Path = typer.Option(..., "--out", help="a new folder for the exported model"),
    merge: bool = typer.Option(False, "--merge", help="fold a LoRA adapter into the base "
                                                      "weights: one plain transformers model"),
    path: Path = typer.Option(Path("."), "--task", help="rung.toml or its folder"),
    rung: str = typer.Option("finetune", "--rung", help="finetune (the tuned model) or "
                             "classifier (the scikit-learn model)"),
    fmt: Optional[str] = typer.Option(None, "--format", help="hf (merged weights) or vllm "
                                      "(base + adapter), each with a chat template that "
                                      "carries the pipeline's prompt and a manifest; "
                                      "classifier (as --rung classifier)"),
    force: bool = typer.Option(False, "--force", help="export a tune whose base model changed "
                               "since it trained, on the base as it is now"),
) -> None:
    """Write a run's fine-tuned model (adapter, or merged weights) or its classifier, with
    its provenance."""
    from rung.finetune.artifacts import export_tune
    from rung.rungs.classifier import export_classifier

    with user_errors(), task_store(path) as store:
        check_choice("--rung", rung, ("finetune", "classifier"))
        check_choice("--format", fmt, ("hf", "vllm", "classifier"))
        _check_export_options(rung, fmt, merge)
        if fmt in ("hf", "vllm"):
            from rung.export import export_pipeline

            manifest = export_pipeline(store, run, to, fmt, force=force)
            err.print(f"wrote the {fmt} export of run {run} to {to}; start it with:\n  "
                      f"{manifest['serve']}")
            return
        if rung == "classifier" or fmt == "classifier":
            export_classifier(store, run, to)
            err.print(f"wrote the classifier of run {run} to {to}")
            return
        record = export_tune(store, run, to, merge=merge, force=force)
    what = "merged model" if record["merged"] else f"{record['method']} artifact"
    err.print(f"wrote the {what} of run {run} to {to}")


def estimate(
    models: list[str] = typer.Argument(..., help="aliases, model folders, config.json files "
                                       "or sizes like 7B"),
    seq_len: int = typer.Option(512, "--seq-len", min=1, help="tokens per example"),
    batch: int = typer.Option(4, "--batch", min=1, help="examples per device step"),
    rank: int = typer.Option(16, "--rank", min=1, help="LoRA rank"),
    dtype: str = typer.Option("bf16", "--dtype", help="bf16, fp16 or fp32 training"),
    checkpointing: bool = typer.Option(False, "--gradient-checkpointing",
                                       help="recompute activations in backward"),
    breakdown: bool = typer.Option(True, "--breakdown/--no-breakdown",
                                   help="weights, gradients, optimizer, activations per method"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Training memory for full fine-tuning, LoRA and QLoRA, in the seeds' table shape."""
    from rung.finetune.memory import seeds_table

    with user_errors():
        check_choice("--dtype", dtype, ("bf16", "fp16", "fp32"))
        rows = seeds_table(models, seq_len=seq_len, batch_size=batch, lora_rank=rank,
                           dtype=dtype, gradient_checkpointing=checkpointing or None)
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    print_estimate(out, rows, title=f"training memory: seq {seq_len} x batch {batch}, {dtype}, "
                   "AdamW", lora_rank=rank, breakdown=breakdown)
