"""What a tune trains on and when it stops: a model without a chat template is trained on
exactly what it is served; an answer the training length would cut is left out and counted;
memory is judged against what is free; early stopping and the diagnosis see a val loss that
creeps down by hairs; full fine-tuning keeps fp32 weights on a GPU; the effective batch."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from rung.data.example import make_example
from rung.errors import RungError
from rung.finetune.diagnose import FLAT, diagnose
from rung.pipeline import Pipeline
from rung.task import FineTuneTable, load_task
from conftest import finetune_table, write_task


def _pipeline(model: Path, task_dir: Path, kind: str = "classification") -> Pipeline:
    labels = {"labels": ["BILLING", "BUG"]} if kind == "classification" else {}
    return Pipeline(rung="prompt", kind=kind, model=str(model), instruction="Classify the ticket.",
                    base_dir=str(task_dir), **labels)


def _tickets(n: int, label: str = "BILLING", start: int = 0) -> list:
    return [make_example(f"ticket number {i} about money", label, line=i + 1,
                         rejected="BUG" if label == "BILLING" else "BILLING")
            for i in range(start, start + n)]


@pytest.fixture
def no_template(tiny_llama: Path, tmp_path: Path) -> Path:
    """The tiny Llama as a base model: its tokenizer has no chat template."""
    base = tmp_path / "base"
    shutil.copytree(tiny_llama, base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((base / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    return base


def test_a_model_without_a_chat_template_is_trained_on_what_it_is_served(
        task_dir: Path, no_template: Path) -> None:
    """Serving asks a base model a plain transcript (after its BOS) and reads its answer to
    the first line break; training gives it the same prompt tokens, and the loss falls on
    the answer and that line break only, the tokens a choice is scored by. TRL alone raised
    on the missing template once the weights had loaded."""
    from rung.finetune.train import fine_tune
    from rung.finetune.trainer import build_trainer as _trainer
    from rung.models.registry import load_model

    task = load_task(write_task(task_dir, model=str(no_template), extra=finetune_table(
        rank=4, alpha=8, epochs=1, batch_size=8, gradient_accumulation=1)))
    pipeline, train, val = _pipeline(no_template, task_dir), _tickets(8), _tickets(2, "BUG", 50)
    served = load_model(str(no_template))
    assert not served.tokenizer.chat_template
    trainer = _trainer(task, pipeline, train, val, task_dir / "probe", [])
    for example, row in zip(train, trainer.train_dataset):
        ids, labels = row["input_ids"], row["labels"]
        first = next(i for i, label in enumerate(labels) if label != -100)
        assert ids[:first] == served._encode_prompt(pipeline.messages(example.input))
        assert ids[first:] == labels[first:] == served._encode(example.output
                                                               + served.end_of_turn)
    for example, row in zip(val, trainer.eval_dataset):
        assert row["input_ids"][:len(row["input_ids"]) - 3] \
            == served._encode_prompt(pipeline.messages(example.input))[:len(row["input_ids"]) - 3]
    tune = fine_tune(task, pipeline, train, val, task_dir / "out")
    assert tune.steps == 1 and tune.best_val_loss is not None


def test_a_preference_tune_without_a_chat_template_is_asked_the_served_prompt(
        task_dir: Path, no_template: Path) -> None:
    from rung.finetune.trainer import build_trainer as _trainer
    from rung.models.registry import load_model

    task = load_task(write_task(task_dir, model=str(no_template), extra=finetune_table(
        method="dpo", rank=4, alpha=8, epochs=1, batch_size=4, gradient_accumulation=1)))
    pipeline = _pipeline(no_template, task_dir)
    served = load_model(str(no_template))
    trainer = _trainer(task, pipeline, _tickets(4), _tickets(2, "BUG", 50), task_dir / "out", [])
    row, example = trainer.train_dataset[0], _tickets(1)[0]
    assert row["prompt_ids"] == served._encode_prompt(pipeline.messages(example.input))
    chosen = served._encode(example.output + served.end_of_turn)
    assert row["chosen_ids"][:len(chosen)] == chosen


def test_an_answer_the_training_length_would_cut_is_left_out_and_counted(
        task_dir: Path, tiny_llama: Path) -> None:
    """TRL cut every example at max_seq_length and kept the ones with any answer token left,
    so answers cut part-way trained without their end-of-turn token (teaching answers that
    never end), and nothing said so. Such an example is left out whole, and counted."""
    from rung.finetune.trainer import build_trainer as _trainer, leave_out_long as _left_out

    length = 36  # prompts take 24 tokens, short answers 5, long ones 19
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=finetune_table(
        rank=4, epochs=1, batch_size=2, gradient_accumulation=1, max_seq_length=length)))
    pipeline = _pipeline(tiny_llama, task_dir, kind="generation")
    long = "BILLING: the customer was charged twice and wants the second charge refunded."
    # short answers fit; long ones fit in their prompt and first answer tokens, not whole
    train = [make_example(f"ticket {i} money", long if i % 2 else "BILLING", line=i + 1)
             for i in range(6)]
    val = [make_example(f"ticket {i} crash", long if i < 1 else "BUG", line=i + 10)
           for i in range(3)]
    trainer = _trainer(task, pipeline, train, val, task_dir / "out", [])
    tokenizer = trainer.processing_class
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    full = [len(r["input_ids"]) for r in trainer.train_dataset]
    prompt = [sum(1 for t in r["labels"] if t == -100) for r in trainer.train_dataset]
    assert sum(n > length for n in full) == 3 and all(p < length for p in prompt)
    left = _left_out(task, trainer, len(train), len(val))
    assert left["counts"] == {"train": 3, "val": 1}
    assert left["said"] == [
        f"[finetune] max_seq_length = {length} cuts 3 of 6 train examples before their answer "
        "ends, and training leaves them out (a cut answer would teach the model not to stop)",
        f"[finetune] max_seq_length = {length} cuts 1 of 3 val examples before their answer "
        "ends, and training leaves them out (a cut answer would teach the model not to stop)"]
    for data in (trainer.train_dataset, trainer.eval_dataset):
        for row in data:  # every answer trained on ends as the model is to end it
            answer = [t for t in row["labels"] if t != -100]
            assert end in answer and len(row["input_ids"]) <= length


def test_the_tune_s_record_says_how_many_examples_were_left_out(task_dir: Path,
                                                               tiny_llama: Path) -> None:
    from rung.finetune.train import fine_tune

    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=finetune_table(
        rank=4, epochs=1, batch_size=4, gradient_accumulation=1, max_seq_length=40)))
    long = "BILLING, because the customer was charged twice this month for one order."
    train = [make_example(f"ticket {i}", long if i < 2 else "BILLING", line=i + 1)
             for i in range(6)]
    tune = fine_tune(task, _pipeline(tiny_llama, task_dir, kind="generation"), train,
                     [make_example("ticket 9", "BUG", line=20)], task_dir / "out")
    assert tune.left_out == {"train": 2} and tune.summary()["left_out"] == {"train": 2}
    assert any("cuts 2 of 6 train examples" in u for u in tune.unusual)


def test_memory_is_judged_against_what_is_free_now(task_dir: Path, tiny_llama: Path) -> None:
    """The refusal compares the estimate with the memory free now (MemAvailable on Linux,
    the GPU's free memory), plus what the tune's own loaded weights already hold, not the
    device's total, which other processes and the inference copy may be using."""
    from rung.finetune.memory import estimate_memory, shape_for
    from rung.finetune.fit import available_ram, check_fits

    meminfo = "MemTotal:       131072000 kB\nMemFree:         1000 kB\n" \
              "MemAvailable:    2097152 kB\nBuffers:  12 kB\n"
    assert available_ram(meminfo) == 2097152 * 1024
    assert available_ram("MemTotal: 10 kB\n") is None and available_ram("") is None
    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=finetune_table()))
    estimate = estimate_memory(shape_for("7B"), method="lora")  # ~30 GB at batch 4
    where = "this machine's RAM"
    with pytest.raises(RungError, match=r"this machine's RAM has ~2\.1 GB free now") as err:
        check_fits(task, estimate, available=(available_ram(meminfo), where))
    assert "other processes" in err.value.fix
    check_fits(task, estimate, available=(estimate.total, where))
    # the weights already loaded are part of the estimate: they count as room
    check_fits(task, estimate, loaded=estimate.weights,
               available=(estimate.total - estimate.weights, where))
    with pytest.raises(RungError, match="besides the"):
        check_fits(task, estimate, loaded=estimate.weights,
                   available=(estimate.total - estimate.weights - 1, where))


