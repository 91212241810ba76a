"""The fine-tune rung on the tiny Llama: every method takes a step and its artifact serves
the evaluator; LoRA stops early, resumes after an interruption, is refused on data the audit
calls not ready, is evaluated like every rung; and the overfitting diagnosis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rung.cli import app
from rung.climb import climb
from rung.data.example import make_example
from rung.finetune.diagnose import FLAT, diagnose
from rung.finetune.methods import METHODS
from rung.finetune.train import NotReadyError, fine_tune
from rung.models.registry import load_model
from rung.errors import DataError, ModelError, RungError
from rung.pipeline import Pipeline
from rung.store import Store
from rung.task import FineTuneTable, load_task
from conftest import finetune_table, write_task

FINETUNE = finetune_table(rank=4, alpha=8, target_modules=["q_proj", "v_proj"],
                          learning_rate=0.005, epochs=2, batch_size=8, gradient_accumulation=1)


def test_lora_tunes_and_is_measured_like_every_rung(task_dir: Path, tiny_llama: Path) -> None:
    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    result = climb(toml, only="finetune", force=True)  # 20 per label: below the minimum
    # measured beside the base model's best prompt, paired on the same test examples
    prompt, tuned = result.results
    assert prompt.rung == "prompt" and tuned.versus is not None and tuned.versus[0] == "prompt"
    assert result.recommendation["alone"] and "over prompt (p=" in result.recommendation["reason"]
    assert tuned.rung == "finetune" and tuned.test.score.n == len(result.split.test)
    adapter = Path(tuned.pipeline.model)
    assert (adapter / "adapter_config.json").exists() and (adapter / "rung_base.json").exists()
    assert json.loads((adapter / "rung_base.json").read_text())["model"] == str(tiny_llama)
    training = tuned.training
    assert training["steps"] > 0 and training["best_step"] is not None
    assert 0 < training["trainable_share"] < 0.2
    store = Store(task_dir / ".rung")
    curves = store.curves(result.run_id, "finetune")
    assert any(r["loss"] is not None for r in curves)
    evaluated = sum(r["eval_loss"] is not None for r in curves)
    # two evaluations an epoch, unless early stopping ended the run first (patience 2 and
    # improvements under FLAT: three at least)
    assert evaluated == 4 or (training["stopped_early"] and evaluated >= 3)
    assert any(r["learning_rate"] is not None and r["grad_norm"] is not None for r in curves)
    # the seeds' "task metric over time": the answer tokens' accuracy on val at each reading
    assert all(0 <= r["eval_token_accuracy"] <= 1 for r in curves if r["eval_loss"] is not None)
    assert sum(r["eval_token_accuracy"] is not None for r in curves) == evaluated
    row = store.rung_rows(result.run_id)[-1]
    summary = json.loads(row["summary_json"])["training"]
    assert summary["adapter"] == str(adapter) and summary["config"]["rank"] == 4
    assert [u.split(" ")[0] for u in summary["unusual_settings"]] == \
        ["gradient_accumulation", "learning_rate"]  # 1 and 0.005: outside the seeds' ranges
    regression = summary["regression"]  # the general suite, on the base and the tuned model
    memory = summary["peak_memory"]  # measured beside the estimate for this very tune
    assert memory["measured"]["peak_bytes"] > 0 and memory["estimate"]["total"] > 0
    assert memory["relative_error"] is not None
    assert regression["n"] > 50 and 0 <= regression["tuned_accuracy"] <= 1
    assert regression["flagged"] == (regression["drop"] > 0.05)
    store.close()
    # a threshold changed since: the same tune (the setting is not in its key), checked again
    toml.write_text(toml.read_text() + "regression_threshold = 0.5\n")
    again = climb(toml, only="finetune", force=True)
    retuned = again.results[-1]
    assert retuned.training["reused"] and retuned.pipeline.model == tuned.pipeline.model
    assert retuned.training["regression"]["threshold"] == 0.5
    assert "50-point threshold" in retuned.training["regression"]["finding"]


def test_a_past_tune_is_exported_and_measured_again(task_dir: Path, tiny_llama: Path) -> None:
    base = task_dir.parent / "base"  # a copy of its own: its weights change at the end
    shutil.copytree(tiny_llama, base)
    toml = write_task(task_dir, model=str(base), extra=FINETUNE)
    first = climb(toml, only="finetune", force=True)
    tuned = first.results[-1]
    runner = CliRunner()
    merged, copied = task_dir / "merged", task_dir / "copied"
    for args in (["--merge", "--out", str(merged)], ["--out", str(copied)]):
        result = runner.invoke(app, ["export", first.run_id, "--task", str(toml), *args])
        assert result.exit_code == 0, result.output
    provenance = json.loads((merged / "rung_export.json").read_text())
    assert provenance["merged"] and provenance["run"] == first.run_id
    assert provenance["base_fingerprint"] and provenance["split_hash"]
    assert not (merged / "adapter_config.json").exists()  # a plain model, no PEFT needed
    prompt = [tuned.pipeline.messages("ticket 3 about billing number 21")]
    merged_scores = load_model(str(merged)).score_choices(prompt, ["BILLING", "BUG"])
    adapter_scores = load_model(str(copied)).score_choices(prompt, ["BILLING", "BUG"])
    assert merged_scores[0].logprobs == pytest.approx(adapter_scores[0].logprobs, abs=1e-4)
    refused = runner.invoke(app, ["export", first.run_id, "--task", str(toml), "--out", str(merged)])
    assert refused.exit_code == 2 and "not empty" in refused.stderr

    again = climb(toml, tune_from=first.run_id)  # today's cheaper rungs beside yesterday's tune
    assert [r.rung for r in again.results] == ["prompt", "few-shot", "finetune"]
    retested = again.results[-1]
    assert retested.training["reused"] and retested.pipeline.model == tuned.pipeline.model
    assert retested.test.score.value == pytest.approx(tuned.test.score.value)
    assert retested.versus is not None  # paired against the best cheaper rung

    original = toml.read_text()
    # a target the prompt reaches on val: the stop rule cut few-shot, and the past tune was
    # still measured and could be recommended over it; with --tune every rung is measured
    toml.write_text(original.replace("target = 0.9", "target = 0.01"))
    low = climb(toml, tune_from=first.run_id)
    assert [r.rung for r in low.results] == ["prompt", "few-shot", "finetune"]
    assert low.recommendation.get("stopped") is None
    toml.write_text(original.replace("seed = 7", "seed = 8"))  # a new split
    with pytest.raises(DataError, match="trained on .* of today's"):
        climb(toml, tune_from=first.run_id)

    toml.write_text(original)  # the base model's weights change under the adapter
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    with pytest.raises(ModelError, match="its weights have changed since"):
        climb(toml, tune_from=first.run_id)


def test_a_not_ready_dataset_is_refused_unless_forced(task_dir: Path, tiny_llama: Path) -> None:
    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    with pytest.raises(NotReadyError, match="size"):
        climb(toml, only="finetune")
    result = CliRunner().invoke(app, ["eval", str(toml), "--rung", "finetune"])
    assert result.exit_code == 2
    assert "not ready" in result.stderr and "--force" in result.stderr


def _val_loss_must_rise(task_dir: Path, tiny_llama: Path) -> tuple:
    """Train says BILLING to everything, val expects BUG: once the shared format is learnt,
    val loss can only rise. Val read every 2 steps, patience 2: (task, pipeline, train, val)."""
    extra = finetune_table(rank=8, alpha=16, learning_rate=0.01, epochs=10, batch_size=4,
                           gradient_accumulation=1, eval_steps=2, early_stopping_patience=2)
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=extra))
    train = [make_example(f"ticket number {i} about money", "BILLING", line=i) for i in range(16)]
    val = [make_example(f"ticket number {i} about a crash", "BUG", line=100 + i) for i in range(4)]
    pipeline = Pipeline(rung="prompt", kind="classification", model=str(tiny_llama),
                        instruction="Classify.", labels=["BILLING", "BUG"], base_dir=str(task.root))
    return task, pipeline, train, val


def test_early_stopping_stops_when_val_loss_rises(task_dir: Path, tiny_llama: Path) -> None:
    """Once val loss can only rise, training must stop there and keep the best checkpoint."""
    task, pipeline, train, val = _val_loss_must_rise(task_dir, tiny_llama)
    tune = fine_tune(task, pipeline, train, val, task_dir / "out")
    evaluations = [c["eval_loss"] for c in tune.curves if "eval_loss" in c]
    assert tune.stopped_early and tune.steps < 10 * 4
    assert len(evaluations) == tune.steps // 2  # every 2 steps, until patience ran out
    best = min(range(len(evaluations)), key=evaluations.__getitem__)
    assert tune.best_step == 2 * (best + 1) and tune.best_val_loss == pytest.approx(evaluations[best])
    assert all(later >= evaluations[best] for later in evaluations[best:])
    # stopped after exactly `patience` evaluations that did not improve by FLAT on the last
    # one that did (a new best by less is no improvement: train.early_stopping)
    improved = 0
    for i, loss in enumerate(evaluations):
        if loss < evaluations[improved] * (1 - FLAT):
            improved = i
    assert len(evaluations) - 1 - improved == 2


def test_a_resumed_tune_stops_early_where_an_uninterrupted_one_does(task_dir: Path,
                                                                     tiny_llama: Path) -> None:
    """Early stopping's count of worse evaluations is saved with each checkpoint: a tune
    killed one worse evaluation short of its patience stops at the same step once resumed,
    not one evaluation later (transformers leaves callback states behind by default)."""
    from transformers import TrainerCallback

    task, pipeline, train, val = _val_loss_must_rise(task_dir, tiny_llama)
    whole = fine_tune(task, pipeline, train, val, task_dir / "whole")
    assert whole.stopped_early
    cut_at = whole.steps - 2  # its last save before the end: one worse evaluation counted

    class Killed(Exception):
        pass

    class Kill(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == cut_at:
                raise Killed

    with pytest.raises(Killed):
        fine_tune(task, pipeline, train, val, task_dir / "cut", callbacks=[Kill()])
    resumed = fine_tune(task, pipeline, train, val, task_dir / "cut")
    assert resumed.resumed_from == cut_at
    assert (resumed.steps, resumed.best_step) == (whole.steps, whole.best_step)


def _pipeline(tiny_llama: Path, task_dir: Path) -> Pipeline:
    return Pipeline(rung="prompt", kind="classification", model=str(tiny_llama),
                    instruction="Classify the ticket.", labels=["BILLING", "BUG"],
                    base_dir=str(task_dir))


def _tickets(n: int, label: str = "BILLING", start: int = 0) -> list:
    return [make_example(f"ticket number {i} about money", label, line=i + 1,
                         rejected="BUG" if label == "BILLING" else "BILLING")
            for i in range(start, start + n)]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_takes_a_step_and_its_artifact_serves(
        method: str, task_dir: Path, tiny_llama: Path) -> None:
    """The matrix every method joins: one optimiser step, then the artifact loads through
    the registry and scores and generates like any model."""
    import torch

    extra = finetune_table(method=method, rank=4, alpha=8, virtual_tokens=4, epochs=1,
                           batch_size=8, gradient_accumulation=1)
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=extra))
    pipeline = _pipeline(tiny_llama, task_dir)
    if METHODS[method].needs_cuda and not torch.cuda.is_available():
        with pytest.raises(RungError, match="CUDA") as err:
            fine_tune(task, pipeline, _tickets(8), _tickets(2, start=50), task_dir / "out")
        assert 'method = "lora"' in err.value.fix
        return
    tune = fine_tune(task, pipeline, _tickets(8), _tickets(2, start=50), task_dir / "out")
    assert tune.steps == 1 and tune.method == method
    assert any("loss" in c for c in tune.curves) and tune.best_val_loss is not None
    share = tune.trainable_parameters / tune.total_parameters
    assert share == 1.0 if method == "full" else 0 < share < 0.5
    base = json.loads((tune.artifact / "rung_base.json").read_text())
    assert base["method"] == method and (tune.artifact / "tune.json").exists()
    assert not (task_dir / "out" / "checkpoints").exists()  # kept only until the tune finished
    model = load_model(str(tune.artifact))
    [scores] = model.score_choices([pipeline.messages("ticket 3 about money")], ["BILLING", "BUG"])
    assert len(scores.logprobs) == 2 and all(lp < 0 for lp in scores.logprobs)
    [generation] = model.generate([pipeline.messages("ticket 3 about money")], max_new_tokens=3)
    assert generation.tokens_out <= 3


def test_dpo_needs_a_rejected_answer_on_every_example(task_dir: Path, tiny_llama: Path) -> None:
    task = load_task(write_task(task_dir, model=str(tiny_llama),
                                extra=finetune_table(method="dpo")))
    train = _tickets(4) + [make_example("ticket without a pair", "BUG", line=9)]
    with pytest.raises(RungError, match=r"1 of 7 .*lines 9\)") as err:
        fine_tune(task, _pipeline(tiny_llama, task_dir), train, _tickets(2), task_dir / "out")
    assert "rejected" in err.value.fix and err.value.file == str(task.data_path)
    # val too: its loss is the preference loss on its own pairs (it was a KeyError)
    val = [make_example("a val ticket without a pair", "BUG", line=12)]
    with pytest.raises(RungError, match=r"1 of 5 train and val examples .*lines 12\)"):
        fine_tune(task, _pipeline(tiny_llama, task_dir), _tickets(4), val, task_dir / "out")


def _interrupted_at_step_3(task_dir: Path, tiny_llama: Path) -> tuple:
    """A 6-step LoRA tune stopped by Ctrl-C at step 3, with checkpoint-2 saved: what it
    needs to be resumed (task, pipeline, train, val, out)."""
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step == 3:
                raise KeyboardInterrupt

    extra = finetune_table(rank=4, alpha=8, learning_rate=0.001, epochs=3, batch_size=4,
                           gradient_accumulation=1, eval_steps=2, early_stopping_patience=10)
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=extra))
    pipeline, out = _pipeline(tiny_llama, task_dir), task_dir / "out"
    train, val = _tickets(8), _tickets(2, "BUG", start=50)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(task, pipeline, train, val, out, callbacks=[Interrupt()])
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    return task, pipeline, train, val, out


def test_an_interrupted_tune_resumes_from_its_checkpoint(task_dir: Path, tiny_llama: Path) -> None:
    task, pipeline, train, val, out = _interrupted_at_step_3(task_dir, tiny_llama)
    tune = fine_tune(task, pipeline, train, val, out)
    assert tune.resumed_from == 2 and tune.steps == 6 and not tune.reused
    logged = [c["step"] for c in tune.curves if "loss" in c]
    assert logged == [1, 2, 3, 4, 5, 6]  # the first two from the checkpoint's own history
    assert [c["step"] for c in tune.curves if "eval_loss" in c] == [2, 4, 6]
    # the token count goes on from the checkpoint's (TRL's restarts at 0 in each call): the
    # whole tune's tokens, and a rate from this call's tokens over this call's seconds
    counted = [c["num_tokens"] for c in tune.curves if "num_tokens" in c]
    assert counted == sorted(counted) and tune.train_tokens == counted[-1]
    before = max(c["num_tokens"] for c in tune.curves if c["step"] <= 2 and "num_tokens" in c)
    assert 0 < tune.tokens_this_call == tune.train_tokens - before
    assert tune.summary()["tokens_per_second"] == round(tune.tokens_this_call / tune.seconds, 1)
    again = fine_tune(task, pipeline, train, val, out)  # finished: picked up, not retrained
    assert again.reused and again.rank_digests == tune.rank_digests


def test_training_shows_each_optimizer_step_and_a_resumed_tune_starts_at_its_checkpoint(
        task_dir: Path, tiny_llama: Path) -> None:
    from rung.finetune.progress import StepProgress
    from rung.plan import train_steps

    task, pipeline, train, val, out = _interrupted_at_step_3(task_dir, tiny_llama)
    stages: list[tuple[str, int]] = []
    steps: list[int] = []

    def reporter(stage: str, total: int):  # type: ignore[no-untyped-def]
        stages.append((stage, total))
        return steps.append

    tune = fine_tune(task, pipeline, train, val, out,
                     callbacks=[StepProgress(reporter, "finetune: training (lora)")])
    assert stages == [("finetune: training (lora)", 6)]  # the Trainer's max_steps, and
    assert train_steps(task, len(train)) == 6  # the plan's: 8 examples in 4s, 3 epochs
    assert steps == [2, 1, 1, 1, 1] and tune.steps == 6  # from checkpoint-2, then a step each


def test_a_checkpoint_cut_off_mid_save_is_dropped_and_the_one_before_resumes(
        task_dir: Path, tiny_llama: Path) -> None:
    """The Trainer writes trainer_state.json last: a kill while saving leaves a checkpoint
    without it, which transformers would pick as the latest and fail to resume from."""
    task, pipeline, train, val, out = _interrupted_at_step_3(task_dir, tiny_llama)
    whole, cut = out / "checkpoints" / "checkpoint-2", out / "checkpoints" / "checkpoint-4"
    cut.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):  # weights, no state
        shutil.copy(whole / name, cut / name)
    tune = fine_tune(task, pipeline, train, val, out)
    assert tune.resumed_from == 2 and tune.steps == 6


# --- the diagnosis, on constructed curves ---------------------------------------------------


def test_overfitting_signal_and_its_fix() -> None:
    [signal] = diagnose(train_loss=[2.0, 1.6, 1.2, 0.8, 0.5, 0.3], val_loss=[1.5, 1.2, 1.4, 1.7])
    assert signal.name == "overfitting" and signal.fix == "reduce epochs, add data"
    assert "evaluation 2" in signal.evidence


def test_flat_val_loss_while_train_falls_is_memorisation() -> None:
    [signal] = diagnose(train_loss=[2.0, 1.5, 1.0, 0.6], val_loss=[1.30, 1.29, 1.30, 1.305])
    assert signal.name == "memorisation" and signal.fix == "early stopping"
    # judged from the best on: val loss that improved early, then stopped, while train fell
    [signal] = diagnose(train_loss=[2, 1.6, 1.2, .8, .5, .3, .2, .1],
                        val_loss=[1.5, 1.0, 1.0, 1.0, 1.0])
    assert signal.name == "memorisation" and "best 1.000 (evaluation 2)" in signal.evidence
    # early stopping ended the run on that plateau, the best checkpoint kept: the fix at work
    assert diagnose([2, 1.6, 1.2, .8, .5, .3, .2, .1], [1.5, 1.0, 1.0, 1.0, 1.0],
                    stopped_early=True) == []
    # still improving at the end, or train loss no longer falling after the best: no signal
    assert diagnose([2, 1.6, 1.2, .8, .5, .3, .2, .1], [1.5, 1.2, 1.1, 1.0, 0.95]) == []
    assert diagnose([2, 1.0, .9, .9, .9, .9, .9, .9], [1.5, 1.0, 1.0, 1.0, 1.0]) == []


def test_perfect_train_accuracy_and_healthy_curves() -> None:
    signals = diagnose([1.0, 0.5, 0.2, 0.1], [1.0, 0.6, 0.4, 0.3], train_accuracy=[0.7, 1.0])
    assert [s.name for s in signals] == ["perfect-train-accuracy"]
    assert signals[0].fix == "more data, regularisation"
    assert diagnose([1.0, 0.8, 0.6, 0.5], [1.0, 0.8, 0.7, 0.65]) == []
    lucky = [0.9] * 19 + [1.0]  # one perfect batch at the end is not memorisation
    assert diagnose([1.0, 0.5], [1.0, 0.6], train_accuracy=lucky) == []


def test_the_answer_only_head_gives_trl_s_loss_and_gradients(task_dir: Path, tiny_llama: Path) -> None:
    """The same batch through TRL's own loss and through logits at answer positions only."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from rung.finetune.answer_loss import AnswerOnlySFTTrainer
    from rung.finetune.data import sft_records

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    records = sft_records(_pipeline(tiny_llama, task_dir),
                          [make_example("short", "BUG"), make_example("a much longer ticket " * 5,
                                                                      "BILLING")])
    losses, grads = [], []
    for trainer_class in (SFTTrainer, AnswerOnlySFTTrainer):
        torch.manual_seed(0)
        trainer = trainer_class(
            model=AutoModelForCausalLM.from_pretrained(tiny_llama), processing_class=tokenizer,
            args=SFTConfig(output_dir=str(task_dir / "x"), per_device_train_batch_size=2,
                           use_cpu=True, report_to=[], gradient_checkpointing=False),
            train_dataset=Dataset.from_list(records),
            peft_config=LoraConfig(r=4, target_modules=["q_proj"], lora_dropout=0.0,
                                   init_lora_weights=False))
        batch = next(iter(trainer.get_train_dataloader()))
        if trainer_class is AnswerOnlySFTTrainer:  # the short path is the one measured here
            assert trainer._answer_only(trainer.model, batch, return_outputs=False)
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.model.parameters()
                                if p.grad is not None]))
        assert trainer._metrics["train"]["mean_token_accuracy"]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert torch.allclose(grads[1], grads[0], rtol=1e-4, atol=1e-7)


