"""What each rung costs to build, to keep and to serve, from measured tokens and throughput.

Prices default to the seeds' cost table and can be overridden under [costs] in rung.toml:
OpenAI fine-tuning (GPT-4o-mini FT $3.00 per 1M training tokens, $0.60 / $2.40 per 1M tokens
in / out; GPT-4o FT $25.00, $3.75 / $15.00) and Together.ai's Llama 8B (an A100 at ~$0.50 an
hour, ~$0.20 per 1M tokens served). What each figure is, said plainly:

* The in / out prices are the seeds' rates for the *fine-tuned* models. The seeds give no
  rate for the base models, so a prompted pipeline on gpt-4o-mini is priced at the same
  rate as its tune (the base model's list price is lower: set [costs.api.MODEL]
  input_per_million / output_per_million to it); the break-even then compares tokens only.
* `self_hosted_per_million` is Together.ai's hosted price for an 8B model, which the seeds
  list beside "self-hosted: GPU cost only"; it stands for serving any model size yourself
  until you set your own.
* `person_hour` ($100) and `hours_per_retrain` (4) are rung's assumptions, not the seeds':
  the seeds say upkeep is the cost people forget and give no figure. Upkeep follows their
  warning that a tune must be redone whenever a better base model ships, "roughly monthly":
  `retrains_per_quarter` times the training cost plus `hours_per_retrain` of a person's time.

The break-even is the seeds' "narrow, high-volume task": a small tuned model costs more to
build but less per request than a bigger prompted one; past some volume it is cheaper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_per_million: float = Field(ge=0)
    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class CostsTable(BaseModel):
    """[costs] in rung.toml; the defaults are the seeds' cost table where it has a figure
    (see the module docstring for what each one is) and rung's stated assumptions where it
    has none (cpu_hour, retrains' person-hours)."""

    model_config = ConfigDict(extra="forbid")
    gpu_hour: float = Field(default=0.50, ge=0)  # one A100, self-hosted or rented
    self_hosted_per_million: float = Field(default=0.20, ge=0)  # tokens served, in and out
    api: dict[str, ApiPrice] = Field(default_factory=lambda: {
        "gpt-4o-mini": ApiPrice(train_per_million=3.00, input_per_million=0.60,
                                output_per_million=2.40),
        "gpt-4o": ApiPrice(train_per_million=25.00, input_per_million=3.75,
                           output_per_million=15.00)})
    # a CPU server hour for a classifier (rung 0), which needs no GPU: not a seeds' figure; a
    # 2-vCPU cloud instance (AWS c7i.large) lists at about $0.09 an hour
    cpu_hour: float = Field(default=0.10, ge=0)
    retrains_per_quarter: float = Field(default=3.0, ge=0)  # a better base model ~monthly
    hours_per_retrain: float = Field(default=4.0, ge=0)  # rerun, review, ship: rung's guess
    person_hour: float = Field(default=100.0, ge=0)  # rung's assumption, not the seeds'
    # minutes a person takes to write or check one labelled example: the seeds call labelled
    # data "the hidden boss" of the bill and give no rate, so it is unpriced until set
    label_minutes_per_example: float | None = Field(default=None, gt=0)


@dataclass(frozen=True)
class TrainingCost:
    tokens: int  # training tokens actually seen (all epochs, all processes)
    hours: float  # device-hours (GPU-hours): wall-clock hours x the devices it ran on
    self_hosted: float  # hours x the hourly price of the device it was measured on
    api: dict[str, float]  # the same tokens at each API's fine-tuning price
    upkeep_per_quarter: float  # retrains plus the person-hours each one takes
    upkeep_hours_per_quarter: float
    device: str = "gpu"  # what the throughput was measured on: "gpu" or "cpu"
    hour_price: float = 0.0  # gpu_hour or cpu_hour
    devices: int = 1  # GPUs it trained on at once (data parallel); a CPU tune counts one
    wall_hours: float = 0.0  # hours from its first step to its last


def training_cost(tokens: int, tokens_per_second: float, prices: CostsTable,
                  device: str = "gpu", world_size: int = 1) -> TrainingCost:
    """Hours at the throughput measured on `device`, priced at that device's hour: CPU hours
    at an A100's price would overstate a CPU tune five times, and a CPU's price would
    understate a GPU's. (A record from before the device was kept counts as a GPU's.)

    `tokens` and `tokens_per_second` are the launch's: the tokens are gathered across its
    `world_size` processes, so the rate is all GPUs' together and tokens / rate is wall-clock
    time, during which every one of the GPUs is paid for. The processes of a CPU launch
    share one server, which `cpu_hour` prices whole."""
    wall = tokens / tokens_per_second / 3600 if tokens_per_second > 0 else 0.0
    devices = 1 if device == "cpu" else max(1, int(world_size or 1))
    hours = wall * devices
    hour_price = prices.cpu_hour if device == "cpu" else prices.gpu_hour
    self_hosted = hours * hour_price
    person = prices.retrains_per_quarter * prices.hours_per_retrain
    return TrainingCost(
        device="cpu" if device == "cpu" else "gpu", hour_price=hour_price,
        devices=devices, wall_hours=wall,
        tokens=tokens, hours=hours, self_hosted=self_hosted,
        api={name: tokens / 1e6 * p.train_per_million for name, p in prices.api.items()},
        upkeep_per_quarter=prices.retrains_per_quarter * self_hosted + person * prices.person_hour,
        upkeep_hours_per_quarter=person)


def serving_cost(tokens_in: float, tokens_out: float, prices: CostsTable,
                 api: str | None = None) -> float:
    """Dollars per million requests of `tokens_in` + `tokens_out` each: self-hosted at the
    per-token price, or at an API's in/out prices."""
    if api is None:
        return (tokens_in + tokens_out) * prices.self_hosted_per_million
    p = prices.api[api]
    return tokens_in * p.input_per_million + tokens_out * p.output_per_million


def cpu_serving_cost(latency_samples_ms: list[float], prices: CostsTable) -> float | None:
    """Dollars per million requests of a model that runs on a CPU (the classifier): the mean
    measured single-request time, one request at a time, at `cpu_hour`. Unbatched, so an
    upper bound. None without timed requests ([eval] latency_samples = 0)."""
    if not latency_samples_ms:
        return None
    seconds = sum(latency_samples_ms) / len(latency_samples_ms) / 1000
    return round(seconds * 1e6 / 3600 * prices.cpu_hour, 6)


def labelling_cost(examples: int, prices: CostsTable) -> dict[str, Any]:
    """Person-hours and dollars to label `examples` more at `label_minutes_per_example` and
    `person_hour`; both None while the rate is unset."""
    minutes = prices.label_minutes_per_example
    hours = None if minutes is None else examples * minutes / 60
    return {"examples": examples, "minutes_per_example": minutes,
            "person_hours": None if hours is None else round(hours, 2),
            "dollars": None if hours is None else round(hours * prices.person_hour, 2)}


@dataclass(frozen=True)
class BreakEven:
    tuned_per_million: float  # serving cost per million requests
    prompted_per_million: float
    fixed_per_quarter: float  # the tune's build cost spread over a quarter, plus upkeep
    requests_per_quarter: float | None  # None: the tuned model is never cheaper

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def break_even(tuned_per_million: float, prompted_per_million: float, build: float,
               upkeep_per_quarter: float) -> BreakEven:
    """Requests a quarter from which the tuned model's lower serving cost has paid for its
    build (counted in the first quarter) and its upkeep."""
    fixed = build + upkeep_per_quarter
    saving = (prompted_per_million - tuned_per_million) / 1e6  # per request
    volume = fixed / saving if saving > 0 else None
    return BreakEven(tuned_per_million, prompted_per_million, fixed, volume)


def tune_economics(tuned: dict[str, Any], prompted: dict[str, Any],
                   prices: CostsTable) -> dict[str, Any] | None:
    """What a measured tune costs to build and keep, and the volume from which serving it
    self-hosted beats serving the best prompted pipeline, self-hosted or on each API in the
    price table (a bigger model: the seeds' narrow, high-volume case). Each argument holds a
    rung's name, mean tokens in and out and (the tune) its training record; None when the
    tune's throughput was not measured."""
    training = tuned.get("training") or {}
    if not training.get("tokens_per_second"):
        return None
    cost = _training_cost(training, prices)
    tuned_serving = serving_cost(tuned["tokens_in"], tuned["tokens_out"], prices)
    versus = {name or "self_hosted": break_even(
        tuned_serving, serving_cost(prompted["tokens_in"], prompted["tokens_out"], prices, api=name),
        build=cost.self_hosted, upkeep_per_quarter=cost.upkeep_per_quarter).to_dict()
        for name in (None, *prices.api)}
    return _rounded({"prompted": prompted["rung"], "build": cost.self_hosted,
                     "build_hours": cost.hours, "hour_price": cost.hour_price,
                     "device": cost.device, "devices": cost.devices,
                     "build_wall_hours": cost.wall_hours,
                     "build_api": cost.api, "upkeep_per_quarter": cost.upkeep_per_quarter,
                     "upkeep_hours_per_quarter": cost.upkeep_hours_per_quarter,
                     "break_even": versus})


def rung_memory(summary: dict[str, Any], base_dir: Any = None) -> dict[str, Any]:
    """The memory a rung needs: to serve one request of its measured tokens (weights in bf16
    plus KV cache) and, for a tune, training's estimated and measured peak. A model whose
    shape cannot be read (a remote API, a fake in tests) has no serving figure."""
    from rung.errors import RungError
    from rung.finetune.memory import serving_memory, shape_for

    if summary.get("rung") == "classifier":  # what loading it took, measured when it was saved
        from rung.models.classifier import serving_bytes

        return {"serving_bytes": serving_bytes(summary["model"]),
                "training_estimate_bytes": None, "training_measured_bytes": None}
    try:
        serving: int | None = serving_memory(shape_for(summary["model"], base_dir=base_dir),
                                             summary["tokens_per_request"])
    except (RungError, OSError, KeyError, ValueError):
        serving = None
    peak = (summary.get("training") or {}).get("peak_memory") or {}
    return {"serving_bytes": serving,
            "training_estimate_bytes": (peak.get("estimate") or {}).get("total"),
            "training_measured_bytes": (peak.get("measured") or {}).get("peak_bytes")}


def rung_costs(summary: dict[str, Any], prices: CostsTable) -> dict[str, Any]:
    """A rung's costs from its measured summary: serving per million requests (self-hosted
    and at each API's prices, from its measured tokens in and out) and, for a fine-tune, the
    training run and its upkeep from the tokens it trained on at its measured throughput."""
    if summary.get("rung") == "classifier":
        return {"serving_per_million_requests": {
            "self_hosted": cpu_serving_cost(summary["latency_samples_ms"], prices)}}
    tokens_in, tokens_out = summary["tokens_in"], summary["tokens_per_request"] - summary["tokens_in"]
    costs: dict[str, Any] = {"serving_per_million_requests": {
        "self_hosted": round(serving_cost(tokens_in, tokens_out, prices), 2),
        **{name: round(serving_cost(tokens_in, tokens_out, prices, api=name), 2)
           for name in prices.api}}}
    training = summary.get("training")
    if training and training.get("tokens_per_second"):
        cost = _training_cost(training, prices)
        costs["training"] = _rounded(asdict(cost))
    return costs


def _training_cost(training: dict[str, Any], prices: CostsTable) -> TrainingCost:
    """From a tune's record (rung.finetune.record.TuneResult.summary); one from before the
    world size was kept trained on one device."""
    return training_cost(training["train_tokens"], training["tokens_per_second"], prices,
                         training.get("device", "gpu"), training.get("world_size") or 1)


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value
