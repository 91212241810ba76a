"""The cost arithmetic on the seeds' prices, and the break-even volume."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rung.costs import CostsTable, break_even, serving_cost, training_cost


def test_defaults_are_the_seeds_prices() -> None:
    prices = CostsTable()
    assert prices.api["gpt-4o-mini"].train_per_million == 3.00
    assert (prices.api["gpt-4o"].input_per_million, prices.api["gpt-4o"].output_per_million) == (3.75, 15.00)
    assert prices.gpu_hour == 0.50 and prices.self_hosted_per_million == 0.20


def test_training_cost_from_tokens_and_measured_throughput() -> None:
    cost = training_cost(3_600_000, tokens_per_second=1000, prices=CostsTable())
    assert cost.hours == pytest.approx(1.0) and cost.self_hosted == pytest.approx(0.50)
    assert cost.api["gpt-4o-mini"] == pytest.approx(10.80)  # 3.6M x $3 / 1M
    assert cost.upkeep_hours_per_quarter == 12  # 3 retrains x 4 h
    assert cost.upkeep_per_quarter == pytest.approx(3 * 0.50 + 12 * 100)
    on_cpu = training_cost(3_600_000, tokens_per_second=1000, prices=CostsTable(), device="cpu")
    assert (on_cpu.device, on_cpu.hour_price, on_cpu.self_hosted) == ("cpu", 0.10, 0.10)


def test_serving_cost_per_million_requests() -> None:
    prices = CostsTable()
    assert serving_cost(500, 5, prices) == pytest.approx(505 * 0.20)
    assert serving_cost(500, 5, prices, api="gpt-4o-mini") == pytest.approx(500 * 0.60 + 5 * 2.40)


def test_break_even_volume() -> None:
    # tuned: $20 per 1M requests; prompted: $120; build $500 + upkeep $700 a quarter
    point = break_even(20, 120, build=500, upkeep_per_quarter=700)
    assert point.requests_per_quarter == pytest.approx(1200 / (100 / 1e6))  # 12M requests
    assert break_even(120, 20, build=500, upkeep_per_quarter=0).requests_per_quarter is None


def test_prices_are_overridable_and_checked() -> None:
    prices = CostsTable.model_validate({"gpu_hour": 2.1, "api": {"mine": {
        "train_per_million": 1, "input_per_million": 0.1, "output_per_million": 0.4}}})
    assert prices.gpu_hour == 2.1 and list(prices.api) == ["mine"]
    with pytest.raises(ValidationError):
        CostsTable.model_validate({"gpu_hour": -1})


def test_a_rung_s_costs_from_its_measured_summary() -> None:
    from rung.costs import rung_costs

    summary = {"tokens_in": 500.0, "tokens_per_request": 503.0,
               "training": {"train_tokens": 360_000, "tokens_per_second": 100.0}}
    costs = rung_costs(summary, CostsTable())
    serving = costs["serving_per_million_requests"]
    assert serving["self_hosted"] == pytest.approx(503 * 0.20)
    assert serving["gpt-4o-mini"] == pytest.approx(500 * 0.60 + 3 * 2.40)
    assert costs["training"]["hours"] == pytest.approx(1.0)
    assert costs["training"]["api"]["gpt-4o"] == pytest.approx(0.36 * 25)
    assert "training" not in rung_costs({"tokens_in": 5.0, "tokens_per_request": 6.0}, CostsTable())


def test_prices_come_from_rung_toml(task_dir) -> None:
    from conftest import write_task
    from rung.task import load_task

    task = load_task(write_task(task_dir, extra="\n[costs]\ngpu_hour = 2.5\nhours_per_retrain = 1\n"))
    assert task.costs.gpu_hour == 2.5 and task.costs.api["gpt-4o-mini"].train_per_million == 3.0


def test_memory_a_rung_needs_to_serve_and_to_train() -> None:
    from rung.costs import rung_memory
    from rung.finetune.memory import llama_shape, serving_memory

    # SmolLM2-135M's shape: 30 layers, 3 KV heads of 64
    shape = llama_shape(30, 576, 1536, 9, 3, 49152, True)
    per_token_kv = 2 * 30 * 3 * 64 * 2  # K and V, every layer, bf16
    assert serving_memory(shape, 500) == shape.parameters * 2 + 500 * per_token_kv
    memory = rung_memory({"model": "no-such-model", "tokens_per_request": 500, "training": {
        "peak_memory": {"estimate": {"total": 6_000}, "measured": {"peak_bytes": 5_000}}}})
    assert memory == {"serving_bytes": None, "training_estimate_bytes": 6_000,
                      "training_measured_bytes": 5_000}


def test_a_data_parallel_tune_is_priced_for_every_gpu_it_ran_on() -> None:
    """The tune's token count is gathered across processes, so its tokens/s is all GPUs'
    together: an hour of wall clock on 4 GPUs is 4 GPU-hours."""
    from rung.costs import rung_costs, tune_economics

    training = {"train_tokens": 3_600_000, "tokens_per_second": 1000.0, "world_size": 4,
                "device": "gpu"}
    summary = {"tokens_in": 500.0, "tokens_per_request": 503.0, "training": training}
    assert rung_costs(summary, CostsTable())["training"]["self_hosted"] == pytest.approx(4 * 0.50)
    economics = tune_economics({**summary, "tokens_out": 3.0},
                               {"rung": "prompt", "tokens_in": 900.0, "tokens_out": 3.0},
                               CostsTable())
    assert (economics["build"], economics["build_hours"], economics["devices"]) == (2.0, 4.0, 4)
    cost = training_cost(3_600_000, tokens_per_second=1000, prices=CostsTable(), world_size=4)
    assert (cost.wall_hours, cost.hours, cost.devices) == (pytest.approx(1.0), pytest.approx(4.0), 4)
    # a record from before the world size was kept: one GPU
    del training["world_size"]
    assert rung_costs(summary, CostsTable())["training"]["self_hosted"] == pytest.approx(0.5)