# --- early stopping and the diagnosis of a val loss creeping down by hairs ----------------


def test_early_stopping_counts_an_improvement_under_flat_as_none() -> None:
    from rung.finetune.schedule import early_stopping

    def readings(values: list[float]) -> list[int]:
        callback = early_stopping(2)
        counts = []
        for value in values:
            callback.check_metric_value(None, None, None, value)
            counts.append(callback.early_stopping_patience_counter)
        return counts

    creeping = [1.0, 0.9995, 0.999, 0.9985]  # each a new best, by hairs
    assert readings(creeping) == [0, 1, 2, 3]
    assert readings([1.0, 0.95, 0.9, 0.85]) == [0, 0, 0, 0]  # real improvements reset
    # small steps that add up to more than FLAT of the last real improvement count
    assert readings([1.0, 0.995, 0.988, 0.986]) == [0, 1, 0, 1]
    callback = early_stopping(2)
    callback.check_metric_value(None, None, None, 0.5)
    assert callback.state()["attributes"]["reference"] == 0.5  # travels with a checkpoint
    assert callback.early_stopping_threshold == FLAT
    assert type(callback).__name__ == "EarlyStoppingCallback"


def test_a_run_reads_val_loss_often_enough_for_early_stopping_to_fire() -> None:
    from rung.finetune.schedule import evaluation_steps, evaluations

    assert evaluations(1, 2) == 4  # twice an epoch would be 2: patience 2 could never fire
    assert evaluations(3, 2) == 6 and evaluations(1, 5) == 7
    for steps in range(1, 80):
        for wanted in range(2, 9):
            every = evaluation_steps(steps, wanted)
            assert math.ceil(steps / every) >= min(wanted, steps), (steps, wanted)


