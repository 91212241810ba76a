"""A past tune as export and serve take it: on the base it was trained on (a changed base is
refused unless forced, and the manifest names the base the export used), found in a task
folder that moved, and exported for vLLM with the command its method is served with.

One LoRA tune of the tiny Llama serves every test; each test that changes something works
on a copy of the task folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rung.climb import climb
from rung.errors import ConfigError, ModelError
from rung.export import TEMPLATE, export_pipeline
from rung.finetune.artifacts import export_tune
from rung.finetune.methods import METHODS
from rung.finetune.record import TUNE_FILE
from rung.models.registry import ADAPTER_BASE, fingerprint, resolve, weights_fingerprint
from rung.serve import load_served
from rung.store import Store
from conftest import finetune_table, ticket_records, write_task

FINETUNE = finetune_table(rank=4, alpha=8, target_modules=["q_proj", "v_proj"],
                          learning_rate=0.005, epochs=1, batch_size=8, gradient_accumulation=1)


@pytest.fixture(scope="module")
def tuned(tiny_llama: Path, tmp_path_factory) -> tuple[Path, str]:
    """A task folder holding its base model (models.small = "base") and a finished climb of
    its LoRA tune, made in a folder that was then moved away: the tune's record names a
    folder that is gone. The general-capability suite (20 s here, tested elsewhere) is left
    out."""
    made = tmp_path_factory.mktemp("tuned") / "made"
    made.mkdir()
    shutil.copytree(tiny_llama, made / "base")
    toml = write_task(made, model="base", records=ticket_records(6),
                      fractions=(0.5, 0.2, 0.3), extra=FINETUNE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("rung.rungs.finetune.capability_regression",
                      lambda task, base, tune: {"threshold": task.finetune.regression_threshold,
                                                "flagged": False, "finding": "not checked"})
        run_id = climb(toml, only="finetune", force=True).run_id
    home = made.parent / "home"
    shutil.move(str(made), str(home))
    return home, run_id


def _artifact(task: Path) -> Path:
    [artifact] = (task / ".rung" / "tunes").glob("*/artifact")
    return artifact


def _copy(task: Path, to: Path) -> Path:
    shutil.copytree(task, to)
    return to


def _change(base: Path) -> None:
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-2}))


def test_a_moved_task_serves_its_tune_on_the_base_it_carried(tuned: tuple[Path, str]) -> None:
    """rung_base.json names the base relative to the folder the tune was made in; once the
    task folder moved, that folder is gone (the base was not found), or back with another base
    in it (which was used, silently)."""
    home, run_id = tuned
    artifact, base = _artifact(home), (home / "base").resolve()
    assert resolve(str(artifact)).location == str(base)
    served = load_served(home / "rung.toml", run_id, "finetune")  # its base unchanged: not refused
    assert resolve(served.pipeline.model) == resolve(str(artifact))
    was_at = Path(json.loads((artifact / ADAPTER_BASE).read_text())["base_dir"])
    assert not was_at.exists()
    shutil.copytree(base, was_at / "base")  # the old folder is back, with another base
    _change(was_at / "base")
    try:
        assert resolve(str(artifact)).location == str(base)
        served = load_served(home / "rung.toml", run_id, "finetune")  # its own base, unchanged
        assert served.pipeline.predict(["ticket 1 about billing number 7"])[0].text
    finally:
        shutil.rmtree(was_at)


def test_export_and_serve_refuse_a_changed_base_unless_forced(
        tuned: tuple[Path, str], tmp_path: Path) -> None:
    """climb --tune refused a tune whose base changed since training; export and serve took
    the changed base silently, and the export's provenance named the base it was trained
    on, not the one it was exported on."""
    home, run_id = tuned
    task = _copy(home, tmp_path / "task")
    trained = fingerprint("base", base_dir=task)
    _change(task / "base")
    now = fingerprint("base", base_dir=task)
    store = Store(task / ".rung")
    try:
        for attempt in (lambda: export_pipeline(store, run_id, tmp_path / "hf", "hf"),
                        lambda: export_tune(store, run_id, tmp_path / "copied"),
                        lambda: load_served(task / "rung.toml", run_id, "finetune")):
            with pytest.raises(ModelError, match="its weights have changed since") as refused:
                attempt()
            message = refused.value.message
            assert run_id in message and str(task) in message and now[:12] in message
            assert "--force" in refused.value.fix and "re-tune" in refused.value.fix
        assert not (tmp_path / "hf").exists() and not (tmp_path / "copied").exists()
        manifest = export_pipeline(store, run_id, tmp_path / "hf", "hf", force=True)
        assert (manifest["base_fingerprint"], manifest["tune_base_fingerprint"]) == (now, trained)
        written = json.loads((tmp_path / "hf" / "rung_manifest.json").read_text())
        assert written["base_fingerprint"] == now
        assert load_served(task / "rung.toml", run_id, "finetune", force=True).run_id == run_id
    finally:
        store.close()
    # the commands: refused with exit 2 and the fix, then exported with --force
    from typer.testing import CliRunner

    from rung.cli import app

    args = ["export", run_id, "--task", str(task), "--out", str(tmp_path / "cli")]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--force" in refused.stderr
    forced = CliRunner().invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "cli" / "rung_export.json").exists()


def _as_method(artifact: Path, method: str) -> None:
    """The tune's records as a tune of `method` writes them: what export reads to choose how
    it is served (the weights stay LoRA's; export copies them without loading them)."""
    base = json.loads((artifact / ADAPTER_BASE).read_text())
    (artifact / ADAPTER_BASE).write_text(json.dumps(
        {**base, "method": method, "trains": METHODS[method].trains}))
    record = json.loads((artifact / TUNE_FILE).read_text())
    (artifact / TUNE_FILE).write_text(json.dumps({**record, "method": method}))


def test_vllm_export_serves_each_method_as_vllm_can(tuned: tuple[Path, str],
                                                    tmp_path: Path) -> None:
    """The manifest said `vllm serve BASE --enable-lora` for every method: a full tune is a
    model of its own, and vLLM serves no soft prompts (prefix, prompt tuning)."""
    home, run_id = tuned
    task = _copy(home, tmp_path / "task")
    artifact = _artifact(task)
    base_ref = resolve("base", base_dir=task)
    store = Store(task / ".rung")
    try:
        _as_method(artifact, "full")
        full = export_pipeline(store, run_id, tmp_path / "full", "vllm")
        assert full["serve"] == (f"vllm serve {tmp_path / 'full'} --chat-template "
                                 f"{tmp_path / 'full' / TEMPLATE}")
        assert full["adapter"] is None and full["method"] == "full"
        # one trained under bf16 autocast on a GPU is served in bf16, not in the fp16 that
        # vLLM's --dtype auto picks for an fp32 checkpoint
        base = json.loads((artifact / ADAPTER_BASE).read_text())
        (artifact / ADAPTER_BASE).write_text(json.dumps({**base, "serve_dtype": "bfloat16"}))
        bf16 = export_pipeline(store, run_id, tmp_path / "full-bf16", "vllm")
        assert bf16["serve"] == (f"vllm serve {tmp_path / 'full-bf16'} --dtype bfloat16 "
                                 f"--chat-template {tmp_path / 'full-bf16' / TEMPLATE}")
        (artifact / ADAPTER_BASE).write_text(json.dumps(base))

        for method in ("prefix", "prompt-tuning"):
            _as_method(artifact, method)
            with pytest.raises(ConfigError, match=rf"\({method}\) is a soft prompt.*vLLM") \
                    as refused:
                export_pipeline(store, run_id, tmp_path / method, "vllm")
            assert "rung serve" in refused.value.fix and not (tmp_path / method).exists()

        _as_method(artifact, "lora")
        lora = export_pipeline(store, run_id, tmp_path / "lora", "vllm")
        assert lora["serve"] == (f"vllm serve {base_ref.location} --enable-lora --lora-modules "
                                 f"rung={tmp_path / 'lora'} --chat-template "
                                 f"{tmp_path / 'lora' / TEMPLATE}")
        assert lora["adapter"] == str(tmp_path / "lora")

        # a tune recorded before the chat template was in the fingerprint: its base unchanged
        record = json.loads((artifact / TUNE_FILE).read_text())
        (artifact / TUNE_FILE).write_text(json.dumps(
            {**record, "base_fingerprint": weights_fingerprint(base_ref, legacy=True)}))
        assert export_pipeline(store, run_id, tmp_path / "older", "vllm")["adapter"]
    finally:
        store.close()
