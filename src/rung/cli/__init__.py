"""The `rung` command: parse, call the library, print. No logic lives here.

The commands live by family: climbing (climb, eval, runs), data (audit, convert, index, ask),
tuning (tune, export, estimate), serving (serve, review) and checking (check, compare, gate,
report), with what they all use in shared. This module builds the app from them and holds
main, the entry point (`rung = "rung.cli:main"`)."""

from __future__ import annotations

import warnings

import typer

from rung.cli import checking, climbing, data, serving, tuning
from rung.cli.shared import fail

app = typer.Typer(help="Climb the adaptation ladder on your own data before you fine-tune.",
                  no_args_is_help=True, add_completion=False)

# Typer lists commands in the order they are added: this is the order of `rung --help`
app.command()(climbing.climb)
app.command("eval")(climbing.eval_rung)
app.command()(climbing.runs)
app.command()(data.audit)
app.command()(data.index)
app.command()(data.ask)
app.command()(tuning.tune)
app.command()(tuning.export)
app.command()(serving.serve)
app.command()(checking.check)
app.command()(checking.compare)
app.command()(checking.gate)
app.command()(serving.review)
app.command()(checking.report)
app.command()(tuning.estimate)
app.command()(data.convert)


def main() -> None:
    """The `rung` entry point: the app, with a last handler for a failure while printing a
    result (past every command's own)."""
    # Deprecation and version notices from the libraries underneath (transformers, peft, trl,
    # torch) are for rung's developers, not for its users: nothing a user types changes them.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft|trl|torch|"
                            r"accelerate|sentence_transformers|sklearn)\b")
    try:
        app()
    except Exception as e:  # noqa: BLE001 - printing the result failed, past the handler
        try:
            fail(e)
        except typer.Exit as code:
            raise SystemExit(code.exit_code) from None
