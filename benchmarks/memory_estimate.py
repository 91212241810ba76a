"""Estimated against measured peak memory of real training steps, full and LoRA, two sizes.

Two random-init Llamas with SmolLM2's vocabulary (49,152) are built in code, nothing
downloaded: a ~30M one and one of SmolLM2-135M's exact shape. Each (size, method) case runs
in a fresh subprocess, so one case's resident memory cannot inflate the next: it builds the
model, then trains a few steps (plain PyTorch loop; fused AdamW, Trainer's default; fp32 on
CPU, bf16 autocast on CUDA; LoRA via PEFT r=16 on the seeds' targets with rung's default
dropout 0.05) inside `PeakMemory`, which counts from before the weights exist. rung's
`estimate_memory` gets the same shape, method, sequence length and batch, nothing measured.

What it measures is the model's own loss, its LM head at every position (`labels=ids`), so
the estimate runs with `logit_tokens` unset; a tune's head runs at the answer positions
only (answer_loss.py on a CPU, TRL's chunked head on CUDA: fit.logit_positions), which this
benchmark does not measure. On CUDA a full tune here is held in bf16 (estimated so), not in
fp32 under autocast as rung's full tunes are, and only on one device (no DDP buckets).

On CPU the peak is the sampled resident set. Each worker first calls `return_freed_memory()`
(a fixed glibc mmap threshold) so that RSS follows what the tensors hold, as CUDA's allocator
counter does; `--malloc-default` leaves glibc's dynamic threshold on, under which freed
activations stay in a fragmented heap and RSS climbs well past the tensors (see the output).

Baseline: the seeds' rule of thumb, full fine-tuning ~4x the model's size (weights,
gradients, optimizer states), LoRA ~1x (the model plus small adapters).

    python benchmarks/memory_estimate.py [--seq-len 256] [--batch 4] [--steps 3]

Last line: JSON with max_relative_error, per-case estimate/measured, baseline, n, cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from rung.finetune.memory import SEEDS_TARGETS, ModelShape, estimate_memory, llama_shape

SIZES = {  # name -> (layers, hidden, intermediate, heads, kv_heads)
    "llama-30m": (6, 384, 1024, 6, 2),
    "smollm2-135m-shape": (30, 576, 1536, 9, 3),
}
VOCAB = 49152


def shape(name: str) -> ModelShape:
    layers, hidden, inter, heads, kv = SIZES[name]
    return llama_shape(layers, hidden, inter, heads, kv, VOCAB, True, name=name)


def worker(name: str, method: str, seq_len: int, batch: int, steps: int,
           malloc_default: bool) -> None:
    """One case, in its own process; prints one JSON line."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from rung.finetune.peak import PeakMemory, return_freed_memory

    if not malloc_default:
        return_freed_memory()
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    layers, hidden, inter, heads, kv = SIZES[name]
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv, tie_word_embeddings=True)
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (batch, seq_len), device="cuda" if cuda else "cpu")
    with PeakMemory() as peak:
        model = LlamaForCausalLM(config).to(dtype=dtype, device=ids.device)
        if method == "lora":
            model = get_peft_model(model, LoraConfig(
                r=16, lora_alpha=32, lora_dropout=0.05, target_modules=list(SEEDS_TARGETS),
                task_type="CAUSAL_LM"))
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)  # Trainer's default
        for _ in range(steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    print(json.dumps({"measured": peak.peak_bytes, "device": peak.device,
                      "how": peak.method, "loss": float(loss)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="training steps per case (>= 2)")
    parser.add_argument("--malloc-default", action="store_true",
                        help="leave glibc's dynamic mmap threshold on (RSS keeps freed memory)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.seq_len, args.batch, args.steps, args.malloc_default)
        return

    cases = []
    for name in SIZES:
        for method in ("full", "lora"):
            run = subprocess.run(
                [sys.executable, __file__, "--worker", name, method, "--seq-len",
                 str(args.seq_len), "--batch", str(args.batch), "--steps", str(args.steps)]
                + (["--malloc-default"] if args.malloc_default else []),
                capture_output=True, text=True, check=True)
            got = json.loads(run.stdout.strip().splitlines()[-1])
            s = shape(name)
            est = estimate_memory(s, method=method, seq_len=args.seq_len,
                                  batch_size=args.batch,
                                  dtype="bf16" if got["device"] == "cuda" else "fp32",
                                  device=got["device"])
            width = 2 if got["device"] == "cuda" else 4
            thumb = s.parameters * width * (4 if method == "full" else 1)
            cases.append({
                "model": name, "parameters": s.parameters, "method": method,
                "estimate": est.total, "measured": got["measured"],
                "relative_error": round((est.total - got["measured"]) / got["measured"], 4),
                "rule_of_thumb": thumb,
                "rule_of_thumb_error": round((thumb - got["measured"]) / got["measured"], 4),
                "peak_at": est.peak_at, "device": got["device"], "how": got["how"],
                "breakdown": {k: getattr(est, k) for k in (
                    "weights", "gradients", "optimizer", "activations", "overhead")}})

    mb = 1e6
    print(f"seq_len {args.seq_len}, batch {args.batch}, {args.steps} steps, "
          f"{cases[0]['device']} ({cases[0]['how']})")
    print(f"{'model':<20} {'method':<6} {'params':>7} {'weights':>8} {'grads':>7} {'optim':>7} "
          f"{'activ':>7} {'estimate':>9} {'measured':>9} {'error':>7} {'4x/1x rule':>10}")
    for c in cases:
        b = c["breakdown"]
        print(f"{c['model']:<20} {c['method']:<6} {c['parameters'] / 1e6:>6.1f}M "
              f"{b['weights'] / mb:>6.0f}MB {b['gradients'] / mb:>5.0f}MB "
              f"{b['optimizer'] / mb:>5.0f}MB {b['activations'] / mb:>5.0f}MB "
              f"{c['estimate'] / mb:>7.0f}MB {c['measured'] / mb:>7.0f}MB "
              f"{c['relative_error']:>+7.1%} {c['rule_of_thumb_error']:>+10.1%}")
    print(json.dumps({
        "max_relative_error": max(abs(c["relative_error"]) for c in cases),
        "baseline": "seeds' rule of thumb: full ~4x model size, LoRA ~1x",
        "baseline_max_relative_error": max(abs(c["rule_of_thumb_error"]) for c in cases),
        "cases": [{k: c[k] for k in ("model", "method", "estimate", "measured",
                                     "relative_error", "peak_at")} for c in cases],
        "seq_len": args.seq_len, "batch": args.batch, "steps": args.steps,
        "malloc": "glibc default" if args.malloc_default else "fixed mmap threshold",
        "n": len(cases),
        "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
