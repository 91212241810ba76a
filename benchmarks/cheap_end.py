"""The cheap end of the ladder on the bundled support-ticket task, every candidate family on test.

Climbs the task with every rung measured (`rung climb --all`) and every candidate scored on
all of val (`[eval] selection = "full"`), then takes the candidate
families the climb chose between on val and measures the best of each family (chosen on val,
like the climb) on the same test split: the classifier, the best plain prompt and the best
calibrated one, the best few-shot set of each selection (stratified, similar) and its
calibrated twin. The baseline is the best plain prompt, what a team tries first.

The fine-tune is measured only with --finetune (on 2 cores it trains for about 35 minutes),
or when the tune this climb would train is already finished in the task's store: the folder
the fine-tune rung names from everything that shapes the weights (rung.finetune.folder's
tune_key: its settings, the seed, the split's train and val examples, the best prompt, the
base model), found as `tune_task` finds it, by building the best prompt on val first (from
the store's cached answers where it has them; `lookup_seconds`, outside `seconds`). A
finished tune there is picked up, not trained, and the script asserts the climb used that
one; a tune for another split or other settings is not. Otherwise the fine-tune is left out,
its score is null and the output says so (`finetune_tune`).

The family the climb chose is rebuilt here from its candidates: the script asserts this
benchmark picks the climb's label by the climb's rule and rebuilds the very pipeline the
climb kept (same hash), so the families measured here are the climb's candidates.

    python benchmarks/cheap_end.py [--task examples/support-tickets] [--finetune]

Last line: JSON with classifier, few_shot_similar, few_shot_stratified, prompt_calibrated,
prompt, finetune, finetune_tune, recommendation, baseline, n, cores, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path

from rung.climb import _build, _quiet, climb, load_examples, make_split
from rung.eval.runner import evaluate
from rung.finetune.folder import tune_folder
from rung.finetune.record import finished_tune
from rung.models.registry import fingerprint
from rung.rungs import FewShotRung, PromptRung
from rung.rungs.finetune import FineTuneRung
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


def tune_for_split(variant: Path) -> tuple[Path, bool]:
    """The folder the climb's fine-tune rung would train in or pick up from (for this split,
    these settings, the best prompt chosen on val), and whether a finished tune is there."""
    task = load_task(variant)
    split = make_split(task, load_examples(task))
    store = Store(task.store_dir)
    try:  # as tune_task does: the best prompt, through the climb's own _build
        best_prompt, _, _ = _build(task, PromptRung(), split, _quiet, store.response_cache())
    finally:
        store.close()
    rung = FineTuneRung(best_prompt, task.store_dir / "tunes")
    base = rung.tuning_base(task)
    out = tune_folder(rung.tunes, task, base, split.train, split.val,
                      fingerprint(base.model, base_dir=task.root))
    return out, finished_tune(out) is not None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", type=Path, default=TASK)
    parser.add_argument("--finetune", action="store_true",
                        help="train the fine-tune if no finished one is in the store")
    args = parser.parse_args()

    folder = args.task if args.task.is_dir() else args.task.parent
    toml = (folder / "rung.toml").read_text()
    variant = folder / "rung.bench.toml"  # the same task; same store, same cached answers
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
        tune_dir, finished = tune_for_split(variant)
        lookup_seconds = time.perf_counter() - started
        if not args.finetune and not finished:
            if "[ladder]" in toml:
                raise SystemExit(f"{folder}/rung.toml has a [ladder] table; pass --finetune "
                                 "or remove it")
            variant.write_text(toml + '\n[ladder]\nskip = ["finetune"]\n')
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
    prompt_pipelines = dict(PromptRung().candidates(task, split.train, store_cache))
    plain = lambda c: not c.get("calibrated")  # noqa: E731
    measure("prompt", best_of(prompt.summary()["candidates"], prompt_pipelines, plain))
    measure("prompt_calibrated", best_of(prompt.summary()["candidates"], prompt_pipelines,
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

    # the family the climb chose: this benchmark must pick the climb's label by the climb's
    # rule and rebuild the very pipeline the climb kept, or its families are not the climb's
    family = "prompt_calibrated" if prompt.pipeline.calibration is not None else "prompt"
    kept = next(c["label"] for c in prompt.summary()["candidates"] if c["chosen"])
    assert chosen[family] == kept, (family, chosen[family], kept)
    rebuilt = prompt_pipelines[kept]
    if split.train and split.train[0].shared_system is not None:  # as the climb's _build does
        rebuilt = replace(rebuilt, shared_system=split.train[0].shared_system)
    assert rebuilt.hash() == prompt.pipeline.hash(), (kept, "rebuilt differently")
    for name, rung in (("classifier", "classifier"), ("bigger_model", "bigger-model"),
                       ("finetune", "finetune")):
        r = by_rung.get(rung)
        scores[name] = round(r.test.score.value, 4) if r else None
    tuned = by_rung.get("finetune")
    if tuned is not None:  # the tune measured is the one for this split and settings
        assert tuned.pipeline.details["tune"] == tune_dir.name, (tuned.pipeline.details,
                                                                 tune_dir)
    finetune_tune = {
        "folder": str(tune_dir), "finished_before_climb": finished,
        "measured": tuned is not None,
        "why_not": None if tuned is not None else
        "no finished tune for this split and settings, and no --finetune"
        if not (args.finetune or finished) else result.not_measured.get("finetune")}
    for family, label in chosen.items():
        print(f"{family}: {scores[family]} ({label})")
    print(f"classifier: {scores['classifier']}, bigger model: {scores['bigger_model']}, "
          f"finetune: {scores['finetune']}; climb {seconds:.0f} s (tune lookup "
          f"{lookup_seconds:.0f} s before it)")
    if tuned is None:
        print(f"finetune not measured: {finetune_tune['why_not']} (the tune for this split "
              f"and settings would be {tune_dir})")
    else:
        print(f"finetune: {'picked up' if finished else 'trained'} in {tune_dir}")
    difference = None if scores["classifier"] is None or scores["prompt"] is None \
        else round(scores["classifier"] - scores["prompt"], 4)
    print(json.dumps({
        "classifier": scores["classifier"],
        "few_shot_similar": scores["few_shot_similar"],
        "few_shot_stratified": scores["few_shot_stratified"],
        "few_shot_calibrated": scores["few_shot_calibrated"],
        "prompt_calibrated": scores["prompt_calibrated"],
        "prompt": scores["prompt"],
        "bigger_model": scores["bigger_model"],
        "finetune": scores["finetune"],
        "finetune_tune": finetune_tune,
        "chosen_on_val": chosen,
        "recommendation": result.recommendation["rung"],
        "baseline": "prompt (the best plain prompt variant, chosen on val)",
        "classifier_minus_prompt": difference,
        "n": len(split.test),
        "cores": os.cpu_count(),
        "seconds": round(seconds, 1),
        "lookup_seconds": round(lookup_seconds, 1),
    }))


if __name__ == "__main__":
    main()
