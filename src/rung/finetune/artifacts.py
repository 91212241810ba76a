"""A past tune as the run store keeps it: found by run id, re-measured, or exported.

The seeds warn that yesterday's fine-tune can lose to today's base model with a better
prompt. So a tune is never just a folder of weights: the run that made it names its config,
data, split and base, and `rung climb --tune RUN` measures it again on today's split beside
today's cheaper rungs, after checking that today's test examples were not in its training set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rung.errors import ConfigError, ModelError, RungError
from rung.files import atomic_folder, copy_tree
from rung.finetune.record import TUNE_FILE, TuneResult, finished_tune
from rung.models.registry import ADAPTER_BASE, resolve, tune_base, tune_base_ref, \
    weights_fingerprint
from rung.pipeline import Pipeline, rerooted
from rung.store import Store

EXPORT_FILE = "rung_export.json"


@dataclass
class PastTune:
    run_id: str
    tune: TuneResult
    pipeline: Pipeline  # the tuned pipeline as that run measured it
    train_ids: set[str]  # what it trained on (train and val), to guard today's test split
    run: dict[str, Any]  # the run's row: config, data and split hashes


def past_tune(store: Store, run_id: str, *, base_dir: str | None = None) -> PastTune:
    run, row = store.measured(run_id, "finetune", "fine-tune")
    was_at = Path(run["task_path"]).parent  # the task folder when the run was made
    artifact = Path(rerooted(json.loads(row["summary_json"])["training"]["adapter"],
                             store.root.parent, was_at))  # where the task folder is now
    tune = finished_tune(artifact.parent)
    if tune is None:
        raise RungError(f"the fine-tune of run {run_id} is gone: {artifact / TUNE_FILE} is missing",
                        fix="re-run the fine-tune (rung eval PATH --rung finetune)")
    split = json.loads((store.artifacts(run_id) / "split.json").read_text())
    return PastTune(run_id, tune,
                    Pipeline.from_dict(json.loads(row["pipeline_json"]), base_dir=base_dir,
                                       was_at=was_at if base_dir else None),
                    set(split["ids"]["train"]) | set(split["ids"]["val"]), dict(run))


def checked_base(artifact: Path, *, run_id: str, use: str, force: bool = False,
                 fix: str) -> str | None:
    """The fingerprint of the base weights the tune in `artifact` is loaded on today, refused
    (ModelError) when they are not the weights it was trained on: an adapter on a changed
    base is a model nobody measured. `use` says what would be done with it ("measured",
    "exported", "served"); `fix` how to get past it (re-tune, or the command's --force).
    With `force` a changed base is taken as it is. None for a full tune (its weights are its
    own: no base is loaded under it)."""
    record = json.loads((artifact / ADAPTER_BASE).read_text())
    if record.get("trains") == "all":
        return None
    model, base_dir = tune_base(artifact)
    where = f"{model}" + (f" (in {base_dir})" if base_dir and not Path(model).is_absolute()
                          else "")
    try:
        ref = tune_base_ref(artifact)
    except ModelError as err:
        raise ModelError(f"the fine-tune of run {run_id} ({artifact}) was trained on {where}, "
                         f"which cannot be found now: {err.message}",
                         fix="put the base model back where it was (or in the task folder "
                             "beside rung.toml, where a relative base is looked for), or "
                             "re-tune (rung eval PATH --rung finetune)") from None
    now = weights_fingerprint(ref)
    tune_file = artifact / TUNE_FILE
    then = json.loads(tune_file.read_text()).get("base_fingerprint") if tune_file.exists() \
        else None
    if force or not then or now == then or weights_fingerprint(ref, legacy=True) == then:
        return now  # a record from before the template was hashed matches the old way
    raise ModelError(
        f"the fine-tune of run {run_id} was trained on {where} as it was then "
        f"({then[:12]}); its weights have changed since ({now[:12]}"
        f"{'' if ref.location == model else ', ' + ref.location}), so it would be {use} on a "
        "base model it was not trained on", fix=fix)


RETUNE = "re-tune on today's base model (rung eval PATH --rung finetune)"


def export_tune(store: Store, run_id: str, out: Path, *, merge: bool = False,
                finish: Callable[[Path], None] | None = None,
                force: bool = False) -> dict[str, Any]:
    """Copy the run's artifact to `out`, or with `merge` write base + adapter as one plain
    transformers model that any server loads; either way with the provenance beside it.
    `finish` adds its own files to the folder before it is moved into place. A tune whose
    base model changed since it was trained is refused unless `force` (checked_base); the
    provenance records the base fingerprint the export was made with (base_fingerprint)
    beside the one the tune was trained on (tune_base_fingerprint)."""
    past = past_tune(store, run_id)
    artifact, method = past.tune.artifact, past.tune.method
    merged = merge and json.loads((artifact / ADAPTER_BASE).read_text()).get("trains") == "lora"
    if merge and not merged and method != "full":
        raise ConfigError(f"a {method} tune cannot be merged: its soft prompt is prepended to "
                          "every input, not folded into the weights",
                          fix="export without --merge and load it with peft.PeftModel")
    base_now = checked_base(artifact, run_id=run_id, use="exported", force=force,
                            fix=f"{RETUNE}, or pass --force to export it on the base as it is")
    provenance = {
        "run": run_id, "method": method, "merged": merged,
        "config_hash": past.run["config_hash"], "data_hash": past.run["data_hash"],
        "split_hash": past.run["split_hash"],
        # the base under the exported adapter (merged into it, or named for a server to load
        # it on): today's, which --force may have let differ from the tune's own
        "base_fingerprint": base_now or past.tune.base_fingerprint,
        "tune_base_fingerprint": past.tune.base_fingerprint,
        "finetune": past.tune.config, "training": past.tune.summary(),
    }
    with atomic_folder(out) as folder:  # all of it or nothing, and never over a user's files
        if merged:
            _merge(artifact, folder)
        else:
            copy_tree(artifact, folder)
        (folder / EXPORT_FILE).write_text(json.dumps(provenance, indent=1))
        if finish is not None:
            finish(folder)
    return provenance


def _merge(artifact: Path, out: Path) -> None:
    from peft import PeftModel
    from transformers import AutoTokenizer

    from rung.models.hf import load_causal_lm

    ref = resolve(str(artifact))
    model = PeftModel.from_pretrained(load_causal_lm(ref), str(artifact)).merge_and_unload()
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(artifact)).save_pretrained(str(out))  # saved with it