def test_a_vllm_or_hf_export_carries_the_prompt_in_its_chat_template(task_dir: Path,
                                                                      tiny_llama: Path) -> None:
    """Read back with transformers alone: the folder's template renders a bare user message
    as rung rendered the pipeline's prompt, and the model there picks the label rung served."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rung.models.hf import render_chat

    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    first = climb(toml, only="finetune", force=True)
    tuned = first.results[-1]
    runner = CliRunner()
    folders = {fmt: task_dir / f"export-{fmt}" for fmt in ("vllm", "hf")}
    for fmt, folder in folders.items():
        done = runner.invoke(app, ["export", first.run_id, "--task", str(toml), "--format", fmt,
                                   "--out", str(folder)])
        assert done.exit_code == 0, done.output
        assert "vllm serve" in done.stderr
    manifest = json.loads((folders["vllm"] / "rung_manifest.json").read_text())
    assert manifest["format"] == "vllm" and manifest["base_model"] == str(tiny_llama)
    assert manifest["test_score"] == round(tuned.test.score.value, 4)
    assert manifest["adapter"] == str(folders["vllm"]) and manifest["split_hash"]
    assert (folders["vllm"] / "adapter_config.json").exists()  # base + adapter, for LoRA serving
    text = tuned.pipeline.messages("ticket 3 about billing number 21")[-1].content
    ticket = "ticket 3 about billing number 21"
    ours = AutoTokenizer.from_pretrained(str(tiny_llama))
    for folder in folders.values():
        theirs = AutoTokenizer.from_pretrained(str(folder))
        rendered = theirs.apply_chat_template([{"role": "user", "content": ticket}],
                                              tokenize=False, add_generation_prompt=True)
        assert rendered == render_chat(ours, tuned.pipeline.messages(ticket),
                                       add_generation_prompt=True)
        assert text in rendered
    # the merged model, loaded by transformers alone, picks the label rung's pipeline picks
    model = AutoModelForCausalLM.from_pretrained(str(folders["hf"])).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folders["hf"]))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": ticket}], tokenize=False,
                                           add_generation_prompt=True)
    scores = []
    for label in tuned.pipeline.labels:
        prefix = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = tokenizer(prompt + label, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].log_softmax(-1)
        scores.append(sum(logits[i - 1, ids[i]].item() for i in range(len(prefix), len(ids))))
    served = tuned.pipeline.predict([ticket])[0].text
    assert tuned.pipeline.labels[scores.index(max(scores))] == served


def test_a_tune_that_cannot_fit_the_device_is_refused_before_its_first_step(
        task_dir: Path, tiny_llama: Path) -> None:
    """The seeds' "right-size your hardware before you start": a batch of ten million
    sequences needs petabytes of logits on any machine, so the tune stops before training,
    saying what it needs, what there is and what would fit; memory_check = false lets it try."""
    from rung.finetune.fit import device_memory

    task = load_task(write_task(task_dir, model=str(tiny_llama),
                                extra=finetune_table(method="lora", batch_size=10_000_000)))
    with pytest.raises(RungError, match=r"the lora tune needs about ~\d+ GB at its peak") as err:
        fine_tune(task, _pipeline(tiny_llama, task_dir), _tickets(4), _tickets(2),
                  task_dir / "out")
    available, where, _ = device_memory()
    assert where in err.value.message and available > 2**30
    import torch

    # QLoRA is offered only where it can run: a CUDA GPU
    assert ('method = "qlora"' in err.value.fix) == torch.cuda.is_available()
    assert "gradient_checkpointing = true" in err.value.fix
    assert "memory_check = false" in err.value.fix and err.value.file == str(task.path)
    assert not (task_dir / "out" / "checkpoints").exists() or not any(
        (task_dir / "out" / "checkpoints").iterdir())  # no step was taken


def test_gradient_norms_that_explode_or_vanish_are_signals_with_fixes() -> None:
    """The seeds' monitoring list: gradient norms, explosions or vanishing."""
    falling, healthy = [2.0, 1.5, 1.1, 0.8], [1.5, 1.2, 1.0, 0.9]
    norms = [1.2, 0.9, 1.1, 1.0, 0.8, 1.3, 0.95, 1.05, 0.9, 1.1]
    assert diagnose(falling, healthy, grad_norm=norms) == []
    [spike] = diagnose(falling, healthy, grad_norm=norms[:6] + [40.0] + norms[6:])
    assert spike.name == "exploding-gradients" and "at logged point 7" in spike.evidence
    assert "38x the median 1.05 of the 6 before it" in spike.evidence and "lower the learning rate" in spike.fix
    [nan] = diagnose(falling, healthy, grad_norm=[1.0, float("nan")])
    assert nan.name == "exploding-gradients" and nan.evidence.startswith("gradient norm nan")
    flat = [1.0, 1.0, 0.99, 1.0]  # the loss does not move while the norms die
    [dead] = diagnose(flat, healthy, grad_norm=[1.0] + [0.5] * 8 + [1e-6])
    assert dead.name == "vanishing-gradients" and "raise the learning rate" in dead.fix
    assert diagnose(falling, healthy, grad_norm=[1.0] + [0.5] * 8 + [1e-6]) == []  # it learned


