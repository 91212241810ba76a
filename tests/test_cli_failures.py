"""Every command against every failure we can provoke: a damaged store, a file where the
store's folder should be, no room to write, no memory, a bug. Each ends in a message and exit
2, never a traceback, and writes nothing half (issue 14, finding 4)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ticket_records, write_task
from rung.cli import app
from rung.climb import climb

runner = CliRunner()


def _commands(task: Path, run_id: str, tmp: Path) -> dict[str, list[str]]:
    """One invocation of every command that touches a task's store."""
    t = str(task.parent)
    return {
        "climb": ["climb", t], "eval": ["eval", t, "--rung", "prompt"], "runs": ["runs", t],
        "report": ["report", run_id, "--task", t],
        "export": ["export", run_id, "--task", t, "--rung", "classifier", "--out",
                   str(tmp / "exported")],
        "tune": ["tune", t], "audit": ["audit", t],
    }


def _ends_in_a_message(done, *words: str) -> None:
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert "Traceback" not in done.output and done.stderr.startswith("error: ")
    for word in words:
        assert word in done.stderr, done.stderr


def test_a_damaged_store_is_a_message_for_every_command(tmp_path, fake_model):
    task = write_task(tmp_path / "task", ladder={}, extra="\n[finetune]\nrank = 4\n")
    run_id = climb(task).run_id
    (tmp_path / "task" / ".rung" / "runs.db").write_bytes(b"this is not a database" * 100)
    for name, args in _commands(task, run_id, tmp_path).items():
        _ends_in_a_message(runner.invoke(app, args), "runs.db", "move .rung/runs.db aside")


def test_a_file_where_the_store_folder_goes_is_a_message(tmp_path, fake_model):
    task = write_task(tmp_path / "task")
    (tmp_path / "task" / ".rung").write_text("not a folder")
    for name, args in _commands(task, "20260101-000000-abcd", tmp_path).items():
        done = runner.invoke(app, args)
        if name == "runs":  # nothing to list: said so, exit 0
            assert done.exit_code == 0 and "no runs yet" in done.stderr
            continue
        _ends_in_a_message(done, "a file stands where a folder should be")


LIMITED = """
import resource, signal, sys
from rung.cli import main
kind, amount = sys.argv[1], int(sys.argv[2])
if kind == "disk":  # a write past the limit fails with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (amount, resource.RLIM_INFINITY))
else:  # no more than `amount` MiB of address space beyond what is mapped now
    with open("/proc/self/statm") as fh:
        mapped = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + amount * 2**20, resource.RLIM_INFINITY))
sys.argv = ["rung"] + sys.argv[3:]
main()
"""


