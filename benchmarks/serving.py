"""What the benchmarks that start a server share: wait until it answers."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_until_serving(url: str, process: subprocess.Popen, log: str,
                       timeout_s: float = 300) -> None:
    """Until `url` answers; SystemExit naming the log if the server exits or is too slow."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"the server at {url} did not start; see {log}") from None
            time.sleep(0.5)
