"""Commands on the data and the corpus, before anything is built: `rung audit` (is it fit to
train on), `rung convert` (between formats), `rung index` (the corpus's retrieval index) and
`rung ask` (one question through the rag pipeline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rung.cli.shared import check_choice, err, out, progress, user_errors
from rung.terminal import print_audit


def audit(
    path: Path = typer.Argument(..., help="a data file, or rung.toml / its folder"),
    as_json: bool = typer.Option(False, "--json", help="print verdict and checks as JSON"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when the verdict is not ready"),
    fix: Optional[Path] = typer.Option(None, "--fix", metavar="OUT",
                                       help="write a cleaned copy (deduplicated, redacted; "
                                            "contradictions set aside) to OUT"),
    redact: bool = typer.Option(False, "--redact", help="write NAME.redacted.EXT beside the input"),
    kind: Optional[str] = typer.Option(None, help="classification, extraction or generation "
                                                  "(a data file's is inferred)"),
    model: Optional[str] = typer.Option(None, help="model whose tokenizer and context to check"),
    skip: list[str] = typer.Option([], "--skip", help="a check not to run (repeatable)"),
    force: bool = typer.Option(False, "--force", help="replace files --fix or --redact would "
                               "write that exist already (never the input)"),
) -> None:
    """Check a dataset against the seeds' data-quality checklist before anyone trains on it."""
    from rung.data.audit.fix import companion, fixed_paths, write_fixed, write_redacted
    from rung.data.audit.report import CHECKS, audit_dataset, data_file
    from rung.files import claim

    with user_errors():
        check_choice("--kind", kind, ("classification", "extraction", "generation"))
        for name in skip:
            check_choice("--skip", name, CHECKS)
        source = data_file(path)
        targets = (list(fixed_paths(fix)) if fix is not None else []) + (
            [companion(source, "redacted")] if redact else [])
        claim(targets, inputs=[source], force=force)  # before the audit's work, not after
        with progress(not as_json) as reporter:
            report, examples = audit_dataset(path, kind=kind, model=model, skip=tuple(skip),
                                             reporter=reporter)
        summary = report.to_dict()
        if fix is not None:
            summary["fix"] = write_fixed(report, examples, fix, force=force)
        if redact:
            target = companion(source, "redacted")
            summary["redacted"] = {"output": str(target), "changed": write_redacted(
                report, examples, target, force=force)}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_audit(out, summary)
    if strict and summary["verdict"] == "not ready":
        raise typer.Exit(1)


def index(
    path: Path = typer.Argument(Path("."), help="rung.toml or its folder (with [task] corpus)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build or refresh the corpus index: only added, changed or deleted documents are touched."""
    from rung.rag.service import index_task

    with user_errors(), progress(not as_json) as reporter:
        report = index_task(path, reporter)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    out.print(f"indexed: {len(report.added)} added, {len(report.changed)} changed, "
              f"{len(report.removed)} removed, {report.unchanged} unchanged; {report.chunks} chunks "
              f"({report.chunks_embedded} embedded now)", highlight=False)
    for problem in report.problems:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False)
    if report.chunks == 0:
        err.print("[yellow]warning:[/] the index is empty: the corpus folder has no document "
                  "with text (.md, .txt, .html, .pdf), so retrieval has nothing to find",
                  highlight=False)


def ask(
    path: Path = typer.Argument(..., help="rung.toml or its folder (with [task] corpus)"),
    question: str = typer.Argument(..., help="the question to answer"),
    method: Optional[str] = typer.Option(None, help="bm25, dense or hybrid (default: the "
                                                    "last climb's choice, else hybrid)"),
    k: Optional[int] = typer.Option(None, min=1, help="chunks to retrieve (default: as "
                                    "chosen)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer one question through the rag pipeline and show the sources it used."""
    from rung.rag.service import ask as ask_question

    with user_errors():
        if method is not None:
            check_choice("--method", method, ("bm25", "dense", "hybrid"))
        answer = ask_question(path, question, method=method, k=k)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    out.print(answer["answer"], highlight=False, markup=False)
    out.print(f"[dim]{answer['method']}, k={answer['k']}, {answer['pipeline']}[/]")
    for number, source in enumerate(answer["sources"], 1):
        # characters of the file for Markdown and text; HTML and PDF are cited by section
        span = (f"  chars {source['start']}-{source['end']}"
                if source.get("span_in_file", True) else "")
        out.print(f"  [{number}] {source['citation']}{span}",
                  highlight=False, markup=False)


def convert(
    src: Path = typer.Argument(..., help="input data file (format auto-detected)"),
    dst: Path = typer.Argument(..., help="output file"),
    to: str = typer.Option(..., "--to", help="openai, anthropic, alpaca, sharegpt, csv, "
                           "input-output, prompt-completion or text-label"),
    source_format: Optional[str] = typer.Option(None, "--from", help="skip auto-detection"),
    force: bool = typer.Option(False, "--force", help="replace DST if it exists (never SRC)"),
) -> None:
    """Convert examples between formats; the input is never modified."""
    from rung.data.formats import FORMATS, read_examples, write_examples
    from rung.files import claim

    with user_errors():
        check_choice("--to", to, FORMATS)
        check_choice("--from", source_format, FORMATS)
        claim([dst], inputs=[src], force=force)
        examples = read_examples(src, source_format)
        write_examples(examples, dst, to)
    err.print(f"wrote {len(examples)} example{'' if len(examples) == 1 else 's'} to {dst} "
              f"({to})")