def test_one_epoch_with_default_schedule_can_stop_early(task_dir: Path,
                                                         tiny_llama: Path) -> None:
    """One epoch of 4 steps, patience 2, train saying BILLING to val's BUG: val loss is
    read every step, not twice (which could never show 2 worse readings after a best), so
    the run stops once 2 readings have not improved on the best by FLAT."""
    from rung.finetune.train import fine_tune

    task = load_task(write_task(task_dir, model=str(tiny_llama), extra=finetune_table(
        rank=4, alpha=8, epochs=1, batch_size=4, gradient_accumulation=1)))
    tune = fine_tune(task, _pipeline(tiny_llama, task_dir), _tickets(16),
                     _tickets(2, "BUG", 50), task_dir / "out")
    evaluated = [c["step"] for c in tune.curves if "eval_loss" in c]
    assert evaluated == list(range(1, tune.steps + 1))
    assert tune.stopped_early and tune.steps < 4


def test_val_loss_creeping_down_by_hairs_while_train_falls_is_memorisation() -> None:
    """Each evaluation a new best by 0.05%: judged from its best on (the last), nothing
    followed it; judged from where val loss came within FLAT of it, it was flat throughout."""
    train = [2.0 - 0.03 * i for i in range(60)]
    creeping = [1.0, 0.9995, 0.999, 0.9985, 0.998, 0.9975]
    [signal] = diagnose(train, creeping)
    assert signal.name == "memorisation" and signal.fix == "early stopping"
    assert "after evaluation 1" in signal.evidence
    assert diagnose(train, creeping, stopped_early=True) == []
    # a val loss still falling by more than FLAT between readings is learning, not flat
    assert diagnose(train, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]) == []


