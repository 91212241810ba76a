"""The cheap end of the ladder on the bundled support-ticket task, every candidate family on test.

Climbs the task with every rung measured (`rung climb --all`) and every candidate scored on
all of val (`[eval] selection = "full"`), then takes the candidate
families the climb chose between on val and measures the best of each family (chosen on val,
like the climb) on the same test split: the classifier, the best plain prompt and the best
calibrated one, the best few-shot set of each selection (stratified, similar) and its
calibrated twin. The baseline is the best plain prompt, what a team tries first.

The fine-tune is measured only with --finetune (on 2 cores it trains for about 35 minutes),
or when a finished tune for this split is already in the task's store (it is then picked up,
not trained); otherwise its score is null.

    python benchmarks/cheap_end.py [--task examples/support-tickets] [--finetune]

Last line: JSON with classifier, few_shot_similar, few_shot_stratified, prompt_calibrated,
prompt, finetune, recommendation, baseline, n, cores, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from rung.climb import climb, load_examples, make_split
from rung.eval.runner import evaluate
from rung.rungs import FewShotRung, PromptRung
from rung.store import Store
from rung.task import load_task

TASK = Path(__file__).resolve().parents[1] / "examples" / "support-tickets"


def best_of(candidates: list[dict], pipelines: dict, keep) -> tuple[str, object] | None:
    """The candidate with the best val score among those `keep` accepts (the first of equals,
    as the rungs choose), with its pipeline."""
    kept = [c for c in candidates if keep(c)]
    if not kept:
        return None
    best = max(kept, key=lambda c: c["val_score"])
    return best["label"], pipelines[best["label"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", type=Path, default=TASK)
    parser.add_argument("--finetune", action="store_true",
                        help="train the fine-tune if no finished one is in the store")
    args = parser.parse_args()

    folder = args.task if args.task.is_dir() else args.task.parent
    toml = (folder / "rung.toml").read_text()
    variant = folder / "rung.bench.toml"  # the same task; same store, same cached answers
    tunes = folder / ".rung" / "tunes"
    finished = tunes.is_dir() and any(tunes.glob("*/artifact/tune.json"))
    if not args.finetune and not finished:
        if "[ladder]" in toml:
            raise SystemExit(f"{folder}/rung.toml has a [ladder] table; pass --finetune or "
                             "remove it")
        toml += '\n[ladder]\nskip = ["finetune"]\n'
    # the best of each family is compared by val score, so every candidate must have been
    # scored on all of val: full selection, not a race whose losers saw part of it
    if re.search(r'^selection\s*=\s*"(full|race)"', toml, re.M):
        raise SystemExit(f"{folder}/rung.toml sets [eval] selection; remove it (this "
                         "benchmark needs full selection)")
    toml = toml.replace("[eval]\n", '[eval]\nselection = "full"\n') if "[eval]" in toml \
        else toml + '\n[eval]\nselection = "full"\n'
    variant.write_text(toml)
    try:
        started = time.perf_counter()
        result = climb(variant, climb_all=True)
        seconds = time.perf_counter() - started
    finally:
        variant.unlink()

    task = load_task(folder)
    split = make_split(task, load_examples(task))
    store = Store(task.store_dir)
    store_cache = store.response_cache()
    by_rung = {r.rung: r for r in result.results}
    scores: dict[str, float | None] = {}
    chosen: dict[str, str | None] = {}

    def measure(name: str, picked: tuple[str, object] | None) -> None:
        if picked is None:
            scores[name], chosen[name] = None, None
            return
        label, pipeline = picked
        test = evaluate(pipeline, split.test, metric=task.task.metric, cache=store_cache,
                        seed=task.task.seed, n_resamples=task.eval.bootstrap)
        scores[name], chosen[name] = round(test.score.value, 4), label

    prompt = by_rung["prompt"]
    pipelines = dict(PromptRung().candidates(task, split.train, store_cache))
    plain = lambda c: not c.get("calibrated")  # noqa: E731
    measure("prompt", best_of(prompt.summary()["candidates"], pipelines, plain))
    measure("prompt_calibrated", best_of(prompt.summary()["candidates"], pipelines,
                                         lambda c: bool(c.get("calibrated"))))
    few_shot = by_rung["few-shot"]
    best_prompt = prompt.pipeline
    pipelines = dict(FewShotRung(best_prompt).candidates(task, split.train, store_cache))
    listed = few_shot.summary()["candidates"]
    for selection in ("stratified", "similar"):
        measure(f"few_shot_{selection}", best_of(
            listed, pipelines, lambda c, s=selection: c["selection"] == s and plain(c)))
    measure("few_shot_calibrated", best_of(listed, pipelines,
                                           lambda c: bool(c.get("calibrated"))))
    store.close()

    # the family the climb chose is measured twice: by the climb and here; they must agree
    family = "prompt_calibrated" if prompt.pipeline.calibration is not None else "prompt"
    assert scores[family] == round(prompt.test.score.value, 4), (scores[family], prompt.test)
    for name, rung in (("classifier", "classifier"), ("bigger_model", "bigger-model"),
                       ("finetune", "finetune")):
        r = by_rung.get(rung)
        scores[name] = round(r.test.score.value, 4) if r else None
    for family, label in chosen.items():
        print(f"{family}: {scores[family]} ({label})")
    print(f"classifier: {scores['classifier']}, bigger model: {scores['bigger_model']}, "
          f"finetune: {scores['finetune']}; climb {seconds:.0f} s")
    print(json.dumps({
        "classifier": scores["classifier"],
        "few_shot_similar": scores["few_shot_similar"],
        "few_shot_stratified": scores["few_shot_stratified"],
        "few_shot_calibrated": scores["few_shot_calibrated"],
        "prompt_calibrated": scores["prompt_calibrated"],
        "prompt": scores["prompt"],
        "bigger_model": scores["bigger_model"],
        "finetune": scores["finetune"],
        "chosen_on_val": chosen,
        "recommendation": result.recommendation["rung"],
        "baseline": "prompt (the best plain prompt variant, chosen on val)",
        "classifier_minus_prompt": round(scores["classifier"] - scores["prompt"], 4),
        "n": len(split.test),
        "cores": os.cpu_count(),
        "seconds": round(seconds, 1),
    }))


if __name__ == "__main__":
    main()
