"""The run report: rendered in real headless Chromium (Debian's chromium + chromedriver, which
`make test` installs), with charts drawn, the decision and every rung on the page, the filter
working, and hostile dataset text shown as text, never run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from html import unescape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rung.cli import app
from rung.climb import climb
from rung.report import render_report
from rung.report.gather import gather
from rung.store import Store
from conftest import LABELS, finetune_table, ticket_records, write_task

HOSTILE = ("<script>window.__pwned = 1; document.title = 'pwned'</script>"
           "<img src=x onerror=\"window.__pwned = 2\"> & \"quotes\"")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def hostile_task(folder: Path, model: str, extra: str = "", ladder: dict | None = None) -> Path:
    """The tiny tickets task with script and an event handler in every ticket's text."""
    records = ticket_records()
    for r in records:
        r["messages"][0]["content"] += " " + HOSTILE
    return write_task(folder, model=model, records=records, extra=extra, ladder=ladder)


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, tiny_llama: Path) -> tuple[Path, str]:
    """A whole climb on the tiny Llama, classifier and fine-tune included (--all), so every
    section has data."""
    folder = tmp_path_factory.mktemp("report-task")
    toml = hostile_task(folder, str(tiny_llama), finetune_table(
        rank=4, alpha=8, target_modules=["q_proj", "v_proj"], learning_rate=0.005, epochs=2,
        batch_size=8), ladder={"all": True})
    result = climb(toml, force=True)
    assert [r.rung for r in result.results] == ["classifier", "prompt", "few-shot", "finetune"]
    assert result.report is not None and result.report.exists()
    return folder, result.run_id


