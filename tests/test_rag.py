"""The rag rung's parts: reading, chunking positions, retrieval of planted facts, incremental
re-indexing that changes answers, unreadable files, and a climb with the rag rung."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rung.cli import app
from rung.climb import climb
from rung.rag.chunking import chunk_document
from rung.rag.documents import read_document
from rung.rag.index import CorpusIndex
from rung.rag.metrics import is_grounded, retrieval_metrics
from rung.rag.retrieval import HybridRetriever, _top_k
from rung.rag.service import ask, index_task
from rung.data.example import make_example

runner = CliRunner()

PLANS = {"Starter": ("$19", "5"), "Team": ("$49", "37"), "Business": ("$120", "150"),
         "Enterprise": ("$310", "900")}
FILLER = ("The dispatch board lists open work orders by technician and region. Crews see "
          "their jobs on the mobile app and can attach photos, signatures and parts used. ")


def write_corpus(folder: Path) -> Path:
    docs = folder / "docs"
    (docs / "guides").mkdir(parents=True, exist_ok=True)
    pricing = ["# Pricing", "", "Every plan is billed monthly.", ""]
    for plan, (price, seats) in PLANS.items():
        pricing += [f"## {plan} plan", "", f"The {plan} plan costs {price} per month and "
                    f"includes {seats} seats.", ""]
    (docs / "pricing.md").write_text("\n".join(pricing))
    (docs / "guides" / "errors.txt").write_text(
        "Troubleshooting\n===============\n\n" + FILLER * 3
        + "\nError E-417 means the badge expired; renew it under Settings > Badges.\n")
    (docs / "guides" / "routes.html").write_text(
        "<html><head><script>var tracking = 'E-417 costs $999';</script></head><body>"
        "<nav>Home Pricing Guides</nav><h1>Route planner</h1><p>" + FILLER + "</p>"
        "<h2>Limits</h2><ul><li>A route holds at most 180 stops.</li></ul>"
        "<footer>Copyright Fieldwise</footer></body></html>")
    return docs


def write_qa_task(folder: Path, records: list[dict] | None = None) -> Path:
    write_corpus(folder)
    if records is None:
        records = []
        for i in range(20):
            for plan, (price, _) in PLANS.items():
                records.append({"messages": [
                    {"role": "user", "content": f"What does the {plan} plan cost per month? ({i})"},
                    {"role": "assistant", "content": price}], "source": "docs/pricing.md"})
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "rung.toml").write_text(textwrap.dedent("""\
        [task]
        name = "docs-qa"
        kind = "generation"
        instruction = "Answer from the documentation with the exact value."
        data = "qa.jsonl"
        corpus = "docs"
        metric = "exact_match_squad"
        target = 0.9
        seed = 3

        [models]
        small = "fake"

        [few_shot]
        k = [2]

        [rag]
        methods = ["bm25", "hybrid"]
        k = [1, 2]

        [eval]
        bootstrap = 200
        latency_samples = 0
        """))
    return folder / "rung.toml"


def reading_model(fake_model):
    """A fake model that answers from the documentation in its prompt, as a reader would."""
    def rule(prompt):
        text = prompt[-1].content
        question = text.rsplit("Question:", 1)[-1]
        plan = re.search(r"the (\w+) plan", question)
        if plan and "Documentation:" in text:
            found = re.search(rf"The {plan.group(1)} plan costs (\$\d+)", text)
            return found.group(1) if found else "unknown"
        return "unknown"
    fake_model.rule = rule
    return fake_model


# --- reading and chunking -------------------------------------------------------------------


def covers(span: str, text: str) -> bool:
    """A span of the file holds the chunk's text: the same lines in order, only "\r"s and
    heading underlines (or front matter) between them, and no more at either end."""
    lines = span.replace("\r\n", "\n").split("\n")
    wanted = text.split("\n")
    if lines[0] != wanted[0] or lines[-1] != wanted[-1]:
        return False
    rest = iter(lines)
    return all(any(line == want for line in rest) for want in wanted)


def test_every_format_reads_with_headings_and_boilerplate_dropped(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    html = read_document(docs / "guides" / "routes.html", "guides/routes.html")
    assert "tracking" not in html.text and "Copyright" not in html.text and "Home" not in html.text
    assert [s.headings for s in html.sections] == [("Route planner",), ("Route planner", "Limits")]
    text = read_document(docs / "guides" / "errors.txt", "guides/errors.txt")
    assert text.sections[0].headings == ("Troubleshooting",) and "=====" not in text.text
    md = read_document(docs / "pricing.md", "pricing.md")
    assert ("Pricing", "Team plan") in [s.headings for s in md.sections]


def test_pdf_pages_are_read(tmp_path: Path) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=200)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 20 100 Td (Backups run every 6 hours.) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(stream)
    path = tmp_path / "ops.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    doc = read_document(path, "ops.pdf")
    assert "Backups run every 6 hours." in doc.text
    assert doc.sections[0].headings == ("page 1",)


def test_chunks_keep_exact_positions_headings_and_overlap(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    doc = read_document(docs / "guides" / "errors.txt", "guides/errors.txt")
    chunks = chunk_document(doc, size=24, overlap=6)
    assert len(chunks) > 3
    file_text = (docs / "guides" / "errors.txt").read_bytes().decode("utf-8")
    for chunk in chunks:
        assert covers(file_text[chunk.start:chunk.end], chunk.text)
        assert chunk.heading == "Troubleshooting"
        assert chunk.indexed_text.startswith("Troubleshooting\n")
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # windows overlap
    assert chunks[-1].text.endswith("Settings > Badges.")
    with pytest.raises(ValueError):
        chunk_document(doc, size=10, overlap=10)


# --- retrieval ------------------------------------------------------------------------------


def test_planted_facts_are_retrieved_by_every_method(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path)
    index = CorpusIndex(tmp_path / "index.db", chunk_tokens=40, overlap=8)
    index.refresh(docs)
    from rung.rag import retrievers

    found = retrievers(tmp_path, {"index": "index.db", "chunk_tokens": 40, "overlap": 8})
    for name, retriever in found.items():
        hits = retriever.search_many(["what does error E-417 mean",
                                      "how many stops can one route hold"], 2)
        assert hits[0][0].chunk.source == "guides/errors.txt", name
        assert hits[1][0].chunk.source == "guides/routes.html", name
        assert hits[1][0].chunk.heading == "Route planner > Limits", name
    index.close()


def test_rank_fusion_and_top_k_are_stable() -> None:
    assert _top_k(np.array([0.1, 0.5, 0.5, 0.9]), 3).tolist() == [3, 1, 2]
    from rung.rag.chunking import Chunk
    from rung.rag.retrieval import Hit

    a, b, c = (Chunk("d.md", i, 0, 1, "", "x") for i in range(3))
    fused = HybridRetriever.fuse([Hit(a, 9, 1), Hit(b, 8, 2)], [Hit(b, .9, 1), Hit(c, .8, 2)], 3)
    assert [h.chunk.position for h in fused] == [1, 0, 2]  # b is ranked by both
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_retrieval_metrics_and_grounding() -> None:
    examples = [make_example("q1", "a", source="docs/a.md"), make_example("q2", "b", source="docs/b.md"),
                make_example("q3", "c")]
    metrics = retrieval_metrics(examples, [["a.md#0", "x.md#1"], ["x.md#0", "b.md#2"], ["a.md#0"]],
                                corpus="docs")
    assert metrics == {"hit_at_k": 1.0, "recall_at_k": 1.0, "mrr": 0.75, "n": 2, "k": 2}
    assert is_grounded("$49 per month", "The Team plan costs $49 per month.") is True
    assert is_grounded("$59", "The Team plan costs $49 per month.") is False
    # words restated from the question are not inventions; stopwords do not count
    assert is_grounded("The Team plan is $49", "It costs $49.", "What is the Team plan?") is True
    assert is_grounded("The Team plan is $99 monthly", "It costs $49.", "Team plan?") is False
    assert is_grounded("", "anything") is None


# --- the index over time ------------------------------------------------------------------


def test_edit_add_delete_change_answers_without_a_full_rebuild(tmp_path: Path, fake_model) -> None:
    reading_model(fake_model)
    toml = write_qa_task(tmp_path)
    report = index_task(toml)
    assert len(report.added) == 3 and report.chunks > 0
    assert ask(toml, "What does the Team plan cost per month?")["answer"] == "$49"

    pricing = tmp_path / "docs" / "pricing.md"
    pricing.write_text(pricing.read_text().replace("$49", "$59"))
    (tmp_path / "docs" / "new.md").write_text("# Add-ons\n\nThe Fleet plan costs $75 per month.\n")
    (tmp_path / "docs" / "guides" / "errors.txt").unlink()
    report = index_task(toml)
    assert report.changed == ["pricing.md"] and report.added == ["new.md"]
    assert report.removed == ["guides/errors.txt"] and report.unchanged == 1
    assert report.chunks_embedded == len(chunk_document(read_document(pricing, "pricing.md"),
                                                        size=160, overlap=32)) + 1
    answer = ask(toml, "What does the Team plan cost per month?")
    assert answer["answer"] == "$59" and answer["sources"][0]["source"] == "pricing.md"
    assert ask(toml, "What does the Fleet plan cost per month?")["answer"] == "$75"
    unchanged = index_task(toml)
    assert unchanged.chunks_embedded == 0 and unchanged.unchanged == 3


def test_ask_refreshes_by_itself(tmp_path: Path, fake_model) -> None:
    """'Facts update the instant you change a document': no separate index step needed."""
    reading_model(fake_model)
    toml = write_qa_task(tmp_path)
    assert ask(toml, "What does the Starter plan cost per month?")["answer"] == "$19"
    pricing = tmp_path / "docs" / "pricing.md"
    pricing.write_text(pricing.read_text().replace("$19", "$23"))
    assert ask(toml, "What does the Starter plan cost per month?")["answer"] == "$23"


def test_unreadable_files_are_reported_and_the_rest_indexed(tmp_path: Path) -> None:
    toml = write_qa_task(tmp_path)
    docs = tmp_path / "docs"
    (docs / "latin1.md").write_bytes("caf\xe9 menu".encode("latin-1"))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (docs / "slides.pptx").write_bytes(b"PK\x03\x04")
    (docs / "empty.md").write_text("   \n")
    result = runner.invoke(app, ["index", str(toml), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["added"]) == 3 and summary["chunks"] > 0
    problems = "\n".join(summary["problems"])
    for name, why in (("latin1.md", "not UTF-8"), ("broken.pdf", "unreadable PDF"),
                      ("slides.pptx", "unsupported file type"), ("empty.md", "no text")):
        assert name in problems and why in problems


def test_cli_ask_shows_sources(tmp_path: Path, fake_model) -> None:
    reading_model(fake_model)
    toml = write_qa_task(tmp_path)
    result = runner.invoke(app, ["ask", str(toml), "What does the Business plan cost per month?",
                                 "--method", "bm25", "--k", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "$120"
    assert "pricing.md (Pricing > Business plan)" in result.stdout
    # a Markdown source's span is characters of the file itself
    answer = json.loads(runner.invoke(app, [
        "ask", str(toml), "What does the Business plan cost per month?", "--method", "bm25",
        "--k", "2", "--json"]).stdout)
    cited = next(s for s in answer["sources"] if s["source"].endswith("pricing.md"))
    assert cited["span_in_file"] is True
    assert f"chars {cited['start']}-{cited['end']}" in result.stdout
    text = (toml.parent / "docs" / "pricing.md").read_text(encoding="utf-8")
    assert "Business" in text[cited["start"]:cited["end"]] or "$120" in text[
        cited["start"]:cited["end"]]


# --- the rung in a climb --------------------------------------------------------------------


def test_climb_measures_rag_against_the_rungs_without_it(tmp_path: Path, fake_model) -> None:
    reading_model(fake_model)
    toml = write_qa_task(tmp_path)
    result = climb(toml)
    by_rung = {r.rung: r for r in result.results}
    assert list(by_rung) == ["prompt", "few-shot", "rag"]
    assert by_rung["prompt"].test.score.value == 0.0
    rag = by_rung["rag"]
    assert rag.test.score.value == 1.0
    assert rag.versus is not None and rag.versus[1].significant
    assert rag.test.retrieval["hit_at_k"] == 1.0 and rag.test.retrieval["mrr"] == 1.0
    assert rag.test.grounding == {"grounded": 1.0, "n": len(result.split.test)}
    assert {c.label for c in rag.candidates} == {"bm25, k=1", "bm25, k=2", "hybrid, k=1",
                                                 "hybrid, k=2"}
    summary = result.summary()
    assert summary["index"]["added"] and summary["rungs"][2]["retrieval"]["hit_at_k"] == 1.0
    from rung.store import Store

    store = Store(tmp_path / ".rung")
    rows = list(store.predictions(result.run_id, "rag"))
    assert all(json.loads(r["sources"])[0].startswith("pricing.md#") for r in rows)
    assert all(r["grounded"] == 1 for r in rows)
    store.close()


def test_a_missing_corpus_folder_is_a_config_error(tmp_path: Path) -> None:
    toml = write_qa_task(tmp_path)
    toml.write_text(toml.read_text().replace('corpus = "docs"', 'corpus = "missing"'))
    result = runner.invoke(app, ["index", str(toml)])
    assert result.exit_code == 2 and "corpus folder 'missing' not found" in result.stderr


def test_a_missing_index_is_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    from rung.errors import DataError
    from rung.rag import retrieve

    settings = {"index": ".rung/index.db", "chunk_tokens": 160, "overlap": 32,
                "method": "bm25", "k": 1}
    with pytest.raises(DataError, match="rung index"):
        retrieve(tmp_path, settings, ["anything"])
    assert not (tmp_path / ".rung").exists()


def test_rag_demonstrations_carry_their_own_passages_and_are_chosen_on_val(
        tmp_path: Path, fake_model) -> None:
    """A model that only reads the documentation after seeing it done: right only when a
    demonstration before the question shows passages and an answer taken from them."""
    reading_model(fake_model)
    read = fake_model.rule

    def after_an_example(prompt):
        shown = [m for m in prompt[:-1] if m.role == "user" and "Documentation:" in m.content]
        return read(prompt) if shown else "unknown"

    fake_model.rule = after_an_example
    toml = write_qa_task(tmp_path)
    toml.write_text(toml.read_text().replace("k = [1, 2]\n", "k = [1, 2]\nshots = [0, 2]\n"))
    result = climb(toml)
    rag = next(r for r in result.results if r.rung == "rag")
    scores = {c.label: c.val_score for c in rag.candidates}
    assert scores["bm25, k=1"] == 0.0 and scores["bm25, k=1, 2 similar shots"] == 1.0
    assert rag.pipeline.details["shots"] == 2 and rag.test.score.value == 1.0
    # what was sent: two demonstrations, each its own question's passages and its gold answer
    sent = fake_model.calls[-1][1][0]
    demos = [(q.content, a.content) for q, a in zip(sent, sent[1:])
             if q.role == "user" and a.role == "assistant"]
    assert len(demos) == 2
    for question, answer in demos:
        assert "Documentation:" in question and "Question: What does the" in question
        plan = re.search(r"the (\w+) plan", question.rsplit("Question:", 1)[1]).group(1)
        assert answer == PLANS[plan][0] and f"The {plan} plan costs {answer}" in question


def test_a_damaged_index_is_named_as_the_index_and_the_run_store_is_left_alone(
        tmp_path: Path) -> None:
    """The index is derived data: the message names it and says rebuilding is free; it must
    not send the user to move the run store (their history) aside."""
    toml = write_qa_task(tmp_path)
    index = tmp_path / ".rung" / "index.db"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_bytes(b"junk" * 100)
    done = runner.invoke(app, ["index", str(toml)])
    assert done.exit_code == 2 and f"{index}: the retrieval index could not be used" in done.stderr
    assert "rung index PATH" in done.stderr and "runs.db" not in done.stderr


def test_an_empty_corpus_is_said_by_index_and_refused_by_ask(tmp_path: Path) -> None:
    """Retrieval over nothing would make an answer up: rung index warns, rung ask refuses
    (and an empty question is refused before anything loads)."""
    toml = write_qa_task(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "docs")
    (tmp_path / "docs").mkdir()
    indexed = runner.invoke(app, ["index", str(toml)])
    assert indexed.exit_code == 0 and "the index is empty" in indexed.stderr
    asked = runner.invoke(app, ["ask", str(toml), "What is the limit?"])
    assert asked.exit_code == 2 and "the corpus has no text to retrieve from" in asked.stderr
    blank = runner.invoke(app, ["ask", str(toml), "  "])
    assert blank.exit_code == 2 and "the question is empty" in blank.stderr


def test_a_question_with_no_word_bm25_indexes_finds_nothing_instead_of_crashing(
        tmp_path: Path) -> None:
    """bm25s has no terms for "?", "a" or "5" and failed inside itself; such a question (a
    climb's input, a request to rung serve) retrieves nothing by words."""
    from rung.rag.retrieval import BM25Retriever

    docs = write_corpus(tmp_path)
    chunks = [c for p in sorted(docs.rglob("*.md"))
              for c in chunk_document(read_document(p, p.name), size=64, overlap=8)]
    retriever = BM25Retriever(chunks)
    for question in (" ", "?", "a", "5", "\N{GRINNING FACE}"):
        assert retriever.search_many([question], 3) == [[]]
        assert len(retriever.scores(question)) == len(chunks)


def test_a_leaf_heading_is_content_and_a_parent_heading_alone_is_not(tmp_path: Path) -> None:
    """'## Shipping takes 5 days' with nothing under it is the fact itself; '# FAQ' followed by
    its children adds nothing of its own; a line that merely contains a heading is text."""
    faq = tmp_path / "faq.md"
    faq.write_text("# FAQ\n## Shipping takes 5 days\n## Refunds take 45 days\n")
    texts = [c.text for c in chunk_document(read_document(faq, "faq.md"), size=64, overlap=8)]
    assert any("Shipping takes 5 days" in t for t in texts)
    assert any("Refunds take 45 days" in t for t in texts)
    assert not any(t.strip() == "# FAQ" for t in texts)


def test_a_climb_with_an_empty_index_leaves_rag_out_and_says_why(tmp_path: Path,
                                                                 fake_model) -> None:
    toml = write_qa_task(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "docs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "pricing.md").write_bytes("Prix: 49 \u20ac".encode("cp1252"))
    result = climb(toml)
    assert "rag" not in [r.rung for r in result.results]
    said = result.summary()["not_measured"]["rag"]
    assert said.startswith("the corpus index is empty") and "UTF-8" in said
    done = runner.invoke(app, ["ask", str(toml), "What is the limit?", "--k", "0"])
    assert done.exit_code == 2  # --k below 1 is refused by the option


def test_a_refresh_cut_off_after_writing_a_file_still_moves_the_version(tmp_path: Path) -> None:
    """Retrievers are kept per index version (rung serve holds them): a refresh interrupted
    once a changed file was written, then run again with nothing left to change, must still
    give the version the content has, or the old retrievers serve the old facts."""
    docs = write_corpus(tmp_path)
    index = CorpusIndex(tmp_path / "index.db")
    index.refresh(docs)
    before = index.version
    pricing = docs / "pricing.md"
    pricing.write_text(pricing.read_text().replace("$49", "$59"))

    def cut(done: int, total: int) -> None:
        if done == total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index.refresh(docs, cut)
    again = index.refresh(docs)
    assert again.changed == [] and index.version != before
    unchanged = index.version
    index.refresh(docs)
    assert index.version == unchanged  # nothing changed: the same version, nothing written
    index.close()


def test_html_text_outside_block_tags_is_read_and_page_chrome_is_not(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body><header>Site menu</header><h1>Warranty</h1>"
                    "<div>The warranty lasts <b>7 years</b> for parts.</div>"
                    "<section>Returns within 45 days.</section><p>Contact support.</p>"
                    "<article><header><h1>Refund policy</h1></header><p>Refunds in 5 days.</p>"
                    "</article><table><tr><td>Team</td><td>$49</td></tr></table>"
                    "<footer>(c) 2026</footer></body></html>")
    text = read_document(page, "page.html").text
    assert text == ("# Warranty\nThe warranty lasts 7 years for parts.\nReturns within 45 "
                    "days.\nContact support.\n\n# Refund policy\nRefunds in 5 days.\n"
                    "Team | $49\n\n")


def test_the_dense_query_cache_is_bounded_and_answers_stay_right(monkeypatch) -> None:
    """Under rung serve every request is a new query: the cache keeps the newest, and a call
    with more distinct queries than it keeps still answers each from its own vector."""
    import rung.rag.retrieval as retrieval
    from rung.rag.chunking import Chunk

    monkeypatch.setattr(retrieval, "QUERY_VECTORS_KEPT", 3)
    chunks = [Chunk("d.md", i, 0, 1, "", f"chunk {i}") for i in range(4)]
    matrix = np.eye(4, dtype=np.float32)
    asked: list[str] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.extend(texts)
        return np.stack([matrix[int(t[-1])] for t in texts])

    dense = retrieval.DenseRetriever(chunks, matrix, embed)
    hits = dense.search_many([f"q{i}" for i in (0, 1, 2, 3, 0)], 1)
    assert [h[0].chunk.position for h in hits] == [0, 1, 2, 3, 0]
    assert list(dense._vectors) == ["q1", "q2", "q3"] and asked == ["q0", "q1", "q2", "q3"]
    dense.search_many(["q3"], 1)
    assert asked == ["q0", "q1", "q2", "q3"]  # kept: not embedded again


# --- headings only where the writer made one; chunks that fit; spans of the file ------------


def test_code_fences_and_front_matter_make_no_headings(tmp_path: Path) -> None:
    """'# download the package' in a shell snippet is a comment: the prose after the fence
    stays under 'Install'. Front matter is the site generator's, not the reader's: its keys
    are not text, and its closing '---' does not underline 'owner: ops' into a heading."""
    page = tmp_path / "install.md"
    page.write_text("---\ntitle: Install\nowner: ops\n---\n\n# Install\n\nRun the installer.\n\n"
                    "```bash\n# download the package\ncurl -O https://example.com/pkg.tgz\n"
                    "Not a heading\n---\n```\n\n~~~~\n# verify the checksum\n```\nstill code\n"
                    "~~~~\n\nThe service listens on port 8443 after install.\n")
    doc = read_document(page, "install.md")
    assert [s.headings for s in doc.sections if doc.text[s.start:s.end].strip()] == \
        [("Install",)]
    assert "owner: ops" not in doc.text and "title:" not in doc.text
    for line in ("# download the package", "Not a heading\n---", "# verify the checksum",
                 "still code"):
        assert line in doc.text  # code is kept as text
    chunks = chunk_document(doc, size=160, overlap=32)
    assert [c.heading for c in chunks] == ["Install"]
    assert "port 8443" in chunks[-1].text
    # a document that only opens with a rule, never closed, keeps it as text
    rule = tmp_path / "rule.md"
    rule.write_text("---\nowner: ops\n\nText.\n")
    assert read_document(rule, "rule.md").text.startswith("---\nowner: ops")


def test_html_headings_come_from_heading_elements_only(tmp_path: Path) -> None:
    page = tmp_path / "pricing.html"
    page.write_text("<html><body><h1>Pricing</h1><h2>Team plan</h2><table><tr><th>#</th>"
                    "<th>Seats</th><th>Price</th></tr><tr><td>1</td><td>5</td><td>$40</td></tr>"
                    "</table><p>## Team plan billing is monthly.</p><p>Plan</p><p>====</p>"
                    "<pre># restart the agent\nsystemctl restart agent</pre>"
                    "<p>The agent reconnects within 30 seconds.</p></body></html>")
    doc = read_document(page, "pricing.html")
    assert [s.headings for s in doc.sections] == [("Pricing",), ("Pricing", "Team plan")]
    assert "# | Seats | Price\n1 | 5 | $40\n" in doc.text and "Plan\n====\n" in doc.text
    assert "# restart the agent\nsystemctl restart agent\n" in doc.text  # <pre> keeps its lines
    chunks = chunk_document(doc, size=160, overlap=32)
    assert [c.heading for c in chunks] == ["Pricing > Team plan"]
    assert "reconnects within 30 seconds" in chunks[0].text
    assert not chunks[0].span_in_file  # extracted text: no characters of the file to cite


def test_a_text_file_has_no_hash_headings(tmp_path: Path) -> None:
    """In plain text '# restart the agent' is a comment and '# 3' a number; a line underlined
    with === or --- is the heading convention plain text has, and still opens a section."""
    notes = tmp_path / "notes.txt"
    notes.write_text("Restarting\n==========\n\n# restart the agent\nsystemctl restart agent\n"
                     "# 3 retries, then it gives up.\n")
    doc = read_document(notes, "notes.txt")
    assert [s.headings for s in doc.sections] == [("Restarting",)]
    assert "# restart the agent\n" in doc.text and "# 3 retries" in doc.text


def test_every_embedded_chunk_fits_the_encoder(tmp_path: Path) -> None:
    """What is embedded is heading, line break and window between [CLS] and [SEP]: with the
    largest chunk_tokens allowed (256) and a long heading, every chunk must still fit the
    encoder's 256 tokens whole, and the windows still cover the section and overlap."""
    from rung.rag.chunking import embedding_tokenizer

    tokenizer = embedding_tokenizer()
    heading = "Billing and invoices for multi-region teams with annual contracts " * 4
    words = " ".join(f"word{i} alpha-beta, gamma." for i in range(600))
    page = tmp_path / "long.md"
    page.write_text(f"# {heading.strip()}\n\n{words}\n\n## {'x' * 3000}\n\n{words}\n")
    doc = read_document(page, "long.md")
    file_text = page.read_bytes().decode("utf-8")
    for size, overlap in ((256, 0), (256, 64), (160, 32), (40, 39)):
        chunks = chunk_document(doc, size=size, overlap=overlap)
        embedded = [len(tokenizer(" ".join(c.indexed_text.split()))["input_ids"])
                    for c in chunks]  # as embed_texts sends them: whitespace made one space
        assert max(embedded) <= 256, (size, overlap, max(embedded))
        if size == 256:
            assert max(embedded) >= 250  # room is used, not thrown away
        covered = set()
        for chunk in chunks:
            assert covers(file_text[chunk.start:chunk.end], chunk.text)
            covered.update(range(chunk.start, chunk.end))
        assert all(i in covered for i, ch in enumerate(file_text) if not ch.isspace())
        for a, b in zip(chunks, chunks[1:]):
            if a.heading == b.heading and overlap:
                assert b.start < a.end  # windows of a section overlap
    from rung.rag.chunking import encoder_limit

    assert encoder_limit() == 256  # read from the packaged encoder's configuration
    # a heading that is a paragraph is cut to half the room, not the text it heads
    long_heading = [c for c in chunk_document(doc, size=256, overlap=0)
                    if c.heading.startswith("Billing")][-1]
    assert len(tokenizer(long_heading.heading)["input_ids"]) <= 128
    assert chunk_document(doc, size=64, overlap=0, limit=48) and all(
        len(tokenizer(c.indexed_text)["input_ids"]) <= 48
        for c in chunk_document(doc, size=64, overlap=0, limit=48))


def test_citation_spans_are_characters_of_the_file(tmp_path: Path) -> None:
    """rung ask prints start-end as the document's characters: for Markdown and text they
    must be, through CRLF line ends, a byte-order mark, underlines and front matter."""
    page = tmp_path / "crlf.md"
    page.write_bytes(("\ufeff---\r\nowner: ops\r\n---\r\nIntro line\r\n\r\nPricing\r\n=======\r\n"
                      "\r\nThe Team plan costs $40 per seat.\r\n\r\n## Refunds\r\n\r\n"
                      + "Refunds take 5 days. " * 40 + "\r\n").encode("utf-8"))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(("Limits\r\n------\r\n" + "A route holds 180 stops. " * 40).encode())
    for path in (page, notes):
        file_text = path.read_bytes().decode("utf-8")
        chunks = chunk_document(read_document(path, path.name), size=24, overlap=4)
        assert len(chunks) > 3
        for chunk in chunks:
            assert covers(file_text[chunk.start:chunk.end], chunk.text), chunk
            assert chunk.span_in_file
    pricing = next(c for c in chunk_document(read_document(page, "crlf.md"))
                   if c.heading == "Pricing")
    assert page.read_bytes().decode("utf-8")[pricing.start:pricing.end] == \
        "Pricing\r\n=======\r\n\r\nThe Team plan costs $40 per seat."


def test_a_file_deleted_mid_scan_or_a_dangling_link_is_a_problem_not_a_crash(
        tmp_path: Path, monkeypatch) -> None:
    """The folder is listed, then each file read: one deleted in between (or a link to a file
    that is not there) is named in problems, its old chunks go, and the rest is indexed."""
    import rung.rag.index as index_module

    docs = write_corpus(tmp_path)
    (docs / "gone.md").write_text("# Gone\n\nThe Fleet plan costs $75.\n")
    index = CorpusIndex(tmp_path / "index.db", chunk_tokens=64, overlap=8,
                        embedder=lambda texts: np.ones((len(texts), 4), dtype=np.float32))
    assert "gone.md" in index.refresh(docs).added
    (docs / "gone.md").write_text("# Gone\n\nThe Fleet plan costs $80.\n")
    (docs / "link.md").symlink_to(docs / "nowhere.md")
    listed = index_module.corpus_files

    def listed_then_deleted(folder: Path) -> list[Path]:
        files = listed(folder)
        (docs / "gone.md").unlink()
        return files

    monkeypatch.setattr(index_module, "corpus_files", listed_then_deleted)
    report = index.refresh(docs)
    problems = "\n".join(str(p) for p in report.problems)
    assert "gone.md: deleted while the corpus was being read" in problems
    assert "link.md: a link to" in problems and "nowhere.md" in problems
    assert report.removed == ["gone.md"] and report.unchanged == 3
    assert {c.source for c in index.load()[0]} == {"pricing.md", "guides/errors.txt",
                                                   "guides/routes.html"}
    index.close()


def test_long_sections_are_counted_without_the_tokenizers_length_warning(
        tmp_path: Path) -> None:
    """Counting a whole section in tokens is not embedding it: transformers' 'longer than the
    specified maximum (5406 > 512)' said otherwise on every rung index of a long document."""
    import io
    import logging

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from rung.eval.semantic import embedding_model_folder

    fresh = AutoTokenizer.from_pretrained(str(embedding_model_folder()))  # warns once each
    page = tmp_path / "long.md"
    page.write_text("# Big\n\n" + " ".join(f"fact{i} is here." for i in range(900)) + "\n")
    said = io.StringIO()
    handler = logging.StreamHandler(said)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # as `rung index` runs it (other tests quieten it)
    logging.getLogger("transformers").addHandler(handler)
    try:
        assert len(chunk_document(read_document(page, "long.md"), tokenizer=fresh)) > 5
        fresh(" ".join(["word"] * 600))  # the warning is still there for a real overflow
    finally:
        logging.getLogger("transformers").removeHandler(handler)
        hf_logging.set_verbosity(level)
    assert said.getvalue().count("sequence length is longer") == 1
    assert "(602 > 512)" in said.getvalue()  # 600 words and [CLS], [SEP]