def test_memory_check_does_not_rename_the_tune(task_dir: Path, tiny_llama: Path) -> None:
    """memory_check says whether to start, not what is trained: switching it off to get past
    a refusal resumes the same tune folder, and a store from before the setting existed
    keeps its tunes."""
    from rung.finetune.folder import tune_key

    on = load_task(write_task(task_dir / "on", model=str(tiny_llama), extra=finetune_table()))
    off = load_task(write_task(task_dir / "off", model=str(tiny_llama),
                               extra=finetune_table(memory_check=False)))
    pipeline, train = _pipeline(tiny_llama, task_dir), _tickets(4)
    assert tune_key(on, pipeline, train, [], "base") == tune_key(off, pipeline, train, [], "base")
    kept = load_task(write_task(task_dir / "kept", model=str(tiny_llama),
                                extra=finetune_table(keep_checkpoints=5,
                                                     regression_threshold=0.2)))
    assert tune_key(kept, pipeline, train, [], "base") == tune_key(on, pipeline, train, [],
                                                                    "base")
    # a tune an earlier rung named (its key left out memory_check alone) is used where it
    # is, so it is neither trained again nor lost to the runs that point at it
    from rung.finetune.folder import tune_folder

    tunes = task_dir / "tunes"
    earlier = tunes / tune_key(on, pipeline, train, [], "base", leaving_out={"memory_check"})
    assert earlier.name != tune_key(on, pipeline, train, [], "base")
    assert tune_folder(tunes, on, pipeline, train, [], "base").name == \
        tune_key(on, pipeline, train, [], "base")  # nothing there yet: today's name
    earlier.mkdir(parents=True)
    assert tune_folder(tunes, on, pipeline, train, [], "base") == earlier
    wider = load_task(write_task(task_dir / "r8", model=str(tiny_llama),
                                 extra=finetune_table(rank=8)))
    assert tune_key(wider, pipeline, train, [], "base") != tune_key(on, pipeline, train, [],
                                                                     "base")


