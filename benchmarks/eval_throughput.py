"""Examples per second of the few-shot rung's evaluation against the plain way to do it.

Baseline (named "naive-per-example"): the shape of the seeds' sketch, one model call per
example and label: render the whole prompt with the label appended, one forward pass, sum the
label's log-probabilities. No shared prefix, no batching. rung's path encodes the shared
instruction + demonstrations once and scores length-sorted batches over that cache.

Both run in this process on the same examples; predictions must be identical. A second pass
through the response cache gives `cache_fraction` (cached time / first time).

Similar-example demonstrations (`selection = "similar"`) differ per input, so the prompts
share only the instruction and the prefix cache saves little. The same comparison is run with
each example's k nearest train examples (both sides given the same prompts): `similar_ratio`
is rung against the naive path there, and `similar_cost` how many times slower than the fixed
demonstrations rung's own path is per example: what the per-input choice costs.

    python benchmarks/eval_throughput.py [--n 16] [--k 10]

Last line: JSON with ratio, identical, cache_fraction, similar_ratio, similar_identical,
similar_cost, baseline, n, cores.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from rung.climb import load_examples, make_split
from rung.eval.runner import evaluate
from rung.models import load_model
from rung.pipeline import nearest_examples
from rung.rungs import PromptRung
from rung.rungs.few_shot import choose_demonstrations
from rung.store import Store
from rung.task import load_task

TASK = Path(__file__).resolve().parents[1] / "examples" / "support-tickets"


@torch.inference_mode()
def naive_predict(model, pipeline, texts: list[str], demos=None) -> list[str]:
    """`demos`: each text's demonstrations (similar selection); None: the pipeline's own."""
    tok = model.tokenizer
    predictions = []
    for i, text in enumerate(texts):
        prompt = model.render(pipeline.messages(text, demonstrations=demos[i] if demos else None))
        best, best_score = None, float("-inf")
        for label in pipeline.labels:
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            a_ids = tok(label + model.end_of_turn, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p_ids + a_ids])
            logp = torch.log_softmax(model.model(ids).logits[0].float(), dim=-1)
            score = sum(logp[len(p_ids) - 1 + i, t].item() for i, t in enumerate(a_ids))
            if score > best_score:
                best, best_score = label, score
        predictions.append(best)
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16, help="test examples to score")
    parser.add_argument("--k", type=int, default=10, help="demonstrations in the prompt")
    args = parser.parse_args()

    task = load_task(TASK)
    split = make_split(task, load_examples(task))
    base = PromptRung().candidates(task, split.train)[0][1]
    demos = choose_demonstrations(split.train, args.k, seed=task.task.seed)
    pipeline = replace(base, rung="few-shot", demonstrations=demos, details={"k": args.k})
    examples = split.test[: args.n]
    model = load_model(pipeline.model, base_dir=task.root)
    naive_predict(model, pipeline, [examples[0].input])  # warm-up for both paths
    pipeline.predict([examples[0].input])

    t0 = time.perf_counter()
    naive = naive_predict(model, pipeline, [e.input for e in examples])
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = [o.text for o in pipeline.predict([e.input for e in examples])]
    ours_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder))
        cache = store.response_cache()
        t0 = time.perf_counter()
        evaluate(pipeline, examples, metric=task.task.metric, cache=cache)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        evaluate(pipeline, examples, metric=task.task.metric, cache=cache)
        cached_s = time.perf_counter() - t0
        store.close()

    similar = replace(pipeline, demonstrations=[], nearest=args.k,
                      pool=sorted(split.train, key=lambda e: (e.id, e.line)))
    texts = [e.input for e in examples]
    nearest = nearest_examples(similar.pool, texts, args.k)  # embeddings now, not timed below
    t0 = time.perf_counter()
    naive_similar = naive_predict(model, similar, texts, nearest)
    naive_similar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_similar = [o.text for o in similar.predict(texts)]
    similar_s = time.perf_counter() - t0
    print(f"similar demonstrations: naive {len(examples) / naive_similar_s:.3f} examples/s, "
          f"rung {len(examples) / similar_s:.3f} examples/s")

    # both sides scored the same prompts; they must have picked the same labels
    assert naive == ours, "fixed demonstrations: the two paths disagree"
    assert naive_similar == ours_similar, "similar demonstrations: the two paths disagree"

    tokens = model.count_tokens(pipeline.messages(examples[0].input))
    print(f"few-shot k={args.k}, ~{tokens} prompt tokens, {len(examples)} examples")
    print(f"naive-per-example: {len(examples) / naive_s:.3f} examples/s ({naive_s:.1f} s)")
    print(f"rung batched+prefix cache: {len(examples) / ours_s:.3f} examples/s ({ours_s:.1f} s)")
    print(f"cached re-evaluation: {cached_s:.3f} s vs {first_s:.1f} s first")
    print(json.dumps({
        "ratio": round(naive_s / ours_s, 2),
        "identical": naive == ours,
        "cache_fraction": round(cached_s / first_s, 4),
        "similar_ratio": round(naive_similar_s / similar_s, 2),
        "similar_identical": naive_similar == ours_similar,
        "similar_cost": round(similar_s / ours_s, 2),
        "similar_examples_per_s": round(len(examples) / similar_s, 3),
        "baseline": "naive-per-example (one forward per example and label, no shared prefix)",
        "n": len(examples),
        "k": args.k,
        "examples_per_s": round(len(examples) / ours_s, 3),
        "baseline_examples_per_s": round(len(examples) / naive_s, 3),
        "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
