"""`rung review` (issue 17): a real server process, a scripted reviewer in real headless
Chromium voting with the keyboard; votes stored append-only with the side each rung was on;
the sign test equals the closed form for the counts; hostile dataset text stays text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from math import comb
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import LABELS, free_port, ticket_records, write_task
from rung.cli import app
from rung.climb import climb
from rung.store import Store
from test_report import HOSTILE, browser

runner = CliRunner()


def _rule(prompt):
    """Zero-shot says BILLING; shown examples, it reads the label off the ticket."""
    if not any(m.role == "assistant" for m in prompt):
        return "BILLING"
    text = prompt[-1].content.lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def _climbed(tmp_path, fake_model, per_label: int = 12):
    """prompt and few-shot of the tickets task, climbed with `_rule`: (toml, run id)."""
    fake_model.rule = _rule
    toml = write_task(tmp_path / "task", records=ticket_records(per_label),
                      ladder={"skip": ["classifier"], "all": True}, fractions=(0.6, 0.2, 0.2))
    return toml, climb(toml).run_id


def _sign_test(wins: int, losses: int) -> float:
    n, k = wins + losses, min(wins, losses)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def test_a_reviewer_votes_with_the_keyboard_in_chromium(tmp_path, fake_model):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    fake_model.rule = _rule
    records = ticket_records(20)
    for r in records:
        r["messages"][0]["content"] += " " + HOSTILE
    toml = write_task(tmp_path / "task", records=records, ladder={"skip": ["classifier"],
                                                                    "all": True})
    run_id = climb(toml).run_id
    port = free_port()
    log = (tmp_path / "review.log").open("w")
    server = subprocess.Popen([sys.executable, "-c", "from rung.cli import main; main()",
                               "review", run_id, "--task", str(toml), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    driver = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    Path(log.name).read_text()
                time.sleep(0.2)
        driver = browser(tmp_path)
        driver.get(url)
        name = driver.find_element(By.ID, "reviewer")
        name.send_keys("ada", Keys.ENTER)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith("0 of "))
        total = int(driver.find_element(By.ID, "progress").text.split(" of ")[1].split()[0])
        # the reviewer prefers whichever answer is right (few-shot's), else calls a tie
        body = driver.find_element(By.TAG_NAME, "body")
        for done in range(total):
            wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith(
                f"{done} of "))
            expected = driver.find_element(By.ID, "expected").text
            left = driver.find_element(By.ID, "left").text
            right = driver.find_element(By.ID, "right").text
            assert HOSTILE.split("<script>")[0] in driver.find_element(By.ID, "input").text
            key = "t" if left == right else ("a" if left == expected else "b") \
                if expected in (left, right) else "s"
            body.send_keys(key)
        wait.until(lambda d: d.find_element(By.ID, "done").is_displayed())
        assert driver.execute_script("return window.__pwned") is None  # text, never run
        verdict = driver.find_element(By.ID, "verdict").text
        assert "reviewers preferred few-shot" in verdict
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
        log.close()

    store = Store(tmp_path / "task" / ".rung")
    votes = store.votes(run_id, "prompt", "few-shot")
    store.close()
    assert len(votes) == total and {v["reviewer"] for v in votes} == {"ada"}
    assert {v["left_rung"] for v in votes} == {"prompt", "few-shot"}  # both sides were drawn
    done = runner.invoke(app, ["review", run_id, "--task", str(toml), "--results", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    wins, losses = result["b_wins"], result["a_wins"]
    assert wins > 0 and wins + losses + result["ties"] + result["skips"] == total
    assert result["p_value"] == _sign_test(wins, losses)
    lo, hi = result["b_win_rate_ci"]
    assert lo <= result["b_win_rate"] <= hi


def test_two_reviewers_agreement_is_cohens_kappa(tmp_path, fake_model):
    from sklearn.metrics import cohen_kappa_score

    from rung.review import results

    _, run_id = _climbed(tmp_path, fake_model)
    store = Store(tmp_path / "task" / ".rung")
    ids = [p["example_id"] for p in store.predictions(run_id, "prompt")][:6]
    assert len(ids) == 6
    first, second = ["b", "b", "a", "tie", "b", "a"], ["b", "a", "a", "tie", "b", "b"]
    for reviewer, winners in (("ada", first), ("bob", second)):
        for item, winner in zip(ids, winners):
            store.add_vote(run_id, "prompt", "few-shot", item, reviewer, "a", "x", winner)
    summary = results(store, run_id, "prompt", "few-shot")
    store.close()
    assert summary["agreement"]["ada / bob"]["kappa"] == cohen_kappa_score(
        first, second, labels=["a", "b", "tie"])


def test_the_report_carries_the_human_verdict(tmp_path, fake_model):
    toml, run_id = _climbed(tmp_path, fake_model)
    store = Store(tmp_path / "task" / ".rung")
    ids = [p["example_id"] for p in store.predictions(run_id, "prompt")]
    for item in ids:
        store.add_vote(run_id, "prompt", "few-shot", item, "ada", "a", "right", "b")
    store.close()
    out = tmp_path / "report.html"
    done = runner.invoke(app, ["report", run_id, "--task", str(toml), "--out", str(out)])
    assert done.exit_code == 0, done.output
    page = out.read_text()
    assert (f"Human review:</strong> reviewers preferred few-shot on {len(ids)} of {len(ids)}"
            in page)


def test_review_on_new_inputs_asks_both_stored_pipelines(tmp_path, fake_model):
    from fastapi.testclient import TestClient

    from rung.review import create_app, items_for_inputs

    _, run_id = _climbed(tmp_path, fake_model, 8)
    inputs = tmp_path / "production.txt"
    inputs.write_text("a bug in the export\na feature request for dark mode\n")
    store = Store(tmp_path / "task" / ".rung")
    queue = items_for_inputs(store, tmp_path / "task", run_id, "prompt", "few-shot", inputs)
    store.close()
    assert [(q["a"], q["b"]) for q in queue] == [("BILLING", "BUG"), ("BILLING", "FEATURE")]
    client = TestClient(create_app(tmp_path / "task" / ".rung", run_id, "prompt", "few-shot",
                                   queue))
    first = client.get("/api/next", params={"reviewer": "ada"}).json()
    assert first["input"] == "a bug in the export" and first["progress"]["total"] == 2
    side = "left" if first["left"] == "BUG" else "right"
    assert client.post("/api/vote", json={"reviewer": "ada", "item": first["item"],
                                          "choice": side}).json() == {"ok": True}
    assert client.get("/api/next", params={"reviewer": "ada"}).json()["input"] == \
        "a feature request for dark mode"


def test_results_before_any_vote_say_there_are_none_and_how_to_vote(tmp_path, fake_model):
    toml, run_id = _climbed(tmp_path, fake_model, per_label=6)
    done = runner.invoke(app, ["review", run_id, "--task", str(toml), "--results"])
    assert done.exit_code == 0, done.output
    assert "no review votes yet on few-shot against prompt" in done.stdout
    said = " ".join(done.stdout.split())  # rich wraps it to the terminal
    assert f"rung review {run_id}" in said and "0 of 0" not in said
    bogus = runner.invoke(app, ["review", run_id, "--task", str(toml), "--rungs",
                                "prompt,bogus", "--results"])
    assert bogus.exit_code == 2 and "has no answers of rung 'bogus'" in bogus.stderr
    assert "prompt, few-shot" in bogus.stderr  # what it did measure


def test_identical_test_examples_are_each_a_row_and_an_item(tmp_path, fake_model):
    """An example's id is a hash of its content: a data file holding a ticket twice scores
    both copies on test, and the side-by-side table and the review queue show both."""
    from rung.report.gather import gather
    from rung.review import items

    fake_model.rule = _rule
    records = ticket_records(12)
    records += [dict(r) for r in records]  # every ticket twice, same customer: same split
    toml = write_task(tmp_path / "task", records=records,
                      ladder={"skip": ["classifier"], "all": True})
    run_id = climb(toml).run_id
    store = Store(tmp_path / "task" / ".rung")
    stored = list(store.predictions(run_id, "prompt"))
    ids = [p["example_id"] for p in stored]
    assert len(set(ids)) < len(ids)  # copies are on test, each scored
    rows = gather(store, run_id).examples
    assert sorted((r.example_id, r.line) for r in rows) == sorted(
        (p["example_id"], p["line"]) for p in stored)
    queue = items(store, run_id, "prompt", "few-shot")
    assert len(queue) == len(stored) and len({q["item"] for q in queue}) == len(stored)
    assert [q["item"] for q in queue if "@" not in q["item"]] == list(dict.fromkeys(ids))
    store.close()


def test_votes_on_new_inputs_are_counted_apart_from_the_test_set(tmp_path, fake_model):
    """`rung review --inputs` judges other questions than the test split the run measured:
    its votes are results of their own, and the run's report counts the test set's only."""
    from fastapi.testclient import TestClient

    from rung.review import create_app, items_for_inputs, results

    toml, run_id = _climbed(tmp_path, fake_model, 8)
    inputs = tmp_path / "production.txt"
    inputs.write_text("a bug in the export\na feature request for dark mode\n")
    store = Store(tmp_path / "task" / ".rung")
    queue = items_for_inputs(store, tmp_path / "task", run_id, "prompt", "few-shot", inputs)
    tests = [p["example_id"] for p in store.predictions(run_id, "prompt")][:3]
    for item in tests:  # on the test set, ada prefers prompt
        store.add_vote(run_id, "prompt", "few-shot", item, "ada", "a", "left", "a")
    store.close()
    client = TestClient(create_app(tmp_path / "task" / ".rung", run_id, "prompt", "few-shot",
                                   queue))
    for _ in queue:  # on the new inputs, few-shot (the right answers)
        shown = client.get("/api/next", params={"reviewer": "ada"}).json()
        side = "left" if shown["left"] != "BILLING" else "right"
        assert client.post("/api/vote", json={"reviewer": "ada", "item": shown["item"],
                                              "choice": side}).json() == {"ok": True}
    finished = client.get("/api/next", params={"reviewer": "ada"}).json()
    assert (finished["results"]["b_wins"], finished["results"]["a_wins"]) == (2, 0)

    store = Store(tmp_path / "task" / ".rung")
    test_set = results(store, run_id, "prompt", "few-shot")
    store.close()
    assert (test_set["items"], test_set["a_wins"], test_set["b_wins"]) == (3, 3, 0)
    assert (test_set["inputs"]["items"], test_set["inputs"]["b_wins"]) == (2, 2)
    done = runner.invoke(app, ["review", run_id, "--task", str(toml), "--results"])
    said = " ".join(done.stdout.split())
    assert "few-shot on 0 of 3 items" in said and "few-shot on 2 of 2 new inputs" in said

    out = tmp_path / "report.html"
    done = runner.invoke(app, ["report", run_id, "--task", str(toml), "--out", str(out)])
    assert done.exit_code == 0, done.output
    page = out.read_text()
    assert "reviewers preferred few-shot on 0 of 3 items and prompt on 3" in page
    assert "new inputs" not in page


def test_the_review_server_takes_votes_from_its_own_page_only(tmp_path, fake_model):
    """A page on any other site may POST to a loopback port: a text/plain body (no CORS
    preflight), JSON from a foreign Origin, or a rebound name in Host must all be refused
    over real HTTP, and only the page's own vote stored."""
    from conftest import wait_until_serving

    toml, run_id = _climbed(tmp_path, fake_model, 6)
    store = Store(tmp_path / "task" / ".rung")
    item = next(store.predictions(run_id, "prompt"))["example_id"]
    store.close()
    port = free_port()
    log = tmp_path / "review.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-c", "from rung.cli import main; main()",
                                   "review", run_id, "--task", str(toml), "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    own = f"http://127.0.0.1:{port}"
    body = json.dumps({"reviewer": "mallory", "item": item, "choice": "left"}).encode()

    def post(headers: dict[str, str]) -> int:
        request = urllib.request.Request(own + "/api/vote", data=body, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as refused:
            return refused.code

    try:
        wait_until_serving(own + "/", server, log)
        assert post({"Content-Type": "text/plain", "Origin": "http://evil.example"}) == 415
        assert post({"Content-Type": "text/plain"}) == 415
        assert post({"Content-Type": "application/json", "Origin": "http://evil.example"}) == 403
        assert post({"Content-Type": "application/json", "Origin": "null"}) == 403
        rebound = {"Content-Type": "application/json", "Host": f"evil.example:{port}",
                   "Origin": f"http://evil.example:{port}"}
        assert post(rebound) == 403
        assert post({"Content-Type": "application/json; charset=utf-8", "Origin": own}) == 200
        assert post({"Content-Type": "application/json", "Host": f"localhost:{port}",
                     "Origin": f"http://localhost:{port}"}) == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = Store(tmp_path / "task" / ".rung")
    votes = store.votes(run_id, "prompt", "few-shot")
    store.close()
    assert len(votes) == 2 and {v["reviewer"] for v in votes} == {"mallory"}


def test_the_report_separates_each_pair_of_reviewers_agreement(tmp_path, fake_model):
    toml, run_id = _climbed(tmp_path, fake_model)
    store = Store(tmp_path / "task" / ".rung")
    ids = [p["example_id"] for p in store.predictions(run_id, "prompt")][:4]
    for reviewer, winners in (("ada", "bbab"), ("bob", "bbaa"), ("cy", "abab")):
        for item, winner in zip(ids, winners):
            store.add_vote(run_id, "prompt", "few-shot", item, reviewer, "a", "x", winner)
    store.close()
    out = tmp_path / "report.html"
    done = runner.invoke(app, ["report", run_id, "--task", str(toml), "--out", str(out)])
    assert done.exit_code == 0, done.output
    said = re.search(r"agreement (.*?)</p>", out.read_text())[1]
    assert re.fullmatch(r"ada / bob kappa \S+ \(\d+% agreed\); ada / cy kappa \S+ \(\d+% agreed\); "
                        r"bob / cy kappa \S+ \(\d+% agreed\)", said), said


def test_a_review_served_on_every_address_prints_one_a_browser_can_open(tmp_path, fake_model):
    """--host 0.0.0.0 printed http://0.0.0.0:PORT/, which a browser sends as its Host and the
    page's own-host rule refuses (403); it prints the loopback address, and that opens."""
    _, run_id = _climbed(tmp_path, fake_model, 8)
    port = free_port()
    log_path = tmp_path / "review.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", "from rung.cli import main; main()", "review", run_id,
             "--task", str(tmp_path / "task"), "--host", "0.0.0.0", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "open http://" not in log_path.read_text():
                assert server.poll() is None and time.monotonic() < deadline, \
                    log_path.read_text()
                time.sleep(0.2)
            url = re.search(r"open (http://\S+/)", log_path.read_text())[1]
            assert url == f"http://127.0.0.1:{port}/"
            while True:
                try:
                    page = urllib.request.urlopen(url, timeout=2)
                    break
                except urllib.error.URLError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            assert page.status == 200
        finally:
            server.terminate()
            server.wait(timeout=30)


def _label_of(body):
    """The fake vendor's answer: the label the last message names (BILLING by default)."""
    text = body["messages"][-1]["content"].lower()
    return next((label for label in LABELS if label.lower() in text), "BILLING")


def test_review_on_new_inputs_asks_the_server_the_task_names(tmp_path):
    """`rung review --inputs` builds both pipelines as `rung serve` does: rung.toml's
    [models] settings are in force, so production inputs go to the server the task names
    now (here it moved after the climb) and to no other."""
    from fake_api import FakeVendorAPI
    from rung.review import items_for_inputs

    before, now = FakeVendorAPI(answer=_label_of).start(), FakeVendorAPI(answer=_label_of).start()
    try:
        toml = write_task(tmp_path / "task", model="openai:tiny", records=ticket_records(6),
                          ladder={"all": True, "skip": ["classifier", "rag", "bigger-model",
                                                        "finetune"]},
                          extra=f'\n[models.openai]\nbase_url = "{before.url}/v1"\n'
                                'api_key_env = ""\n')
        run_id = climb(toml).run_id
        toml.write_text(toml.read_text().replace(before.url, now.url))
        asked_before = len(before.requests)
        inputs = tmp_path / "production.txt"
        inputs.write_text("jane.doe@example.com: the export is a bug\n")
        store = Store(toml.parent / ".rung")
        try:
            queue = items_for_inputs(store, toml.parent, run_id, "prompt", "few-shot", inputs)
        finally:
            store.close()
    finally:
        before.stop()
        now.stop()
    assert [(q["a"], q["b"]) for q in queue] == [("BUG", "BUG")]
    assert len(before.requests) == asked_before  # not one request to the old server
    assert {r.body["messages"][-1]["content"] for r in now.requests} == {
        "jane.doe@example.com: the export is a bug"}


def test_agreement_of_reviewers_who_always_give_one_verdict_is_valid_json(tmp_path, fake_model):
    """Two reviewers who both prefer B on every item: kappa is 0/0 there, so it is None
    with their raw agreement (1.0) beside it; the finished page and --results --json carry
    strict JSON (no NaN, which a browser's JSON.parse refuses)."""
    from fastapi.testclient import TestClient

    from rung.review import create_app

    toml, run_id = _climbed(tmp_path, fake_model, per_label=6)
    store = Store(tmp_path / "task" / ".rung")
    ids = [p["example_id"] for p in store.predictions(run_id, "prompt")]
    for reviewer in ("ann", "bob"):
        for item in ids:
            store.add_vote(run_id, "prompt", "few-shot", item, reviewer, "a", "right", "b")
    store.close()
    client = TestClient(create_app(tmp_path / "task" / ".rung", run_id, "prompt", "few-shot"))
    finished = client.get("/api/next", params={"reviewer": "ann"})
    assert finished.status_code == 200
    page = json.loads(finished.text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert page["results"]["agreement"] == {"ann / bob": {"items": len(ids), "kappa": None,
                                                          "agreement": 1.0}}
    done = runner.invoke(app, ["review", run_id, "--task", str(toml), "--results", "--json"])
    assert done.exit_code == 0, done.output
    json.loads(done.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))


def _votes(tmp_path: Path, run_id: str) -> list:
    store = Store(tmp_path / "task" / ".rung")
    try:
        return list(store.votes(run_id, "prompt", "few-shot"))
    finally:
        store.close()


def test_a_vote_counts_for_the_reviewer_the_item_was_shown_to(tmp_path, fake_model):
    """The side order depends on the reviewer's name: a name edited after an item loaded
    (without pressing Enter) must not take that item's vote, or left and right would be
    read in the other's order."""
    import threading

    import uvicorn
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from rung.review import create_app, left_is_a

    _, run_id = _climbed(tmp_path, fake_model, per_label=6)
    server = uvicorn.Server(uvicorn.Config(
        create_app(tmp_path / "task" / ".rung", run_id, "prompt", "few-shot"),
        host="127.0.0.1", port=free_port(), log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    driver = None
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
        driver = browser(tmp_path)
        driver.get(f"http://127.0.0.1:{server.config.port}/")
        name = driver.find_element(By.ID, "reviewer")
        name.send_keys("ann", Keys.ENTER)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_element(By.ID, "progress").text.startswith("0 of "))
        shown = driver.find_element(By.ID, "left").text
        name.send_keys("e")  # "anne", not yet started
        driver.execute_script("document.activeElement.blur()")
        driver.find_element(By.TAG_NAME, "body").send_keys("a")  # ann: the left is better
        # the page then loads anne's first item: her progress, 0 of N, says nothing
        wait.until(lambda d: _votes(tmp_path, run_id))
    finally:
        if driver is not None:
            driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
    store = Store(tmp_path / "task" / ".rung")
    [vote] = store.votes(run_id, "prompt", "few-shot")
    salt = store.run(run_id)["split_hash"]
    answers = {p["example_id"]: p["output"] for p in store.predictions(run_id, "prompt")}
    store.close()
    assert vote["reviewer"] == "ann"
    a_left = left_is_a(vote["example_id"], "ann", salt)
    assert vote["winner"] == ("a" if a_left else "b")
    if a_left:
        assert shown == answers[vote["example_id"]]