def test_a_preference_tune_is_renamed_when_its_rejected_answers_change(task_dir: Path,
                                                                         tiny_llama: Path) -> None:
    """An example's id hashes its messages; the rejected answer is beside them, and a tune
    trained against other rejected answers is another tune."""
    from rung.finetune.folder import tune_key

    task = load_task(write_task(task_dir, model=str(tiny_llama),
                                extra=finetune_table(method="dpo")))
    pipeline = _pipeline(tiny_llama, task_dir)
    bad = [make_example(f"q{i}", "good", rejected="bad", line=i) for i in range(4)]
    also_good = [make_example(f"q{i}", "good", rejected="also good", line=i) for i in range(4)]
    assert [ex.id for ex in bad] == [ex.id for ex in also_good]
    assert tune_key(task, pipeline, bad, bad[:1], "b") != tune_key(task, pipeline, also_good,
                                                                   also_good[:1], "b")


def test_examples_the_training_length_cuts_to_nothing_are_counted_not_dropped_silently(
        task_dir: Path, tiny_llama: Path) -> None:
    """An example longer than the training length is left out (TRL would cut it, and drop
    it only with no answer token left): some left out is said with the tune's unusual
    settings; none left is refused before a step."""
    def tickets(label: str, start: int) -> list:
        return [make_example(f"ticket number {i} about money " * (1 if i % 2 else 8), label,
                             line=i) for i in range(start, start + 8)]

    extra = finetune_table(max_seq_length=48, epochs=1, batch_size=4, gradient_accumulation=1)
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=extra))
    tune = fine_tune(task, _pipeline(tiny_llama, task_dir), tickets("BILLING", 0),
                     tickets("BUG", 100), task_dir / "out")
    said = [u for u in tune.unusual if "cuts" in u]
    assert said == ["[finetune] max_seq_length = 48 cuts 4 of 8 train examples before their "
                    "answer ends, and training leaves them out (a cut answer would teach the "
                    "model not to stop)",
                    "[finetune] max_seq_length = 48 cuts 4 of 8 val examples before their "
                    "answer ends, and training leaves them out (a cut answer would teach the "
                    "model not to stop)"]
    assert tune.left_out == {"train": 4, "val": 4}
    short = load_task(write_task(task_dir / "short", model=str(tiny_llama),
                                 extra=finetune_table(max_seq_length=16, epochs=1)))
    with pytest.raises(DataError, match="no train example fits whole within "
                                        r"\[finetune\] max_seq_length = 16"):
        fine_tune(short, _pipeline(tiny_llama, task_dir), tickets("BILLING", 0),
                  tickets("BUG", 100), task_dir / "short-out")