# --- precision: full fine-tuning keeps fp32 master weights on a GPU -----------------------


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "prefix", "prompt-tuning", "dpo"])
@pytest.mark.parametrize("half", ["bf16", "fp16", None])
def test_full_fine_tuning_on_a_gpu_is_mixed_precision(method: str, half: str | None) -> None:
    """`half`: the GPU's compute dtype (None: a CPU). A GPU without bf16 in hardware (T4,
    V100: torch's is_bf16_supported() says True there, by emulation) computes in fp16."""
    from rung.finetune.methods import precision

    chosen = precision(method, half)
    if half is None:
        assert (chosen.weights, chosen.autocast, chosen.master_weights) == ("fp32", None, False)
        assert not chosen.bf16 and not chosen.fp16
    elif method == "full":  # fp32 weights under autocast: updates of ~lr do not round away
        assert (chosen.weights, chosen.autocast, chosen.master_weights) == ("fp32", half, True)
    else:  # a frozen base in the half dtype
        assert (chosen.weights, chosen.autocast, chosen.master_weights) == (half, half, False)
    assert chosen.bf16 == (half == "bf16") and chosen.fp16 == (half == "fp16")
    # adapters: fp32 as PEFT makes them; QLoRA's bf16 under bf16, as TRL casts them; fp32
    # under fp16, where the loss scaler refuses half-precision gradients
    assert chosen.adapters == ("bf16" if method == "qlora" and half == "bf16" else "fp32")


def test_a_gpu_computes_in_bf16_only_where_its_hardware_has_it() -> None:
    from rung.finetune.device import GpuFacts, compute_dtype

    a100 = GpuFacts(capability=(8, 0), bf16_native=True, flash_attn_2=True)
    t4 = GpuFacts(capability=(7, 5), bf16_native=False, flash_attn_2=False)
    assert compute_dtype(a100) == "bf16" and compute_dtype(t4) == "fp16"
    assert compute_dtype(None) is None  # a CPU: fp32


def test_under_fp16_every_trainable_weight_is_fp32_so_the_loss_scaler_takes_it() -> None:
    """fp16 mixed precision scales the loss and unscales the gradients before the step, and
    torch's scaler refuses fp16 gradients: a prompt tuned from fp16 embeddings, or a QLoRA
    adapter TRL cast to bf16, must be fp32 first; the frozen base stays in fp16."""
    import torch

    from rung.finetune.trainer import trainable_in_fp32

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)).half()
    model[0].requires_grad_(False)
    model[1].weight.data = model[1].weight.data.bfloat16()

    def unscale() -> None:
        scaler = torch.amp.GradScaler("cpu")
        scaler.scale(torch.ones(()))  # as a training step scales its loss first
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        for p in model.parameters():
            p.grad = torch.ones_like(p) if p.requires_grad else None
        scaler.unscale_(optimizer)

    with pytest.raises(ValueError, match="unscale FP16 gradients"):
        unscale()
    assert trainable_in_fp32(model) == 2
    unscale()
    assert {p.dtype for p in model[1].parameters()} == {torch.float32}
    assert {p.dtype for p in model[0].parameters()} == {torch.float16}


def test_a_bf16_weight_would_round_full_fine_tuning_s_updates_away() -> None:
    """Why: at full's learning rate an AdamW step (~lr) is under half a bf16 step of a
    typical weight (0.02), so in bf16 it rounds to nothing; fp32 keeps it."""
    import torch

    weight, update = torch.tensor(0.02), 2e-5
    assert (weight.bfloat16() + update).item() == weight.bfloat16().item()
    assert (weight + update).item() != weight.item()


# --- the seeds' batch range is the effective batch -----------------------------------------


def test_the_seeds_batch_range_judges_the_effective_batch() -> None:
    from rung.finetune.methods import unusual_settings

    def batch_notes(**settings: object) -> list[str]:
        world = settings.pop("world_size", 1)
        return [u for u in unusual_settings(FineTuneTable(**settings), max_seq_length=2048,
                                            world_size=world) if "batch" in u]

    assert batch_notes() == []  # 4 x 4 = 16
    assert batch_notes(batch_size=2, gradient_accumulation=4) == []  # 8: inside 4-32
    assert batch_notes(batch_size=16, gradient_accumulation=4) == [
        "effective batch = batch_size 16 x gradient_accumulation 4 = 64 (the seeds' typical "
        "range is 4 to 32)"]
    [many] = batch_notes(batch_size=4, gradient_accumulation=4, world_size=4)
    assert "x 4 devices = 64" in many