def browser(tmp_path: Path):
    for needed in (CHROMIUM, CHROMEDRIVER):
        assert Path(needed).exists(), (
            f"{needed} is missing: `make test` installs Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--window-size=1400,2000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def test_the_report_renders_in_chromium_and_dataset_script_cannot_run(
        tuned_run: tuple[Path, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder, run_id = tuned_run
    page = folder / ".rung" / "artifacts" / run_id / "report.html"
    summary = json.loads(Store(folder / ".rung").run(run_id)["summary_json"])
    driver = browser(tmp_path)
    try:
        driver.get(page.as_uri())
        charts = driver.find_elements(By.CSS_SELECTOR, "div.chart")
        # score vs cost, latency, the tune's curves, a confusion matrix per rung
        assert len(charts) == 2 + 1 + 4
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(
            By.CSS_SELECTOR, "div.chart svg.main-svg")) >= len(charts))
        for chart in charts:  # every chart drew its data, not an empty frame
            assert chart.find_elements(By.CSS_SELECTOR, "g.trace, g.hm"), \
                chart.get_attribute("id")

        headline = driver.find_element(By.ID, "headline").text
        assert headline == summary["recommendation"]["reason"]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#reasons li")) == len(
            summary["recommendation"]["reasons"])
        rows = driver.find_elements(By.CSS_SELECTOR, "#rungs tr[data-rung]")
        names = ["classifier", "prompt", "few-shot", "finetune"]
        assert [r.get_attribute("data-rung") for r in rows] == names
        assert headline.startswith("no LLM is needed for this task: use classifier")
        # every rung's candidates on val, the kept one marked, as the summary lists them
        tables = driver.find_elements(By.CSS_SELECTOR, "#candidates table.candidates")
        assert [t.get_attribute("data-rung") for t in tables] == names
        for table, rung in zip(tables, summary["rungs"]):
            cells = [r.find_elements(By.CSS_SELECTOR, "td")[0].text
                     for r in table.find_elements(By.CSS_SELECTOR, "tr")[2:]]
            assert [c.removesuffix(" (kept)") for c in cells] == [
                c["label"] for c in rung["candidates"]]
            assert [c.endswith("(kept)") for c in cells] == [c["chosen"] for c in rung["candidates"]]
            # how many val examples each answered, and, where raced, how far it went
            rows_ = [[td.text for td in r.find_elements(By.CSS_SELECTOR, "td")]
                     for r in table.find_elements(By.CSS_SELECTOR, "tr")[2:]]
            assert [int(r[3]) for r in rows_] == [c["val_n"] for c in rung["candidates"]]
            raced = any("stopped" in c for c in rung["candidates"])
            assert [r[4] if raced else None for r in rows_] == [
                c["stopped"] if raced else None for c in rung["candidates"]]
        power = driver.find_element(By.ID, "power").text
        assert f"{summary['split']['test']} test examples" in power
        assert driver.find_element(By.ID, "tune-finetune").find_elements(
            By.CSS_SELECTOR, "#curves-finetune svg.main-svg")
        # the tune's readiness check audited the data: 20 tickets a label is below the minimum
        verdict = driver.find_element(By.ID, "audit-verdict").text
        assert verdict.startswith("Verdict on 60 examples") and "not ready" in verdict
        assert len(driver.find_elements(By.CSS_SELECTOR, "#audit tr")) > 5  # its checks

        # the hostile text is on the page as text, and none of it ran
        examples = driver.find_elements(By.CSS_SELECTOR, "#examples tbody tr")
        assert len(examples) == summary["split"]["test"]
        assert HOSTILE in examples[0].find_elements(By.CSS_SELECTOR, "td")[1].text
        assert driver.execute_script("return window.__pwned") is None
        assert driver.title.startswith("rung report")
        assert not driver.find_elements(By.CSS_SELECTOR, "#examples img")

        # filtered to disagreements, exactly the rows whose rungs answered differently
        disagree = sum(r.get_attribute("data-disagree") == "1" for r in examples)
        driver.find_element(By.ID, "only-disagreements").click()
        visible = [r for r in examples if r.is_displayed()]
        assert len(visible) == disagree
        assert driver.find_element(By.ID, "shown").text == str(disagree)
        driver.find_element(By.ID, "only-disagreements").click()  # all rows again
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "wrong-in")).select_by_value("prompt")
        wrong = [r for r in examples if "prompt" in r.get_attribute("data-wrong").split()]
        assert [r for r in examples if r.is_displayed()] == wrong
        column = 3 + names.index("prompt")  # after line, input, expected
        assert wrong and all("wrong" in r.find_elements(By.CSS_SELECTOR, "td")[column]
                             .get_attribute("class") for r in wrong)
        Select(driver.find_element(By.ID, "wrong-in")).select_by_value("")

        driver.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "report.png"
        driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        if os.environ.get("RUNG_SCREENSHOTS"):  # keep it where a person can look at it
            shutil.copy(shot, Path(os.environ["RUNG_SCREENSHOTS"]) / "report.png")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors  # a blocked script or a failed chart would show here
    finally:
        driver.quit()


def test_the_page_carries_dataset_text_only_escaped(tuned_run: tuple[Path, str]) -> None:
    folder, run_id = tuned_run
    store = Store(folder / ".rung")
    html = render_report(gather(store, run_id))
    assert HOSTILE not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned" in html  # the table, autoescaped
    # only the page's own two scripts run, and the policy names exactly them
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    assert len(scripts) == 2
    policy = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1])
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1]
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert not re.search(r'(src|href)="(https?:)?//', markup)  # nothing fetched: works offline


