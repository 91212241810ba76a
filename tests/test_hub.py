"""The hub is named, never reached by accident: `hf:org/name` resolves to a snapshot in the
local Hugging Face cache, a mistyped path is an error rather than a download, downloads need
RUNG_ALLOW_DOWNLOADS=1, and a new revision is a new fingerprint (issue 14, finding 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rung.errors import ModelError
from rung.models.registry import fingerprint, load_model, resolve


def cached(hub: Path, repo: str, revision: str, sha: str, weights: Path) -> Path:
    """A model in a Hugging Face cache laid out as huggingface_hub writes it."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text(sha)
    snapshot = folder / "snapshots" / sha
    shutil.copytree(weights, snapshot)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(path))
    monkeypatch.delenv("RUNG_ALLOW_DOWNLOADS", raising=False)
    return path


def test_an_hf_model_resolves_to_its_cached_snapshot_and_loads_offline(hub, tiny_llama):
    snapshot = cached(hub, "acme/tiny", "main", "a" * 40, tiny_llama)
    ref = resolve("hf:acme/tiny")
    assert ref.location == str(snapshot.resolve()) and ref.name == "hf:acme/tiny"
    model = load_model("hf:acme/tiny")
    from rung.data.example import Message

    assert len(model.score_choices([[Message("user", "hi")]], ["A", "B"])[0].logprobs) == 2


def test_a_new_revision_is_a_new_fingerprint(hub, tiny_llama, tmp_path):
    cached(hub, "acme/tiny", "main", "a" * 40, tiny_llama)
    before = fingerprint("hf:acme/tiny")
    # the hub moved on: refs/main names a snapshot with other weights
    changed = tmp_path / "changed"
    shutil.copytree(tiny_llama, changed)
    weights = next(changed.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(64)
    weights.write_bytes(bytes(data))
    cached(hub, "acme/tiny", "main", "b" * 40, changed)
    assert resolve("hf:acme/tiny").location.endswith("b" * 40)
    assert fingerprint("hf:acme/tiny") != before
    (hub / "models--acme--tiny" / "refs" / "v1").write_text("a" * 40)
    assert resolve("hf:acme/tiny@v1").location.endswith("a" * 40)  # pinned: the old weights


def test_a_missing_hf_model_says_how_to_allow_the_download(hub):
    with pytest.raises(ModelError) as info:
        resolve("hf:acme/absent")
    assert "not in this machine's Hugging Face cache" in info.value.message
    assert "RUNG_ALLOW_DOWNLOADS=1" in info.value.fix


def test_a_mistyped_path_is_an_error_not_a_download(hub):
    with pytest.raises(ModelError) as info:
        resolve("modles/tiny")  # a typo of models/tiny, which does not exist either
    assert "no such model folder 'modles/tiny'" in info.value.message
    assert 'hf:modles/tiny' in info.value.fix
    with pytest.raises(ModelError, match="not a hub model name"):
        resolve("hf:just-a-name")


@pytest.mark.parametrize("allow, offline", [("", "1"), ("1", None)])
def test_the_hub_is_offline_unless_downloads_are_allowed(allow, offline):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",
                                                            "RUNG_ALLOW_DOWNLOADS")}
    env["RUNG_ALLOW_DOWNLOADS"] = allow
    code = "import os, rung; print(os.environ.get('HF_HUB_OFFLINE'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == str(offline)
