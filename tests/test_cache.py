"""A re-run of the same climb is answered from the run store; anything that changes the
prompt, the parameters or the weights is asked again."""


from conftest import write_task
from rung.climb import climb
from rung.data.example import Message
from rung.models.cache import CachedModel
from rung.store import Store


def _rule(prompt):
    return "BUG" if "bug" in prompt[-1].content else None


def test_second_climb_makes_no_model_calls(task_dir, fake_model):
    fake_model.rule = _rule
    first = climb(write_task(task_dir)).summary()
    calls_first = len(fake_model.calls)
    assert calls_first > 0
    second = climb(task_dir).summary()
    assert len(fake_model.calls) == calls_first, "every response should come from the cache"
    assert [r["score"] for r in second["rungs"]] == [r["score"] for r in first["rungs"]]
    # latency was measured once and is reported again, not re-measured on cache hits
    assert [r["latency_ms"] for r in second["rungs"]] == [r["latency_ms"] for r in first["rungs"]]


def test_a_changed_instruction_asks_again_and_no_cache_bypasses(task_dir, fake_model):
    toml = write_task(task_dir)
    climb(toml)
    n = len(fake_model.calls)
    toml.write_text(toml.read_text().replace("Classify the ticket", "Label the ticket"))
    climb(toml)
    assert len(fake_model.calls) > n
    n = len(fake_model.calls)
    climb(toml, use_cache=False)
    assert len(fake_model.calls) > n


def test_cached_scores_equal_fresh_ones_and_weights_change_the_key(tiny_llama, tmp_path):
    store = Store(tmp_path / ".rung")
    cache = store.response_cache()
    model = CachedModel(str(tiny_llama), cache)
    prompts = [[Message("user", f"ticket {i}")] for i in range(4)]
    fresh = model.score_choices(prompts, ["BUG", "BILLING"])
    assert (cache.hits, cache.misses) == (0, 4)
    again = model.score_choices(prompts[:2] + [[Message("user", "new")]], ["BUG", "BILLING"])
    assert (cache.hits, cache.misses) == (2, 5)
    assert again[:2] == fresh[:2]
    generated = model.generate(prompts[:1], max_new_tokens=3)
    assert model.generate(prompts[:1], max_new_tokens=3) == generated
    assert model.generate(prompts[:1], max_new_tokens=4) is not None and cache.misses == 7
    other = CachedModel(str(tiny_llama), cache)
    other._fingerprint = "different-weights"
    other.score_choices(prompts[:1], ["BUG", "BILLING"])
    assert cache.misses == 8
    store.close()


def test_fully_cached_run_never_loads_the_model(tiny_llama, tmp_path):
    store = Store(tmp_path / ".rung")
    prompts = [[Message("user", "hello")]]
    CachedModel(str(tiny_llama), store.response_cache()).score_choices(prompts, ["A", "B"])
    cold = CachedModel(str(tiny_llama), store.response_cache())
    cold.score_choices(prompts, ["A", "B"])
    assert cold._inner is None
    store.close()
