"""Answers per second of generation with the shared prefix's cache reused, against the same
generation encoding every prompt whole.

Baseline (named "hf-generate-left-padded"): what a competent transformers user writes, and
what rung did before: the prompts sorted by length, batched with left padding, one
`model.generate` per batch, greedy. rung's path is the same except that the prefix every
prompt shares (the instruction and the fixed demonstrations) is encoded once and each batch
starts from a copy of its key/value cache. Both sides answer the product-docs-qa example's
few-shot prompts (k demonstrations) for the same val questions on the same model in this
process; the answers and token counts must be identical, and the tokens each side fed the
model are counted by a forward pre-hook.

    python benchmarks/generation_throughput.py [--n 32] [--k 3] [--model smollm2-135m-instruct]

Last line: JSON with ratio (baseline seconds / rung seconds), identical, tokens_fed per side,
shared_prefix_tokens, baseline, n, k, cores.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from rung.climb import load_examples, make_split
from rung.models import load_model
from rung.rungs import PromptRung
from rung.rungs.few_shot import choose_demonstrations
from rung.task import load_task

TASK = Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=32, help="val questions to answer")
    parser.add_argument("--k", type=int, default=3, help="demonstrations in the prompt")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    task = load_task(TASK)
    split = make_split(task, load_examples(task))
    base = PromptRung().candidates(task, split.train)[0][1]
    pipeline = replace(base, demonstrations=choose_demonstrations(
        split.train, args.k, seed=task.task.seed, stratified=False))
    prompts = [pipeline.messages(e.input) for e in split.val[: args.n]]
    model = load_model(args.model)
    fed: list[int] = []
    model.model.register_forward_pre_hook(
        lambda module, a, kw: fed.append((a[0] if a else kw["input_ids"]).numel()),
        with_kwargs=True)
    model.generate(prompts[:2], max_new_tokens=4)  # warm-up for both sides

    runs = {}
    for share in (False, True):
        model.share_prefix, fed[:] = share, []
        started = time.perf_counter()
        answers = model.generate(prompts, max_new_tokens=task.eval.max_new_tokens)
        runs[share] = (answers, time.perf_counter() - started, sum(fed))
    (whole, whole_s, whole_fed), (reused, reused_s, reused_fed) = runs[False], runs[True]
    identical = [(g.text, g.tokens_in, g.tokens_out) for g in whole] == \
        [(g.text, g.tokens_in, g.tokens_out) for g in reused]
    assert identical, "the shared-prefix cache changed an answer"
    shared = len(model._shared_prefix([model._encode_prompt(p) for p in prompts],
                                      task.eval.max_new_tokens))
    print(f"{args.model}, few-shot k={args.k}, {len(prompts)} questions, "
          f"{shared} shared prefix tokens")
    print(f"hf-generate-left-padded: {len(prompts) / whole_s:.2f} answers/s ({whole_s:.1f} s, "
          f"{whole_fed:,} tokens fed)")
    print(f"rung shared-prefix cache: {len(prompts) / reused_s:.2f} answers/s ({reused_s:.1f} s, "
          f"{reused_fed:,} tokens fed)")
    print(json.dumps({
        "ratio": round(whole_s / reused_s, 3), "identical": identical,
        "tokens_fed": {"baseline": whole_fed, "rung": reused_fed},
        "shared_prefix_tokens": shared, "seconds": {"baseline": round(whole_s, 2),
                                                    "rung": round(reused_s, 2)},
        "baseline": "hf-generate-left-padded (length-sorted batches, whole prompts)",
        "model": args.model, "n": len(prompts), "k": args.k, "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
