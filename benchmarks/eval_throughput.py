"""Examples per second of the few-shot rung's evaluation against the plain way to do it.

Baseline (named "per-example-prompt-cache"): what a competent transformers user writes, one
example at a time: the prompt encoded once with `use_cache=True` (logits kept at its last
position only), then all labels scored in one batched forward from that prompt's cache,
log-probabilities taken only at the label positions. rung's path adds what is measured: the
instruction + demonstrations all prompts share are encoded once for the whole evaluation,
and examples are scored together in length-sorted batches over that cache.

Both run in this process on the same examples; predictions must be identical, and each
example's prompt and label token counts equal on both sides (asserted). A second pass
through the response cache gives `cache_fraction` (cached time / first time).

Similar-example demonstrations (`selection = "similar"`) differ per input, so the prompts
share only the instruction and the prefix cache saves little. The same comparison is run with
each example's k nearest train examples (both sides given the same prompts): `similar_ratio`
is rung against the same baseline there, and `similar_cost` how many times slower than the
fixed demonstrations rung's own path is per example: what the per-input choice costs.

    python benchmarks/eval_throughput.py [--n 16] [--k 10]

Last line: JSON with ratio, identical, prompt_tokens, cache_fraction,
similar_ratio, similar_identical, similar_cost, baseline, n, cores.
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
def per_example_predict(model, pipeline, texts: list[str],
                        demos=None) -> list[tuple[str, int, list[int], list[float]]]:
    """The baseline: one example at a time, scored as a competent transformers user would.

    The prompt goes through the model once with `use_cache=True`, keeping only the last
    position's logits (the first label token's distribution); the labels are then scored
    together from that cache, expanded to one row per label: one right-padded forward of
    every label's tokens but its last, log-probabilities taken only at the label positions.
    Labels are tokenized once. No prefix is shared between examples and no two examples
    share a forward pass: that is what rung's path adds.

    `demos`: each text's demonstrations (similar selection); None: the pipeline's own.
    Returns each example's (label, prompt tokens, label tokens, label log-likelihoods), to
    compare the work done.
    """
    tok, lm = model.tokenizer, model.model
    cache_kw = model._cache_kw  # transformers 5 renamed past_key_values to cache
    label_ids = [tok(label + model.end_of_turn, add_special_tokens=False)["input_ids"]
                 for label in pipeline.labels]
    steps = max(len(a) for a in label_ids) - 1  # label tokens fed after the prompt
    pad = tok.pad_token_id
    step_ids = torch.tensor([a[:-1] + [pad] * (steps + 1 - len(a)) for a in label_ids])
    step_mask = torch.tensor([[1] * (len(a) - 1) + [0] * (steps + 1 - len(a))
                              for a in label_ids])
    results = []
    for i, text in enumerate(texts):
        prompt = model.render(pipeline.messages(text, demonstrations=demos[i] if demos else None))
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        out = lm(torch.tensor([p_ids]), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        scores = [first[a[0]].item() for a in label_ids]
        if steps:
            cache = getattr(out, cache_kw)
            cache.batch_repeat_interleave(len(label_ids))
            mask = torch.cat([torch.ones(len(label_ids), len(p_ids), dtype=torch.long),
                              step_mask], dim=1)
            logits = lm(step_ids, attention_mask=mask, use_cache=True,
                        **{cache_kw: cache}).logits
            for k, a in enumerate(label_ids):
                if len(a) > 1:
                    logp = torch.log_softmax(logits[k, : len(a) - 1].float(), dim=-1)
                    scores[k] += logp[torch.arange(len(a) - 1), torch.tensor(a[1:])].sum().item()
        best = max(range(len(scores)), key=scores.__getitem__)  # the first of equals
        results.append((pipeline.labels[best], len(p_ids), [len(a) for a in label_ids], scores))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16, help="test examples to score")
    parser.add_argument("--k", type=int, default=10, help="demonstrations in the prompt")
    args = parser.parse_args()

    task = load_task(TASK)
    split = make_split(task, load_examples(task))
    plain = PromptRung().candidates(task, split.train)[0][1]
    demos = choose_demonstrations(split.train, args.k, seed=task.task.seed)
    pipeline = replace(plain, rung="few-shot", demonstrations=demos, details={"k": args.k})
    examples = split.test[: args.n]
    model = load_model(pipeline.model, base_dir=task.root)
    per_example_predict(model, pipeline, [examples[0].input])  # warm-up for both paths
    pipeline.predict([examples[0].input])
    texts = [e.input for e in examples]

    t0 = time.perf_counter()
    base = per_example_predict(model, pipeline, texts)
    base_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = pipeline.predict(texts)
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
    nearest = nearest_examples(similar.pool, texts, args.k)  # embeddings now, not timed below
    t0 = time.perf_counter()
    base_similar = per_example_predict(model, similar, texts, nearest)
    base_similar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_similar = similar.predict(texts)
    similar_s = time.perf_counter() - t0
    print(f"similar demonstrations: baseline {len(examples) / base_similar_s:.3f} examples/s, "
          f"rung {len(examples) / similar_s:.3f} examples/s")

    def work(outputs) -> list[tuple[str, int, list[int]]]:
        return [(o.text, o.tokens_in, list(o.label_tokens)) for o in outputs]

    def logprob_gap(baseline, outputs) -> float:
        """Largest difference in a label's log-likelihood between the two sides (nats)."""
        return max(abs(a - b) for row, o in zip(baseline, outputs)
                   for a, b in zip(row[3], o.label_logprobs))

    # both sides scored the same prompts and labels, token for token, and picked the same
    # labels: identical work, identical answers
    identical = [b[0] for b in base] == [o.text for o in ours]
    similar_identical = [b[0] for b in base_similar] == [o.text for o in ours_similar]
    assert identical, "fixed demonstrations: the two paths disagree"
    assert similar_identical, "similar demonstrations: the two paths disagree"
    assert [b[:3] for b in base] == work(ours), \
        "fixed demonstrations: different prompt or label tokens"
    assert [b[:3] for b in base_similar] == work(ours_similar), \
        "similar demonstrations: different prompt or label tokens"
    prompt_tokens = sum(b[1] for b in base)
    similar_tokens = sum(b[1] for b in base_similar)

    tokens = model.count_tokens(pipeline.messages(examples[0].input))
    print(f"few-shot k={args.k}, ~{tokens} prompt tokens, {len(examples)} examples, "
          f"{prompt_tokens} prompt tokens in all (similar: {similar_tokens})")
    print(f"per-example-prompt-cache: {len(examples) / base_s:.3f} examples/s ({base_s:.1f} s)")
    print(f"rung batched+prefix cache: {len(examples) / ours_s:.3f} examples/s ({ours_s:.1f} s)")
    print(f"cached re-evaluation: {cached_s:.3f} s vs {first_s:.1f} s first")
    print(json.dumps({
        "ratio": round(base_s / ours_s, 2),
        "identical": identical,
        "prompt_tokens": prompt_tokens,
        "label_tokens": base[0][2],
        # both sides computed the same log-likelihoods, up to floating-point batching noise
        "max_logprob_gap": max(logprob_gap(base, ours), logprob_gap(base_similar, ours_similar)),
        "cache_fraction": round(cached_s / first_s, 4),
        "similar_ratio": round(base_similar_s / similar_s, 2),
        "similar_identical": similar_identical,
        "similar_prompt_tokens": similar_tokens,
        "similar_cost": round(similar_s / ours_s, 2),
        "similar_examples_per_s": round(len(examples) / similar_s, 3),
        "similar_baseline_examples_per_s": round(len(examples) / base_similar_s, 3),
        "baseline": "per-example-prompt-cache (one example at a time: its prompt encoded once "
                    "with use_cache, all labels scored in one batched forward from that cache; "
                    "no prefix shared across examples, no cross-example batching)",
        "n": len(examples),
        "k": args.k,
        "examples_per_s": round(len(examples) / ours_s, 3),
        "baseline_examples_per_s": round(len(examples) / base_s, 3),
        "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