def test_a_model_the_memory_estimate_does_not_know_still_tunes(task_dir: Path,
                                                               tiny_llama: Path) -> None:
    """GPT-2 names its attention c_attn and has no q_proj: LoRA on c_attn trains with no
    estimate (the check has nothing to refuse on), and a full tune, which has no targets,
    is estimated and trains."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4,
                        n_positions=256, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    gpt2 = task_dir.parent / "tiny-gpt2"
    GPT2LMHeadModel(config).save_pretrained(gpt2)
    tokenizer.save_pretrained(gpt2)
    pipeline = Pipeline(rung="prompt", kind="classification", model=str(gpt2),
                        instruction="Classify the ticket.", labels=["BILLING", "BUG"],
                        base_dir=str(task_dir))
    for method, targets in (("lora", ["c_attn"]), ("full", ["q_proj", "v_proj"])):
        task = load_task(write_task(task_dir / method, model=str(gpt2), extra=finetune_table(
            method=method, target_modules=targets, epochs=1, batch_size=4,
            gradient_accumulation=1, learning_rate=1e-4)))
        tune = fine_tune(task, pipeline, _tickets(8), _tickets(4, "BUG", 50),
                         task_dir / method / "out")
        estimate = tune.peak_memory["estimate"]
        assert tune.steps == 2 and (estimate is None) == (method == "lora"), (method, estimate)


def test_settings_outside_the_seeds_ranges_are_named_and_the_defaults_are_inside() -> None:
    from rung.finetune.methods import unusual_settings

    assert unusual_settings(FineTuneTable(), max_seq_length=2048) == []
    for method in ("qlora", "dpo", "prefix", "prompt-tuning"):  # each at its own default
        assert unusual_settings(FineTuneTable(method=method), max_seq_length=2048) == []
    odd = FineTuneTable(learning_rate=0.05, epochs=20, warmup_ratio=0.5, rank=128, alpha=16,
                        target_modules=["o_proj"], scheduler="constant")
    found = " | ".join(unusual_settings(odd, max_seq_length=128))
    for said in ("learning_rate = 0.05 (the seeds' typical range is 1e-05 to 0.0005)",
                 "epochs = 20", "warmup_ratio = 0.5", "rank = 128", "max_seq_length = 128",
                 "the seeds' minimum is q_proj and v_proj", "alpha = 16 with rank 128",
                 "scheduler = constant"):
        assert said in found, said
    full = unusual_settings(FineTuneTable(method="full"), max_seq_length=2048, n_train=900)
    assert full == ["method = full on 900 training examples (the seeds: full fine-tuning "
                    "wants 10,000+; LoRA needs far fewer)"]


def test_a_tune_recorded_before_device_and_settings_were_kept_is_read_whole(
        task_dir: Path, tiny_llama: Path) -> None:
    """A tune.json from an earlier rung has neither: reused, its device comes from its
    measured memory (priced as the CPU tune it was) and its unusual settings from the config
    that trained it, the same config that named its folder."""
    from rung.finetune.record import TUNE_FILE

    toml = write_task(task_dir, model=str(tiny_llama), extra=FINETUNE)
    tuned = climb(toml, only="finetune", force=True).results[-1]
    record_path = Path(tuned.pipeline.model) / TUNE_FILE
    record = json.loads(record_path.read_text())
    assert record["device"] == "cpu" and record["unusual"]
    for key in ("device", "unusual"):
        del record[key]
    record_path.write_text(json.dumps(record))
    again = climb(toml, only="finetune", force=True).results[-1]
    assert again.training["reused"] and again.training["device"] == "cpu"
    assert again.training["unusual_settings"] == tuned.training["unusual_settings"]
