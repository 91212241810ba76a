"""The whole audit: planted problems found with the right rows, a clean dataset declared ready,
the CLI's --json/--strict/--fix/--redact, and the findings in the run store."""

from __future__ import annotations

import json
import random
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rung.cli import app
from rung.data.audit.report import audit_dataset, audit_input, infer_kind, run_audit
from rung.data.audit.size import size_check
from rung.data.example import make_example
from rung.data.formats import read_examples
from rung.store import Store, file_hash

runner = CliRunner()

TOPIC_WORDS = {
    "BILLING": "invoice refund charge payment receipt subscription plan price card coupon "
               "discount renewal tax statement balance".split(),
    "BUG": "crash error freeze blank timeout glitch broken stuck failing exception loop "
           "missing corrupted slow flicker".split(),
    "FEATURE": "wish suggest request add option toggle export shortcut theme widget "
               "integration filter template bulk preview".split(),
}
COMMON = ("yesterday morning team office laptop phone browser window screen folder report "
          "calendar project manager client colleague weekend meeting dashboard account "
          "workspace mobile desktop tablet inbox").split()


def clean_records(n_per_label: int = 60, seed: int = 0) -> list[dict]:
    """Distinct, varied, PII-free tickets: every input draws its own words."""
    rng = random.Random(seed)
    records = []
    for i in range(n_per_label):
        for label, words in TOPIC_WORDS.items():
            text = " ".join(rng.sample(words, 4) + rng.sample(COMMON, 5)) + f" case {i}"
            records.append({"messages": [{"role": "user", "content": text},
                                         {"role": "assistant", "content": label}]})
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def chat(user: str, label: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": label}]}


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """Clean tickets plus one of each problem; returns the file and the planted lines."""
    records = clean_records()
    base = {i + 1: r["messages"][0]["content"] for i, r in enumerate(records)}
    n = len(records)
    records.append(json.loads(json.dumps(records[2])))  # exact copy of line 3
    records.append(chat(base[5] + " please", records[4]["messages"][1]["content"]))  # near line 5
    other = "BUG" if records[6]["messages"][1]["content"] != "BUG" else "BILLING"
    records.append(chat(base[7], other))  # contradicts line 7
    records.append(chat("please send the invoice copy to dana.li@example.org thanks", "BILLING"))
    records.append(chat("my card 4111 1111 1111 1111 was charged twice", "BILLING"))
    lines = {"exact": n + 1, "near": n + 2, "contradiction": n + 3, "email": n + 4, "card": n + 5}
    return write_jsonl(tmp_path / "tickets.jsonl", records), lines


def test_planted_problems_are_found_with_their_rows(planted, fake_model) -> None:
    path, lines = planted
    report, _ = run_audit(audit_input(path, kind="classification", model="fake"),
                          skip=("diversity",))
    checks = {c.check: c for c in report.checks}
    assert checks["exact-duplicates"].rows == [[3, lines["exact"]]]
    assert checks["exact-duplicates"].status == "warn"
    assert [5, lines["near"]] in checks["near-duplicates"].rows
    assert checks["contradictions"].rows == [[7, lines["contradiction"]]]
    assert checks["contradictions"].status == "fail"
    assert checks["pii"].rows == [lines["email"], lines["card"]]
    assert checks["pii"].status == "fail"  # a card number is severe
    assert checks["format"].status == "pass"
    assert checks["class-balance"].status == "pass"
    assert report.verdict == "not ready"
    assert any(r.startswith("contradictions:") for r in report.reasons)
    assert any(r.startswith("pii:") for r in report.reasons)


def test_a_clean_dataset_is_declared_ready(tmp_path: Path, fake_model) -> None:
    path = write_jsonl(tmp_path / "clean.jsonl", clean_records())
    report, _ = run_audit(audit_input(path, model="fake"), review_folder=tmp_path / "review")
    assert {c.check: c.status for c in report.checks} == {
        name: "pass" for name in ("format", "size", "exact-duplicates", "near-duplicates",
                                  "contradictions", "class-balance", "diversity", "pii",
                                  "token-lengths", "leakage", "review-sample")}
    assert report.verdict == "ready" and report.reasons == []
    assert report.input.kind == "classification"  # inferred from the outputs
    assert report.input.labels == ("BILLING", "BUG", "FEATURE")


def test_imbalance_and_labels_under_the_minimum(tmp_path: Path, fake_model) -> None:
    records = clean_records(60)
    records = [r for r in records if r["messages"][1]["content"] != "FEATURE"]
    rare = [chat(f"wish export toggle theme number {w} colleague", "FEATURE")
            for w in ("one", "two")]
    path = write_jsonl(tmp_path / "skewed.jsonl", records + rare)
    report, _ = run_audit(audit_input(path, kind="classification", model="fake"),
                          skip=("diversity",))
    balance = report.check("class-balance")
    assert balance.status == "fail"  # 60 vs 2: ratio 30
    assert balance.details["imbalance_ratio"] == 30.0
    assert balance.details["suggested_weights"]["FEATURE"] > balance.details["suggested_weights"]["BUG"]
    assert 'metric = "macro_f1"' in balance.fix  # the seeds: "switch to a metric like F1"
    rare_lines = [len(records) + 1, len(records) + 2]
    assert balance.rows == rare_lines
    size = report.check("size")
    assert size.status == "fail" and size.rows == rare_lines
    assert "FEATURE 2" in size.finding


def test_outputs_outside_the_labels_fail_class_balance(tmp_path: Path, fake_model) -> None:
    task = tmp_path / "task"
    task.mkdir()
    records = clean_records(60)
    records[4]["messages"][1]["content"] = "bug"
    write_jsonl(task / "t.jsonl", records)
    (task / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "t"
        kind = "classification"
        instruction = "Classify."
        labels = ["BILLING", "BUG", "FEATURE", "ACCOUNT"]
        data = "t.jsonl"
        metric = "accuracy"
        target = 0.9
        [models]
        small = "fake"
        """))
    report, _ = run_audit(audit_input(task), skip=("diversity",))
    balance = report.check("class-balance")
    assert balance.status == "fail" and balance.rows == [5]
    assert "no examples of ACCOUNT" in balance.finding
    assert "differ only in case" in balance.fix


def test_size_counts_distinct_examples() -> None:
    """140 examples, a third of them near-copies: fewer than the table's 100 for extraction."""
    distinct = [make_example(f"text {i}", "{}", line=i + 1) for i in range(95)]
    result = size_check(distinct, 140, "extraction")
    assert result.status == "fail"
    assert "95 distinct examples (of 140)" in result.finding
    # what is left to label counts distinct examples too: 5 to the minimum, 905 to good
    assert result.details["to_collect"] == {"minimum": 5, "good": 905}
    assert "(5 more)" in result.fix
    assert size_check(distinct * 2, 190, "extraction").status == "pass"


def test_labels_short_of_the_minimum_add_up_to_what_is_left_to_label() -> None:
    examples = [make_example(f"text {i}", "A", line=i + 1) for i in range(70)] + \
        [make_example(f"other {i}", "B", line=100 + i) for i in range(20)]
    result = size_check(examples, 90, "classification", labels=["A", "B", "C"])
    # B needs 30 and C 50 to reach 50 each; to reach 500 each: 430 + 480 + 500
    assert result.status == "fail"
    assert result.details["to_collect"] == {"minimum": 80, "good": 1410}
    assert "(80 more in all;" in result.fix


def test_format_problems_are_all_listed_and_the_rest_is_audited(tmp_path: Path, fake_model) -> None:
    records = clean_records(60)
    lines = [json.dumps(r) for r in records]
    lines[9] = "{broken"
    lines[19] = json.dumps({"messages": [{"role": "assistant", "content": "BUG"},
                                         {"role": "user", "content": "x"}]})
    system = {"messages": [{"role": "system", "content": "Be brief."}]
              + records[29]["messages"]}
    lines[29] = json.dumps(system)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report, _ = run_audit(audit_input(path, kind="classification", model="fake"),
                          skip=("diversity",))
    fmt = report.check("format")
    assert fmt.status == "fail"
    assert fmt.rows == [10, 20, 30]
    assert fmt.details["problems"] == {"invalid JSON": 1, "roles out of order": 1}
    assert fmt.details["system_prompt_inconsistent"] == [30]
    assert report.examples == len(records) - 2
    assert report.check("size") is not None  # the readable examples were still audited


def test_leakage_across_the_split_is_found(tmp_path: Path, fake_model) -> None:
    records = clean_records(60)
    pairs = []
    for i in range(0, 60, 2):  # 30 near-copies appended at the end
        text = records[i]["messages"][0]["content"] + " please"
        records.append(chat(text, records[i]["messages"][1]["content"]))
        pairs.append({i + 1, len(records)})
    path = write_jsonl(tmp_path / "leaky.jsonl", records)
    report, _ = run_audit(audit_input(path, kind="classification", model="fake"),
                          skip=("diversity",))
    leak = report.check("leakage")
    assert leak.status == "fail" and leak.rows
    assert all(set(group) in pairs for group in leak.rows)
    assert leak.details["leaked"] == len(leak.rows)


def test_token_lengths_against_max_seq_length_and_context(tmp_path: Path, tiny_llama) -> None:
    records = clean_records(60)
    records[0]["messages"][0]["content"] = "word " * 3000  # past the tiny model's 2048
    records[1]["messages"][0]["content"] = "word " * 300
    path = write_jsonl(tmp_path / "long.jsonl", records)
    inp = audit_input(path, kind="classification", model=str(tiny_llama))
    report, _ = run_audit(inp, skip=("diversity",))
    lengths = report.check("token-lengths")
    assert lengths.status == "fail" and lengths.rows == [1]
    assert lengths.details["context_length"] == 2048
    assert lengths.details["over_max_seq_length"] == 1  # default 2048
    records[0]["messages"][0]["content"] = "short again"
    write_jsonl(path, records)
    settings = inp.settings.model_copy(update={"max_seq_length": 256})
    report, _ = run_audit(replace(inp, settings=settings), skip=("diversity",))
    lengths = report.check("token-lengths")
    assert lengths.status == "warn" and lengths.rows == [2]
    assert lengths.details["suggested_max_seq_length"] == 512


def test_a_one_topic_dataset_is_flagged(tmp_path: Path, fake_model) -> None:
    rng = random.Random(3)
    records = clean_records(20)
    for i in range(240):
        ending = rng.choice(["expired", "never arrived", "shows an error", "is blank"])
        records.append(chat(f"the password reset link {ending} {rng.choice(COMMON)} try {i}",
                            "BUG"))
    path = write_jsonl(tmp_path / "one-topic.jsonl", records)
    report, _ = run_audit(audit_input(path, kind="classification", model="fake"))
    diversity = report.check("diversity")
    assert diversity.status == "warn" and "mostly one topic" in diversity.finding
    assert diversity.details["largest_share"] > 0.5
    assert set(diversity.rows) >= set(range(61, 301, 7))  # the password tickets


def test_a_shared_system_prompt_does_not_make_varied_tickets_one_topic(tmp_path: Path,
                                                                         fake_model) -> None:
    """Inputs with context are transcripts; embedding them whole, a long system prompt every
    record shares pulled varied tickets into one cluster. The topics are what users wrote."""
    from rung.data.audit.diversity import diversity_check
    from rung.data.formats import read_examples

    records = clean_records(20)
    prompt = ("You are the support desk of a large online shop. Be polite, be brief, and "
              "answer in the customer's language. Never promise refunds. ") * 4
    shared = [{"messages": [{"role": "system", "content": prompt}, *r["messages"]]}
              for r in records]
    plain = diversity_check(read_examples(write_jsonl(tmp_path / "plain.jsonl", records)))
    framed = diversity_check(read_examples(write_jsonl(tmp_path / "framed.jsonl", shared)))
    assert framed.status == plain.status == "pass"
    assert framed.details["clusters"] == plain.details["clusters"]
    assert framed.details["mean_similarity"] == plain.details["mean_similarity"]


def test_infer_kind() -> None:
    labels = [make_example(f"t{i}", ["A", "B"][i % 2]) for i in range(20)]
    assert infer_kind(labels) == ("classification", ("A", "B"))
    json_out = [make_example(f"t{i}", json.dumps({"n": i})) for i in range(20)]
    assert infer_kind(json_out)[0] == "extraction"
    prose = [make_example(f"t{i}", f"a longer answer number {i} in words") for i in range(20)]
    assert infer_kind(prose)[0] == "generation"


def test_review_sample_is_escaped_and_annotatable(tmp_path: Path, fake_model) -> None:
    records = clean_records(60)
    records[0]["messages"][0]["content"] = "<script>alert(1)</script> billing question"
    path = write_jsonl(tmp_path / "x.jsonl", records)
    inp = audit_input(path, model="fake")
    inp = replace(inp, settings=inp.settings.model_copy(update={"review_sample": 180}))
    report, _ = run_audit(inp, review_folder=tmp_path / "review", skip=("diversity",))
    review = report.check("review-sample")
    assert len(review.rows) == 180
    page = (tmp_path / "review" / "review.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    csv_lines = (tmp_path / "review" / "review.csv").read_text().splitlines()
    assert csv_lines[0] == "line,system,input,output,flagged_by,verdict,note"
    assert len(csv_lines) == 181


def test_the_review_sheet_gives_the_system_prompt_its_column_and_not_twice(tmp_path: Path,
                                                                            fake_model) -> None:
    """An input with context is a transcript that starts with the system prompt; the sheet
    has a system column already, so the input column holds the rest of the conversation."""
    import csv

    records = [{"messages": [{"role": "system", "content": "You are support."},
                             {"role": "user", "content": f"item {i} never came"},
                             {"role": "assistant", "content": "Which order?"},
                             {"role": "user", "content": f"order {i}"},
                             {"role": "assistant", "content": "SHIPPING"}]} for i in range(30)]
    path = write_jsonl(tmp_path / "x.jsonl", records)
    run_audit(audit_input(path, model="fake"), review_folder=tmp_path / "review",
              skip=("diversity",))
    rows = list(csv.DictReader((tmp_path / "review" / "review.csv").open(encoding="utf-8")))
    row = rows[0]
    n = row["input"].split("item ")[1].split(" ")[0]
    assert row["system"] == "You are support."
    assert row["input"] == (f"User: item {n} never came\n\nAssistant: Which order?\n\n"
                            f"User: order {n}")


# --- the command --------------------------------------------------------------------------


def audit_cli(path: Path, *options: str):
    """`rung audit PATH OPTIONS` on the fake model, without the embedding check."""
    return runner.invoke(app, ["audit", str(path), *options, "--model", "fake",
                               "--skip", "diversity"])


def test_cli_json_strict_and_store(planted, fake_model) -> None:
    path, _ = planted
    result = audit_cli(path, "--json", "--strict")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "not ready" and summary["reasons"]
    for check in summary["checks"]:
        assert set(check) >= {"check", "status", "finding", "rows"}
        assert check["status"] in ("pass", "warn", "fail")
    assert summary["skipped"]["diversity"] == "skipped on request"
    store = Store(path.parent / ".rung")
    row = store.latest_audit(file_hash(path))
    assert row["id"] == summary["audit_id"] and row["verdict"] == "not ready"
    names = [r["name"] for r in store.audit_checks(row["id"])]
    assert names == [c["check"] for c in summary["checks"]]
    assert (path.parent / ".rung" / "audits" / row["id"] / "review.html").exists()
    store.close()
    # without --strict the same audit exits 0; the table names the verdict
    plain = audit_cli(path)
    assert plain.exit_code == 0 and "verdict: not ready" in plain.stdout


def test_cli_fix_cleans_a_copy_and_never_touches_the_input(planted, fake_model, tmp_path) -> None:
    path, lines = planted
    before = path.read_bytes()
    out = tmp_path / "clean.jsonl"
    result = audit_cli(path, "--fix", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before
    fixed = read_examples(out)
    kept_lines = {ex.line for ex in read_examples(path)} - {lines["exact"], lines["near"], 7,
                                                             lines["contradiction"]}
    assert len(fixed) == len(kept_lines)
    aside = read_examples(tmp_path / "clean.contradictions.jsonl")
    assert sorted(ex.output for ex in aside) == sorted(
        ex.output for ex in read_examples(path) if ex.line in (7, lines["contradiction"]))
    text = out.read_text()
    assert "dana.li@example.org" not in text and "4111 1111" not in text
    assert "[EMAIL]" in text and "[CARD]" in text
    log = json.loads((tmp_path / "clean.fix.json").read_text())
    assert log["lines"][str(lines["exact"])] == "removed: exact copy of line 3"
    assert log["lines"][str(lines["contradiction"])].startswith("set aside")
    # the cleaned copy audits clean of what --fix handles
    again, _ = run_audit(audit_input(out, kind="classification", model="fake"),
                         skip=("diversity",))
    assert {c.check: c.status for c in again.checks if c.check in
            ("exact-duplicates", "near-duplicates", "contradictions", "pii")} == {
        "exact-duplicates": "pass", "near-duplicates": "pass", "contradictions": "pass",
        "pii": "pass"}


def test_cli_fix_refuses_to_overwrite_the_input(planted, fake_model) -> None:
    path, _ = planted
    before = path.read_bytes()
    result = audit_cli(path, "--fix", str(path))
    assert result.exit_code == 2
    assert "is the input" in result.stderr
    assert path.read_bytes() == before


def test_cli_redact_writes_a_redacted_copy(planted, fake_model) -> None:
    path, lines = planted
    result = audit_cli(path, "--redact", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    redacted = Path(summary["redacted"]["output"])
    assert redacted.name == "tickets.redacted.jsonl" and summary["redacted"]["changed"] == 2
    examples = {ex.line: ex for ex in read_examples(redacted)}
    assert examples[lines["email"]].input == "please send the invoice copy to [EMAIL] thanks"
    assert len(examples) == len(read_examples(path))


def test_cli_bad_options_exit_2(planted, fake_model) -> None:
    path, _ = planted
    result = runner.invoke(app, ["audit", str(path), "--skip", "everything"])
    assert result.exit_code == 2 and "--skip 'everything'" in result.stderr


def test_the_bundled_example_audits_as_ready_with_warnings(tmp_path: Path) -> None:
    """The shipped task: one planted-by-nature near-copy pair and customer e-mails, no more."""
    example = Path(__file__).resolve().parents[1] / "examples" / "support-tickets"
    task = tmp_path / "support-tickets"
    task.mkdir()
    for name in ("rung.toml", "tickets.jsonl"):
        (task / name).write_bytes((example / name).read_bytes())
    report, _ = audit_dataset(task)
    statuses = {c.check: c.status for c in report.checks}
    assert report.verdict == "ready with warnings"
    assert {k for k, v in statuses.items() if v != "pass"} == {"near-duplicates", "pii"}
    assert report.check("near-duplicates").rows == [[563, 855]]
    assert report.check("size").details["per_label"]["FEATURE"]["tier"] == "minimum"


def test_the_docs_example_is_too_small_for_a_domain_fine_tune(tmp_path: Path) -> None:
    """402 questions against the seeds' Domain expertise minimum of 500: not ready to tune,
    which is the point of that example (knowledge belongs in retrieval)."""
    import shutil

    example = Path(__file__).resolve().parents[1] / "examples" / "product-docs-qa"
    task = tmp_path / "product-docs-qa"
    shutil.copytree(example, task, ignore=shutil.ignore_patterns(".rung"))
    report, _ = audit_dataset(task)
    assert report.verdict == "not ready"
    assert [c.check for c in report.checks if c.status == "fail"] == ["size"]
    assert report.check("size").details["profile"] == "domain"
    assert report.check("class-balance") is None and "class-balance" in report.skipped


def test_verdicts_marked_in_the_review_csv_count_in_the_next_audit_and_are_kept(
        tmp_path: Path, fake_model) -> None:
    """A person marks outputs in review.csv; the next audit of the same data reads the marks,
    writes them into its own CSV, warns on one bad output, fails at a tenth of the reviewed,
    and --fix drops the bad ones. A verdict that is neither ok nor bad names its row."""
    import csv

    path = write_jsonl(tmp_path / "x.jsonl", clean_records(60))
    first = audit_cli(path, "--json")
    assert first.exit_code == 0, first.output
    review = next(c for c in json.loads(first.stdout)["checks"] if c["check"] == "review-sample")
    assert review["status"] == "pass" and review["details"]["reviewed"] == 0
    sheet = Path(review["details"]["csv"])
    rows = list(csv.DictReader(sheet.open(newline="")))
    bad_line = int(rows[3]["line"])
    for i, row in enumerate(rows[:12]):
        row["verdict"] = "bad" if i == 3 else "OK"
    rows[3]["note"] = "wrong label"

    def write(rows):  # as a spreadsheet saves "CSV UTF-8": with a byte-order mark
        with sheet.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write(rows)
    second = json.loads(audit_cli(path, "--json").stdout)
    review = next(c for c in second["checks"] if c["check"] == "review-sample")
    assert review["status"] == "warn" and review["rows"] == [bad_line]  # 1 of 12: under a tenth
    assert review["finding"].startswith(f"reviewers marked 1 of 12 reviewed outputs bad (line "
                                        f"{bad_line}: wrong label)")
    carried = list(csv.DictReader(Path(review["details"]["csv"]).open(newline="")))
    assert [r["verdict"] for r in carried[:4]] == ["ok", "ok", "ok", "bad"]  # kept, not lost
    sheet = Path(review["details"]["csv"])  # the newest review is the one a person edits
    rows = carried
    rows[5]["verdict"] = "bad"  # 2 of 12: a tenth or more
    write(rows)
    out = tmp_path / "clean.jsonl"
    third = audit_cli(path, "--json", "--fix", str(out))
    review = next(c for c in json.loads(third.stdout)["checks"] if c["check"] == "review-sample")
    assert review["status"] == "fail" and json.loads(third.stdout)["verdict"] == "not ready"
    assert len(out.read_text().splitlines()) == 180 - 2  # the two marked bad were dropped
    rows[0]["verdict"] = "maybe"
    write(rows)
    wrong = audit_cli(path)
    assert wrong.exit_code == 2 and "neither ok nor bad" in wrong.output
    assert f"{sheet}:2" in wrong.output and "write ok or bad" in wrong.output
    sheet.write_bytes(sheet.read_bytes().replace(b"wrong label", b"caf\xe9"))  # cp1252
    latin = audit_cli(path)
    assert latin.exit_code == 2 and f"{sheet}: not UTF-8: byte 0xe9" in latin.output
    assert "CSV UTF-8" in latin.output


def test_a_climb_reuses_an_audit_made_without_a_review_sample(task_dir, fake_model) -> None:
    """[audit] review_sample = 0 is a check skipped on purpose, so the stored audit covers
    every check and the next climb does not audit again."""
    from conftest import write_task
    from rung.data.audit.report import audit_for
    from rung.task import load_task

    toml = write_task(task_dir, extra="\n[audit]\nreview_sample = 0\n")
    first = audit_for(load_task(toml))
    assert first["skipped"]["review-sample"] == "[audit] review_sample = 0"
    assert audit_for(load_task(toml))["audit_id"] == first["audit_id"]


SEEDS_SIZE_TABLE = {  # the seeds' "Recommended Dataset Sizes", as printed there
    "classification": (50, 500, 5_000), "extraction": (100, 1_000, 10_000),
    "style": (200, 1_000, 5_000), "domain": (500, 5_000, 50_000),
    "code": (1_000, 10_000, 100_000)}


@pytest.mark.parametrize("profile", sorted(SEEDS_SIZE_TABLE))
def test_every_row_of_the_seeds_size_table_sets_its_tiers(profile: str) -> None:
    from rung.data.audit.size import SIZE_TABLE, tier

    minimum, good, excellent = SEEDS_SIZE_TABLE[profile]
    assert SIZE_TABLE[profile] == (minimum, good, excellent)
    assert [tier(n, profile) for n in (minimum - 1, minimum, good - 1, good, excellent - 1,
                                       excellent)] == \
        ["below minimum", "minimum", "minimum", "good", "good", "excellent"]
    if profile != "classification":  # classification counts per label (its own test)
        examples = [make_example(f"distinct input {i}", f"answer {i}", line=i + 1)
                    for i in range(minimum - 1)]
        below = size_check(examples, len(examples), profile)
        assert below.status == "fail" and f"{minimum}" in below.finding, below.finding
        enough = size_check(examples + [make_example("one more", "x", line=minimum)],
                            minimum, profile)
        assert enough.status != "fail", enough.finding


def test_a_changed_setting_that_shapes_the_audit_audits_again(task_dir, fake_model) -> None:
    """The stored audit stands for the same settings only: after [audit] max_seq_length (or
    the split, or the seed) changes, a fine-tune must not be refused on the old verdict."""
    from conftest import write_task
    from rung.data.audit.report import audit_for
    from rung.task import load_task

    toml = write_task(task_dir, extra="\n[audit]\nreview_sample = 0\n")
    first = audit_for(load_task(toml))
    assert audit_for(load_task(toml))["audit_id"] == first["audit_id"]
    toml.write_text(toml.read_text().replace("review_sample = 0",
                                             "review_sample = 0\nmax_seq_length = 4096"))
    assert audit_for(load_task(toml))["audit_id"] != first["audit_id"]


def _ticket_task(folder: Path, records: list[dict], split: str = "") -> Path:
    """A classification task on `records` with the fake model; `split` a [split] table."""
    write_jsonl(folder / "tickets.jsonl", records)
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "t"
        kind = "classification"
        instruction = "Classify."
        labels = ["BILLING", "BUG", "FEATURE"]
        data = "tickets.jsonl"
        metric = "accuracy"
        target = 0.9
        [models]
        small = "fake"
        """) + split)
    return folder / "rung.toml"


def test_leakage_is_checked_on_the_split_the_climb_makes(tmp_path: Path, fake_model) -> None:
    """With an order_key the climb splits by time; the newest tickets re-file the oldest, so
    every test example has a copy in train on that split, though few do on a random one."""
    records = clean_records(20)
    for day, record in enumerate(records):
        record["day"] = day
    for k in range(10):  # the ten newest copy the ten oldest
        records[-1 - k]["messages"][0]["content"] = records[k]["messages"][0]["content"]
    _ticket_task(tmp_path, records, split='[split]\norder_key = "day"\n')
    from rung.climb import load_examples, make_split
    from rung.data.splits import split_examples
    from rung.task import load_task

    task = load_task(tmp_path / "rung.toml")
    examples = load_examples(task)

    def copied(split) -> int:
        seen = {e.input for e in split.train}
        return sum(e.input in seen for e in split.test)

    by_time = copied(make_split(task, examples))
    at_random = copied(split_examples(examples, seed=task.task.seed, fractions=(0.8, 0.1, 0.1)))
    assert by_time >= 3 and by_time != at_random
    report, _ = run_audit(audit_input(tmp_path / "rung.toml"), skip=("diversity",))
    leak = report.check("leakage")
    assert leak.status == "fail" and leak.details["train-test"] == by_time


def test_leakage_with_nothing_held_out_is_a_warning_not_a_pass() -> None:
    from rung.data.audit.duplicates import leakage
    from rung.data.splits import Split

    train = [make_example(f"q {i}", "A", line=i + 1) for i in range(5)]
    result = leakage(Split(train, [], []))
    assert result.status == "warn" and "nothing to check" in result.finding


def test_fix_sets_the_copies_of_a_line_set_aside_aside_with_it(tmp_path: Path, fake_model) -> None:
    """Line 1 contradicts line 3; line 2 is line 1 again. Removed as a copy of line 1, line 2
    would be in neither file; it goes aside with line 1."""
    records = clean_records(20)
    text = "my invoice shows a charge twice and the refund never arrived for the plan"
    records[:0] = [chat(text, "BILLING"), chat(text + " please", "BILLING"), chat(text, "BUG")]
    path = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "clean.jsonl"
    result = audit_cli(path, "--fix", str(out), "--json")
    assert result.exit_code == 0, result.output
    log = json.loads((tmp_path / "clean.fix.json").read_text())
    assert log["lines"]["1"].startswith("set aside") and log["lines"]["3"].startswith("set aside")
    assert log["lines"]["2"] == "set aside with line 1, which it copies"
    aside = read_examples(tmp_path / "clean.contradictions.jsonl")
    kept = read_examples(out)
    assert sorted(ex.line for ex in aside) == [1, 2, 3]
    assert len(kept) + len(aside) == len(records)  # nothing lost but into a file


def test_a_label_with_stray_spaces_is_the_same_example_for_the_leakage_check(
        tmp_path: Path, fake_model) -> None:
    """Each of 30 tickets again with its label as "BILLING ": the climb reads both as one
    example (one group, one split), so the audit must too, or it reports the copies that
    straddle its own split as leaks the climb never has."""
    records = clean_records(20)
    for record in records[:30]:
        again = json.loads(json.dumps(record))
        again["messages"][1]["content"] += " "
        records.append(again)
    _ticket_task(tmp_path, records)
    report, _ = run_audit(audit_input(tmp_path / "rung.toml"), skip=("diversity",))
    assert report.check("leakage").status == "pass", report.check("leakage").finding


def test_redact_replaces_personal_data_in_fields_but_the_group_key(tmp_path: Path,
                                                                  fake_model) -> None:
    """The split's group_key stays as it is (redacted, every customer would be one group);
    any other field with personal data is redacted like the messages."""
    records = clean_records(10)
    for i, record in enumerate(records):
        record["customer_email"] = f"customer{i % 7}@example.com"
        record["notes"] = f"called back on +44 20 7946 09{i % 10}{i % 7}"
    toml = _ticket_task(tmp_path, records, split='[split]\ngroup_key = "customer_email"\n')
    done = runner.invoke(app, ["audit", str(toml), "--redact", "--skip", "diversity"])
    assert done.exit_code == 0, done.output
    [redacted] = tmp_path.glob("tickets.redacted.jsonl")
    rows = [json.loads(line) for line in redacted.read_text().splitlines()]
    assert [r["customer_email"] for r in rows] == [r["customer_email"] for r in records]
    assert {r["notes"] for r in rows} == {"called back on [PHONE]"}


def test_a_misspelt_model_is_refused_before_any_check_runs(planted, fake_model) -> None:
    """`--model nonexist-model` ran nine of the twelve checks (and the diversity embedding)
    before the token-lengths check said the name was unknown; nothing is stored either."""
    path, _ = planted
    result = runner.invoke(app, ["audit", str(path), "--model", "nonexist-model"])
    assert result.exit_code == 2 and "nonexist-model" in result.stderr
    assert "audit: 3/12" not in result.stderr  # no check ran before the refusal