def test_cli_report_writes_where_asked_and_refuses_an_unknown_run(
        tuned_run: tuple[Path, str], tmp_path: Path) -> None:
    folder, run_id = tuned_run
    out = tmp_path / "mine.html"
    done = CliRunner().invoke(app, ["report", run_id, "--task", str(folder), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert out.exists() and str(out) in done.output
    missing = CliRunner().invoke(app, ["report", "19990101-000000-dead", "--task", str(folder)])
    assert missing.exit_code == 2
    assert "no run '19990101-000000-dead'" in missing.output and run_id in missing.output


def test_the_learning_curves_chart_draws_gradient_norms_on_their_own_axis() -> None:
    from rung.report.charts import learning_curves

    curve = [{"step": 1, "loss": 2.0, "grad_norm": 5.0}, {"step": 2, "eval_loss": 1.5},
             {"step": 3, "loss": 1.2, "grad_norm": 3.0}]
    fig = learning_curves("finetune", curve, best_step=2)
    traces = {t.name: t for t in fig.data}
    assert list(traces) == ["train loss", "val loss", "gradient norm"]
    assert traces["gradient norm"].yaxis == "y2" and list(traces["gradient norm"].y) == [5.0, 3.0]
    assert fig.layout.yaxis2.overlaying == "y" and traces["train loss"].yaxis == "y"


def test_a_report_shows_the_audit_its_run_climbed_on_not_a_later_one(tmp_path, fake_model):
    """Re-rendered after the data was audited again, the report still shows the audit the
    run's decision read; a run from before the summary named it gets the newest audit made
    no later than the run."""
    from datetime import datetime, timedelta

    from rung.data.audit.report import audit_dataset

    toml = write_task(tmp_path / "task")
    run_id = climb(toml).run_id
    store = Store(tmp_path / "task" / ".rung")
    run = store.run(run_id)
    used = json.loads(run["summary_json"])["audit"]["audit_id"]
    later, _ = audit_dataset(toml)  # `rung audit` again, after the run
    assert later.audit_id != used
    assert store.latest_audit(run["data_hash"])["id"] == later.audit_id
    assert gather(store, run_id).audit["audit_id"] == used

    # an older run's summary has no audit id: an audit made after it is not the one it used
    summary = json.loads(run["summary_json"])
    del summary["audit"]
    with store.conn:
        store.conn.execute("UPDATE runs SET summary_json = ? WHERE id = ?",
                           (json.dumps(summary), run_id))
        store.conn.execute("DELETE FROM audit_checks WHERE audit_id = ?", (later.audit_id,))
        store.conn.execute("DELETE FROM audits WHERE id = ?", (later.audit_id,))
    tomorrow = (datetime.fromisoformat(run["created"]) + timedelta(days=1)).isoformat()
    store.add_audit({**later.to_dict(), "audit_id": "tomorrow", "created": tomorrow},
                    data_hash=run["data_hash"])
    assert gather(store, run_id).audit["audit_id"] == used
    store.close()


def _zero_shot_wrong(prompt):
    """Zero-shot says BILLING; shown examples, it reads the label off the ticket."""
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


@pytest.fixture
def strict_run(tmp_path, fake_model) -> tuple[Path, str, dict]:
    """prompt (always BILLING) and few-shot (always right), decided by the interval's lower
    bound at a target prompt's point estimate reaches and its interval does not, with a
    min_gain few-shot's significant gain falls short of."""
    fake_model.rule = _zero_shot_wrong
    toml = write_task(tmp_path / "task", ladder={"skip": ["classifier"], "all": True},
                      fractions=(0.6, 0.2, 0.2))
    text = toml.read_text().replace("target = 0.9", "target = 0.3").replace(
        "[eval]\n", '[eval]\ndecide_on = "lower-bound"\nmin_gain = 0.9\n')
    toml.write_text(text)
    run_id = climb(toml).run_id
    store = Store(tmp_path / "task" / ".rung")
    summary = json.loads(store.run(run_id)["summary_json"])
    store.close()
    prompt, few_shot = summary["rungs"]
    # what the test is about: a point estimate at the target whose interval is below it, and
    # a significant gain below min_gain
    assert prompt["score"] >= 0.3 > prompt["ci"][0], prompt
    versus = few_shot["versus"]
    assert versus["significant"] and 0 < versus["difference"] < 0.9, versus
    return tmp_path / "task", run_id, summary


def _rung_row(html: str, rung: str) -> str:
    return re.search(rf'<tr [^>]*data-rung="{rung}">(.*?)</tr>', html, flags=re.S)[1]


def test_scores_are_coloured_by_the_rule_the_run_decides_by(strict_run) -> None:
    from rich.console import Console

    from rung.terminal import climb_table

    folder, run_id, summary = strict_run
    store = Store(folder / ".rung")
    html = render_report(gather(store, run_id))
    store.close()
    colour = r'<td class="num (?:score )?(ok|bad)">'  # the first: the score's
    assert re.search(colour, _rung_row(html, "prompt"))[1] == "bad"
    assert re.search(colour, _rung_row(html, "few-shot"))[1] == "ok"
    scores = list(climb_table(summary).columns[1].cells)
    assert scores[0].startswith("[red]") and scores[1].startswith("[green]")
    Console(record=True, width=200).print(climb_table(summary))  # the markup renders


def test_a_significant_gain_below_min_gain_is_not_called_not_significant(strict_run) -> None:
    folder, run_id, summary = strict_run
    store = Store(folder / ".rung")
    html = render_report(gather(store, run_id))
    store.close()
    verdict = re.search(r'<span class="(?:versus )?(\w+)">(.*?)</span>',
                        _rung_row(html, "few-shot"))
    # worded as the decision's headline words it (rung.decide)
    assert verdict.groups() == ("warn", "significant but below [eval] min_gain (0.9)")


MARKUP_LABELS = ["A<B & C>D", '<a href="https://example.com/">click</a>', "<b>bold</b>"]


def test_chart_labels_are_shown_as_text_not_plotly_markup(tmp_path, fake_model) -> None:
    """Plotly reads a category name as its own pseudo-HTML: `<a href=...>` became a live link
    in the confusion matrix and "A<B & C>D" read "AD". The labels are the data's, so the
    page shows them literally, as it shows the data everywhere else."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    records = [{"messages": [{"role": "user", "content": f"ticket {i} kind {j}"},
                             {"role": "assistant", "content": label}], "customer": f"c{i % 17}"}
               for i in range(12) for j, label in enumerate(MARKUP_LABELS)]
    # right on kinds 0 and 1, kind 2 taken for kind 0: every label is answered and expected
    fake_model.rule = lambda prompt: MARKUP_LABELS[
        {"1": 1}.get(prompt[-1].content.rsplit(" ", 1)[-1], 0)]
    toml = write_task(tmp_path / "task", records=records)
    toml.write_text(toml.read_text().replace(json.dumps(LABELS), json.dumps(MARKUP_LABELS)))
    run_id = climb(toml).run_id
    page = tmp_path / "task" / ".rung" / "artifacts" / run_id / "report.html"
    driver = browser(tmp_path)
    try:
        driver.get(page.as_uri())
        chart = driver.find_element(By.ID, "confusion-prompt")
        WebDriverWait(driver, 60).until(
            lambda d: chart.find_elements(By.CSS_SELECTOR, "g.xtick text"))
        ticks = {axis: [t.text for t in chart.find_elements(By.CSS_SELECTOR,
                                                             f"g.{axis}tick text")]
                 for axis in ("x", "y")}
        assert sorted(ticks["y"]) == sorted(MARKUP_LABELS), ticks
        assert sorted(ticks["x"]) == sorted(MARKUP_LABELS + ["(other)"]), ticks
        assert not driver.find_elements(By.CSS_SELECTOR, "div.chart a, div.chart svg a")
        assert not chart.find_elements(By.CSS_SELECTOR, "text [style*='bold']")
        # the hover text names the expected and answered labels (%{y}, %{x}) as text too
        driver.execute_script("Plotly.Fx.hover('confusion-prompt', {xval: 1, yval: 0})")
        said = WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "return document.querySelector('#confusion-prompt .hoverlayer').textContent"))
        assert f"expected {MARKUP_LABELS[0]}" in said and f"answered {MARKUP_LABELS[1]}" in said
        assert not driver.find_elements(By.CSS_SELECTOR, "div.chart a")
    finally:
        driver.quit()


def test_the_terminal_table_shows_latencies_under_10_ms_to_a_tenth(strict_run) -> None:
    from rung.terminal import climb_table

    _, _, summary = strict_run
    prompt, few_shot = summary["rungs"]
    prompt["latency_ms"] = {"p50": 2.7, "p95": 6.94, "p99": 7.0}
    few_shot["latency_ms"] = {"p50": 12.3, "p95": 140.6, "p99": 150.0}
    latencies = list(climb_table(summary).columns[3].cells)
    assert latencies == ["2.7/6.9", "12/141"]


def test_memory_to_serve_reads_in_a_unit_that_shows_it():
    """A TF-IDF classifier of 171,721 bytes read "0 MB" in the report."""
    from rung.report.render import _gb

    assert [_gb(n) for n in (171_721, 4_200_000, 270e6, None)] == ["172 kB", "4 MB", "0.27 GB", "-"]
