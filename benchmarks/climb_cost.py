"""Seconds to climb the bundled product-docs-qa task with every candidate scored on all of val
("full", the baseline) and with candidates raced on val ([eval] selection = "race").

Each side is a fresh copy of the example (no store, no response cache, no index) climbed by
`rung climb --json` in its own process, one after the other on the same machine, so neither
inherits the other's loaded model or embeddings. Both measure the same rungs on the same test
split; what racing may change is only which candidate each rung keeps, so the chosen
candidates are compared rung by rung (and, where they differ, their val scores).

    python benchmarks/climb_cost.py
    python benchmarks/climb_cost.py --set rag.methods='["bm25","dense","hybrid"]' \
        --set rag.k='[1,3,5]' --set rag.shots='[0]' --unset eval.val_limit

`--set SECTION.KEY=VALUE` changes one key of the example's rung.toml on both sides (a TOML
value), `--unset SECTION.KEY` removes one (its default then holds); the second line above is the issue's own account of a slow climb: nine rag
candidates (three retrievers by three k) chosen on all of val.

Last line: JSON with ratio (full_seconds / raced_seconds), same_choice (and, where a rung
chose differently, both choices with their val scores), val_scored (candidate-examples each
side scored on val per rung), choose_seconds (per rung, each side), choose_ratio,
ceiling_bound (derived, not measured: full_seconds over the full climb's seconds not spent
choosing on val, i.e. measuring on test, loading, auditing, indexing; the most any
selection rule could gain here if choosing cost nothing, with ceiling_note saying so),
scores (test, per rung). Where racing kept a different candidate on some rung (same_choice
false), the first line of the text says so before any ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import time
from pathlib import Path

TASK = Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa"


def warm_conversions() -> None:
    """Convert the task's GGUF models (rung.models.converted) before either side runs, so
    that neither pays a first conversion the other is spared. In a process of its own: the
    weights it loads to convert would otherwise stay in this one's memory throughout."""
    subprocess.run([sys.executable, "-c", f"""
from rung.models.converted import source_of
from rung.models.registry import resolve
from rung.task import load_task
models = load_task({str(TASK)!r}).models
for reference in (models.small, models.large):
    if reference:
        source_of(resolve(reference))
"""], check=True)


def with_settings(text: str, settings: dict[str, str | None]) -> str:
    """rung.toml with `section.key` set to each TOML value (None: the line removed): an
    existing line replaced in its own table, a missing one added at the table's head."""
    lines, section, done = text.splitlines(), "", set()
    present = {f"{table}.{key}" for table, keys in tomllib.loads(text).items()
               if isinstance(keys, dict) for key in keys}
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            out.append(line)
            out += [f"{name.split('.', 1)[1]} = {value}" for name, value in settings.items()
                    if name.split(".", 1)[0] == section and value is not None
                    and name not in present]
            done |= {name for name in settings if name.split(".", 1)[0] == section}
            continue
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else None
        name = f"{section}.{key}"
        if key and name in settings:
            if settings[name] is not None:
                out.append(f"{key} = {settings[name]}")
        else:
            out.append(line)
    missing = set(settings) - done
    if missing:
        raise SystemExit(f"no such table in {TASK / 'rung.toml'}: {sorted(missing)}")
    return "\n".join(out) + "\n"


def climb(selection: str, folder: Path,
          settings: dict[str, str | None]) -> tuple[dict, float]:
    shutil.copytree(TASK, folder, ignore=shutil.ignore_patterns(".rung"))
    toml = folder / "rung.toml"
    toml.write_text(with_settings(toml.read_text(), {**settings,
                                                     "eval.selection": f'"{selection}"'}))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from rung.cli import main; main()", "climb",
                           str(folder), "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{selection} climb failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change one rung.toml key on both sides (a TOML value)")
    parser.add_argument("--unset", action="append", default=[], metavar="SECTION.KEY",
                        help="remove one rung.toml key on both sides (its default holds)")
    args = parser.parse_args()
    settings: dict[str, str | None] = {**dict(item.split("=", 1) for item in args.set),
                                       **dict.fromkeys(args.unset)}
    warm_conversions()
    root = Path(tempfile.mkdtemp(prefix="rung-climb-cost-"))
    full, full_seconds = climb("full", root / "full", settings)
    raced, raced_seconds = climb("race", root / "race", settings)
    same, differ, val_scored, choosing = True, {}, {}, {}
    assert [r["rung"] for r in full["rungs"]] == [r["rung"] for r in raced["rungs"]]
    assert full["split"] == raced["split"]  # the same test split measures both
    for a, b in zip(full["rungs"], raced["rungs"]):
        assert a["n"] == b["n"] == full["split"]["test"]
        chosen_a = next(c for c in a["candidates"] if c["chosen"])
        chosen_b = next(c for c in b["candidates"] if c["chosen"])
        val_scored[a["rung"]] = {"full": sum(c["val_n"] for c in a["candidates"]),
                                 "raced": sum(c["val_n"] for c in b["candidates"])}
        choosing[a["rung"]] = {"full": a["seconds"]["choose"], "raced": b["seconds"]["choose"]}
        if chosen_a["label"] != chosen_b["label"]:
            same = False
            raced_view = next(c for c in b["candidates"] if c["label"] == chosen_a["label"])
            differ[a["rung"]] = {
                "full": [chosen_a["label"], chosen_a["val_score"]],
                "raced": [chosen_b["label"], chosen_b["val_score"]],
                "full_choice_in_the_race": [raced_view["val_score"], raced_view["val_n"],
                                            raced_view.get("stopped")]}
    ratio = full_seconds / raced_seconds
    choose_full = sum(c["full"] for c in choosing.values())
    choose_raced = sum(c["raced"] for c in choosing.values())
    # what racing cannot touch: measuring on test, loading, auditing, indexing
    # derived, not measured: no climb ran with choosing free
    ceiling_bound = full_seconds / (full_seconds - choose_full)
    first = "" if same else (f"NOT THE SAME CHOICE: racing kept another candidate on "
                             f"{', '.join(differ)}, so the climbs compared differ; ")
    print(f"{first}full selection: {full_seconds:.0f} s; raced: {raced_seconds:.0f} s; "
          f"ratio {ratio:.2f}")
    print(f"choosing on val: {choose_full:.0f} s vs {choose_raced:.0f} s "
          f"({choose_full / choose_raced:.2f}x); bound, derived (not measured): were choosing "
          f"free, the climb would be at most {ceiling_bound:.2f}x faster "
          f"(full_seconds / seconds not choosing)")
    print(f"same choice on every rung: {same} {differ or ''}")
    print(json.dumps({
        "ratio": round(ratio, 3), "same_choice": same, "differences": differ,
        "val_scored": val_scored, "full_seconds": round(full_seconds, 1),
        "raced_seconds": round(raced_seconds, 1),
        "choose_seconds": choosing, "choose_ratio": round(choose_full / choose_raced, 3),
        "ceiling_bound": round(ceiling_bound, 3),
        "ceiling_note": "derived, not measured: full_seconds / (full_seconds - the full "
                        "climb's choose seconds)",
        "scores": {"full": {r["rung"]: r["score"] for r in full["rungs"]},
                   "raced": {r["rung"]: r["score"] for r in raced["rungs"]}},
        "split": full["split"], "settings": settings,
        "baseline": "full (every candidate on all of val)", "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
