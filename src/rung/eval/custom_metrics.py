"""Metrics from the user's own code: `module:function` or `path/to/file.py:function`.

A team's notion of "right" is often domain-specific (a tolerance on amounts, a rubric), so
rung.toml may name a function; it is loaded and probed when the task is read, so a broken
reference fails before any model runs, with the reference and the fix in the message.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers
import re
import sys
from pathlib import Path
from typing import Any

from rung.errors import ConfigError
from rung.eval.metric_spec import KINDS, MetricSpec

def _custom_error(ref: str, message: str, fix: str) -> ConfigError:
    return ConfigError(f"custom metric {ref!r}: {message}", fix=fix)


# a file's module by (resolved path, modification time, size): each evaluation resolves the metric
# again, and running the user's file anew each time repeats whatever it does on import
_LOADED: dict[tuple[str, int, int], Any] = {}

# what the function is tried on when loaded: an answer equal to the reference, and an empty
# answer and reference, which a format failure or a failed request passes it as ""
PROBES = (("a", "a"), ("a", ""), ("", ""))


def _load_file(ref: str, path: Path) -> Any:
    if not path.is_file():
        raise _custom_error(ref, f"file {path} not found",
                            "give the path to a .py file, relative to the folder of rung.toml or absolute")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _LOADED:
        return _LOADED[key]
    name = "rung_custom_metric_" + re.sub(r"\W", "_", str(path.resolve()))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _custom_error(ref, f"{path} cannot be loaded as a Python module",
                            "give the path to a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so dataclasses and pickling inside the file work
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise _custom_error(ref, f"running {path} failed: {type(err).__name__}: {err}",
                            f"fix the error in {path} (run `python {path}` to see it)") from None
    _LOADED[key] = module
    return module


def _load_module(ref: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise _custom_error(
                ref, f"module {module_name!r} not found",
                "install the module or put its folder on PYTHONPATH, or refer to the file "
                "itself as path/to/file.py:function",
            ) from None
        raise _custom_error(ref, f"importing {module_name!r} failed: {err}",
                            f"install {missing!r}, which {module_name!r} imports") from None
    except Exception as err:
        raise _custom_error(ref, f"importing {module_name!r} failed: {type(err).__name__}: {err}",
                            f"fix the error in {module_name!r}") from None


def _score_value(ref: str, value: Any, probe: tuple[str, str] | None = None) -> float:
    import numpy as np

    if not isinstance(value, (bool, np.bool_, numbers.Real)):
        when = f" when probed with {probe!r}" if probe else ""
        raise _custom_error(ref, f"returned {type(value).__name__} {value!r}{when}, not a number",
                            "return a float in [0, 1] or a bool")
    score = float(value)
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        raise _custom_error(ref, f"returned {score}, outside [0, 1]",
                            "return a float in [0, 1] (scale the score) or a bool")
    return score


def load_custom_metric(ref: str, *, base_dir: Path | None = None) -> MetricSpec:
    """A metric from user code: `ref` is "module:function" (an importable module) or
    "path/to/file.py:function" (relative to `base_dir`, default the current folder).

    The function takes (expected, predicted) and returns a float in [0, 1] or a bool. It is
    probed on PROBES so a broken reference, or one an empty answer breaks, fails at
    configuration time rather than after the model has answered every example. It fits every
    task kind; it is binary (McNemar applies) only if it has an attribute `binary = True`.
    """
    target, sep, func_name = ref.rpartition(":")
    if not sep or not target or not func_name:
        raise _custom_error(ref, "not of the form module:function or path/to/file.py:function",
                            'write e.g. "my_metrics:overlap" or "metrics.py:overlap"')
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = (base_dir if base_dir is not None else Path.cwd()) / path
        module = _load_file(ref, path)
    else:
        module = _load_module(ref, target)

    if not hasattr(module, func_name):
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__)
        raise _custom_error(ref, f"{target} has no function {func_name!r}",
                            f"use one of: {', '.join(defined)}" if defined
                            else f"define def {func_name}(expected, predicted) -> float in {target}")
    fn = getattr(module, func_name)
    if not callable(fn):
        raise _custom_error(ref, f"{func_name!r} in {target} is a {type(fn).__name__}, not a function",
                            f"make {func_name} a function (expected, predicted) -> float")
    for probe in PROBES:
        try:
            probed = fn(*probe)
        except Exception as err:
            raise _custom_error(ref, f"raised {type(err).__name__}: {err} when probed with "
                                f"{probe!r}", "make it accept two strings (expected, predicted), "
                                "either of them empty, and return a float in [0, 1]") from None
        _score_value(ref, probed, probe)

    def per_example(expected: str, predicted: str) -> float:
        # the user's code failing is the user's to fix, not "an internal error in rung"
        try:
            value = fn(expected, predicted)
        except Exception as err:
            raise _custom_error(
                ref, f"raised {type(err).__name__}: {err} on (expected, predicted) = "
                f"({_shown(expected)}, {_shown(predicted)})",
                f"make {func_name} in {target} return a float in [0, 1] for every pair of "
                "strings, empty ones included, or name another in rung.toml's [task] metric"
            ) from None
        return _score_value(ref, value)

    doc = inspect.getdoc(fn)
    return MetricSpec(
        name=ref,
        kinds=KINDS,
        per_example=per_example,
        description=doc.splitlines()[0] if doc else f"custom metric {ref}",
        binary=getattr(fn, "binary", False) is True,
    )


def _shown(text: str, limit: int = 60) -> str:
    """A text for an error message: quoted, and cut where a long answer would bury the rest."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


# --------------------------------------------------------------------------- failure breakdown