def _limited(tmp_path: Path, kind: str, amount: int, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "limited.py"
    script.write_text(textwrap.dedent(LIMITED))
    return subprocess.run([sys.executable, str(script), kind, str(amount), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


def _big(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "big.jsonl"
    with path.open("w") as fh:
        for r in ticket_records(n):
            r["messages"][0]["content"] += " padding" * 60
            fh.write(json.dumps(r) + "\n")
    return path


@pytest.mark.parametrize("command", ["convert", "audit-fix", "report", "export"])
def test_no_room_to_write_is_a_message_and_leaves_nothing_half_written(tmp_path, fake_model,
                                                                       command):
    task = write_task(tmp_path / "task", ladder={}, records=ticket_records(40))
    run_id = climb(task).run_id
    data, out = tmp_path / "task" / "tickets.jsonl", tmp_path / "out"
    args = {"convert": ["convert", str(data), str(out) + ".jsonl", "--to", "sharegpt"],
            "audit-fix": ["audit", str(data), "--fix", str(out) + ".jsonl", "--skip",
                          "diversity", "--skip", "token-lengths"],
            "report": ["report", run_id, "--task", str(task), "--out", str(out) + ".html"],
            "export": ["export", run_id, "--task", str(task), "--rung", "classifier",
                       "--out", str(out)]}[command]
    done = _limited(tmp_path, "disk", 2000, *args)
    assert done.returncode == 2, done.stderr[-3000:]
    # the file being written says "File too large"; the store (WAL mode writes runs.db-shm
    # when it opens) says "disk I/O error", as SQLite words it
    assert "Traceback" not in done.stderr
    assert "File too large" in done.stderr or "runs.db) could not be written" in done.stderr
    assert "free disk space" in done.stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def test_running_out_of_memory_is_a_message(tmp_path):
    big = _big(tmp_path, 3000)  # 9,000 examples, ~5 MB
    done = _limited(tmp_path, "memory", 30, "convert", str(big), str(tmp_path / "o.jsonl"),
                    "--to", "sharegpt")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "error: out of memory" in done.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_a_bug_is_a_message_that_says_so_and_debug_shows_the_traceback(monkeypatch, capsys):
    import typer

    from rung.cli.shared import user_errors

    with pytest.raises(typer.Exit) as code:
        with user_errors():
            raise TypeError("unsupported operand")
    assert code.value.exit_code == 2
    said = capsys.readouterr().err
    assert "internal error in rung (TypeError: unsupported operand)" in said
    assert "RUNG_DEBUG=1" in said and "Traceback" not in said
    monkeypatch.setenv("RUNG_DEBUG", "1")
    with pytest.raises(TypeError):
        with user_errors():
            raise TypeError("unsupported operand")


def test_no_command_writes_over_the_store_the_task_or_its_data_even_with_force(tmp_path,
                                                                                fake_model):
    """The store, rung.toml and the data are what every command reads: a --markdown, --out or
    --fix that names one is refused, --force or not, and the file is as it was. A gate summary
    rung wrote is replaced without --force (CI writes it on every push); any other existing
    file needs --force."""
    task = write_task(tmp_path / "task", ladder={})
    run_id = climb(task).run_id
    folder = tmp_path / "task"
    store, data = folder / ".rung" / "runs.db", folder / "tickets.jsonl"
    before = {p: p.read_bytes() for p in (store, task, data)}
    for args in (["gate", str(folder), "--baseline", run_id, "--candidate", run_id,
                  "--markdown", str(store)],
                 ["gate", str(folder), "--baseline", run_id, "--candidate", run_id,
                  "--markdown", str(task), "--force"],
                 ["report", run_id, "--task", str(folder), "--out", str(store), "--force"],
                 ["report", run_id, "--task", str(folder), "--out", str(data), "--force"],
                 ["convert", str(data), str(task), "--to", "csv", "--force"],
                 ["audit", str(folder), "--fix", str(store), "--force"]):
        done = runner.invoke(app, args)
        _ends_in_a_message(done, "rung never writes over", "write to a new path")
    assert {p: p.read_bytes() for p in (store, task, data)} == before
    # a user's own file needs --force; a summary the gate wrote does not
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    gate = ["gate", str(folder), "--baseline", run_id, "--candidate", run_id, "--markdown",
            str(notes)]
    _ends_in_a_message(runner.invoke(app, gate), "exists and rung did not write it", "--force")
    assert notes.read_text() == "my notes"
    assert runner.invoke(app, gate + ["--force"]).exit_code == 0
    assert runner.invoke(app, gate).exit_code == 0  # now it is the gate's own summary
    assert notes.read_text().startswith("**rung gate passes**")


def test_a_report_of_an_unknown_run_makes_no_folder_anywhere(tmp_path, fake_model):
    task = write_task(tmp_path / "task", ladder={})
    climb(task)
    artifacts = tmp_path / "task" / ".rung" / "artifacts"
    before = sorted(p.name for p in artifacts.iterdir())
    for run in ("NOPE", "a/b/c", "../../../escape"):
        _ends_in_a_message(runner.invoke(app, ["report", run, "--task", str(task)]),
                           f"no run '{run}'")
    assert sorted(p.name for p in artifacts.iterdir()) == before
    assert not (tmp_path / "escape").exists() and not (tmp_path / "task" / "escape").exists()


def test_a_task_folder_moved_or_copied_serves_its_own_saved_models(tmp_path, fake_model):
    """The classifier a climb saved lives in the task's .rung folder; stored pipelines name it
    by the absolute path of the time. Moved, the folder's runs still export and check; copied,
    the copy uses its own files, never the original's."""
    import shutil

    task = write_task(tmp_path / "a", ladder={})
    run_id = climb(task).run_id
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("ticket about billing number 3\nticket about bug number 4\n")
    exported = runner.invoke(app, ["export", run_id, "--task", str(tmp_path / "b"), "--rung",
                                   "classifier", "--out", str(tmp_path / "e")])
    assert exported.exit_code == 0, exported.output
    checked = runner.invoke(app, ["check", run_id, "--task", str(tmp_path / "b"), "--rung",
                                  "classifier", "--inputs", str(inputs), "--json"])
    assert checked.exit_code in (0, 1), checked.output  # it ran: a verdict, not a lost file
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    shutil.rmtree(tmp_path / "b" / ".rung" / "classifiers")  # the original's files are gone
    copied = runner.invoke(app, ["export", run_id, "--task", str(tmp_path / "c"), "--rung",
                                 "classifier", "--out", str(tmp_path / "e2")])
    assert copied.exit_code == 0, copied.output


def test_rerooting_moves_only_the_runs_own_saved_models(tmp_path):
    """A path under the recorded task's .rung is the run's own: it follows the folder. A model
    in another task's .rung (a tune used as a base) is left alone; without a record of where
    the task was, a path moves only when it is gone and the same file is here."""
    from rung.pipeline import rerooted

    was, now, other = tmp_path / "a", tmp_path / "b", tmp_path / "other"
    own = str(was / ".rung" / "classifiers" / "k1")
    assert rerooted(own, now, was) == str(now / ".rung" / "classifiers" / "k1")
    base = str(other / ".rung" / "tunes" / "k2" / "artifact")
    assert rerooted(base, now, was) == base
    assert rerooted("smollm2-135m-instruct", now, was) == "smollm2-135m-instruct"
    (now / ".rung" / "classifiers" / "k1").mkdir(parents=True)
    assert rerooted(own, now) == str(now / ".rung" / "classifiers" / "k1")  # gone, here
    (other / ".rung" / "tunes" / "k2" / "artifact").mkdir(parents=True)
    assert rerooted(base, now) == base  # still there: left alone


def test_a_gate_summary_from_before_the_mark_is_still_the_gates_own(tmp_path):
    from rung.compare import is_gate_summary

    old = tmp_path / "old.md"
    old.write_text("**rung gate passes**: finetune of `r2` scores 0.900 ...\n")
    mine = tmp_path / "mine.md"
    mine.write_text("# my notes\n")
    assert is_gate_summary(old) and not is_gate_summary(mine)


def test_asking_the_wrong_thing_is_refused_before_any_work(tmp_path, fake_model):
    """Each of these used to do expensive work first (or crash): a tune of a served model
    (the prompt rung's requests sent, then refused), a ladder with every rung left out (a
    bug after the audit), a gate against a baseline that is not there (a whole climb
    first), and --dry-run beside options it would ignore."""
    toml = write_task(tmp_path / "t", extra=textwrap.dedent("""\
        [finetune]
        method = "lora"
        """))
    text = toml.read_text()
    # a closed port: a request would end in a connection error, not in the refusal below
    toml.write_text(text.replace('small = "fake"', 'small = "openai:gpt-4o-mini"\n'
                                 'max_retries = 0') + textwrap.dedent("""\
        [models.openai]
        base_url = "http://127.0.0.1:9/v1"
        api_key_env = ""
        """))
    small_line = next(i for i, line in enumerate(toml.read_text().splitlines(), 1)
                      if line.strip().startswith("small = "))
    for args in (["tune", str(toml)], ["eval", str(toml), "--rung", "finetune", "--force"]):
        done = runner.invoke(app, args)
        _ends_in_a_message(done, f"rung.toml:{small_line}: [models] small is a remote model",
                           "hosted fine-tuning is not supported")
    toml.write_text(text.replace('skip = ["classifier"]',
                                 'skip = ["classifier", "prompt", "few-shot"]'))
    done = runner.invoke(app, ["climb", str(toml)])  # the tune is out once the audit calls
    assert done.exit_code == 2 and "Traceback" not in done.output, done.output  # data unready
    assert "error: " in done.stderr and "no rung is left to measure" in done.stderr
    assert "finetune: the audit" in done.stderr
    counted = runner.invoke(app, ["climb", str(toml), "--dry-run", "--json"])
    assert counted.exit_code == 0 and json.loads(counted.stdout)["total"]["requests"] == 0
    assert json.loads(counted.stdout)["estimate"].startswith("no rung this climb measures "
                                                             "sends a request")
    toml.write_text(text.replace('skip = ["classifier"]',
                                 'skip = ["classifier", "prompt", "few-shot"]')
                    .replace('method = "lora"', "").replace("[finetune]", ""))
    for args in (["climb", str(toml)], ["climb", str(toml), "--dry-run"]):
        _ends_in_a_message(runner.invoke(app, args), "no rung is left to measure",
                           "rag: no [task] corpus", "finetune: no [finetune] table")
    assert not (toml.parent / ".rung" / "runs.db").exists() or not json.loads(
        runner.invoke(app, ["runs", str(toml), "--json"]).stdout)  # no run was started
    toml.write_text(text)
    _ends_in_a_message(runner.invoke(app, ["gate", str(toml), "--baseline", "nosuch"]),
                       "no run 'nosuch'")
    assert fake_model.calls == []  # refused before a climb asked the model anything
    for flag in (["--tune", "nosuch"], ["--budget", "1"]):
        _ends_in_a_message(runner.invoke(app, ["climb", str(toml), "--dry-run", *flag]),
                           f"{flag[0]} would change nothing there")
