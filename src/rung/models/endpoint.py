"""Where a remote model answers and how rung talks to it: a reference (`openai:MODEL`,
`anthropic:MODEL`), its settings from [models] in rung.toml, and its key.

Apart from the client (remote.py) because the task's validation, the registry, the dry run
and the token counter need to know what a remote reference is and where it goes without
anything that sends a request. Keys come only from the environment and are never written
down; `prepare` checks them all before any work, so a missing one fails the run at once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from rung.errors import ConfigError

BACKENDS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def is_remote(reference: str) -> bool:
    return reference.split(":", 1)[0] in BACKENDS and ":" in reference


@dataclass(frozen=True)
class Endpoint:
    """Where a remote model answers and how rung talks to it ([models] in rung.toml)."""

    backend: str  # openai | anthropic
    model: str
    base_url: str | None = None  # None: the SDK's own default (or OPENAI_BASE_URL)
    api_key_env: str = ""  # the variable holding the key; "" for a server that needs none
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 5
    max_error_rate: float = 0.05

    @classmethod
    def of(cls, reference: str, **settings: Any) -> "Endpoint":
        backend, model = reference.split(":", 1)
        if not model:
            raise ConfigError(f"'{reference}' names no model", fix=f"write {backend}:MODEL")
        return cls(backend=backend, model=model, **settings)

    @property
    def reference(self) -> str:
        return f"{self.backend}:{self.model}"

    @property
    def url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.backend == "openai" and os.environ.get("OPENAI_BASE_URL"):
            return os.environ["OPENAI_BASE_URL"].rstrip("/")
        return {"openai": "https://api.openai.com/v1",
                "anthropic": "https://api.anthropic.com"}[self.backend]

    @property
    def loopback(self) -> bool:
        return urlparse(self.url).hostname in {"127.0.0.1", "localhost", "::1"}

    def key(self) -> str | None:
        """The key from the environment; a server on this machine may need none."""
        value = os.environ.get(self.api_key_env) if self.api_key_env else None
        if value:
            return value
        if not self.api_key_env or self.loopback:
            return None
        raise ConfigError(
            f"{self.reference} needs an API key in the environment variable "
            f"{self.api_key_env}, which is not set",
            fix=f"export {self.api_key_env}=... (keys are read from the environment only), or "
                f"name another variable with [models.{self.backend}] api_key_env")

    @property
    def fingerprint(self) -> str:
        """The model's name at its server: answers cached from one server are not served
        for another. (A provider may change the model behind a name; pin a dated one.)"""
        text = f"{self.backend}|{self.model}|{self.url}"
        return f"{self.backend}-" + hashlib.sha256(text.encode()).hexdigest()[:16]


_ENDPOINTS: dict[str, Endpoint] = {}


def configure(endpoints: Sequence[Endpoint]) -> None:
    """Settings for the remote references a task names (rung.toml's [models]): later loads
    of those references use them."""
    for endpoint in endpoints:
        _ENDPOINTS[endpoint.reference] = endpoint


def endpoint_for(reference: str) -> Endpoint:
    if reference in _ENDPOINTS:
        return _ENDPOINTS[reference]
    endpoint = Endpoint.of(reference, api_key_env=BACKENDS[reference.split(":", 1)[0]])
    return endpoint


def prepare(endpoints: Sequence[Endpoint]) -> None:
    """Before any work: every key a task's remote models need is in the environment (a
    missing one is an error naming its variable), and their settings are in force."""
    from rung.models.registry import in_process

    for endpoint in endpoints:
        if in_process(endpoint.reference) is None:  # a stand-in (the dry run) needs no key
            endpoint.key()
    configure(endpoints)
