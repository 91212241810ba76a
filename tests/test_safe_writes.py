"""No command writes over its input, or over a file it did not create unless --force, and
every write lands whole or not at all (issue 14, finding 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ticket_records, write_task
from rung.cli import app
from rung.climb import climb
from rung.errors import ConfigError
from rung.files import atomic_folder, atomic_write, claim

runner = CliRunner()


def _data(folder: Path, name: str = "data.jsonl") -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in ticket_records(5)))
    return path


def test_convert_never_writes_over_its_input(tmp_path):
    src = _data(tmp_path)
    before = src.read_bytes()
    for extra in ([], ["--force"]):
        done = runner.invoke(app, ["convert", str(src), str(src), "--to", "sharegpt", *extra])
        assert done.exit_code == 2 and "is the input" in done.stderr, done.output
        assert src.read_bytes() == before
    same = tmp_path / "sub" / ".." / "data.jsonl"  # the same file by another name
    (tmp_path / "sub").mkdir()
    done = runner.invoke(app, ["convert", str(src), str(same), "--to", "csv", "--force"])
    assert done.exit_code == 2 and src.read_bytes() == before


def test_convert_replaces_an_existing_output_only_with_force(tmp_path):
    src, dst = _data(tmp_path), tmp_path / "mine.csv"
    dst.write_text("a file of the user's\n")
    done = runner.invoke(app, ["convert", str(src), str(dst), "--to", "csv"])
    assert done.exit_code == 2 and f"{dst} exists\n" in done.stderr
    assert "--force" in done.stderr and dst.read_text() == "a file of the user's\n"
    done = runner.invoke(app, ["convert", str(src), str(dst), "--to", "csv", "--force"])
    assert done.exit_code == 0 and dst.read_text().startswith("input,output")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_convert_run_twice_does_not_say_the_file_it_wrote_is_not_its_own(tmp_path):
    """convert cannot tell its own output from a user's file, so it says only that the file
    exists, with the way on; it said "rung did not write it" of the file it had just written."""
    src, dst = _data(tmp_path), tmp_path / "out.jsonl"
    assert runner.invoke(app, ["convert", str(src), str(dst), "--to", "openai"]).exit_code == 0
    written = dst.read_bytes()
    done = runner.invoke(app, ["convert", str(src), str(dst), "--to", "openai"])
    assert done.exit_code == 2 and f"{dst} exists" in done.stderr, done.output
    assert "did not write" not in done.stderr and "--force" in done.stderr
    assert dst.read_bytes() == written
    done = runner.invoke(app, ["convert", str(src), str(dst), "--to", "openai", "--force"])
    assert done.exit_code == 0 and dst.read_bytes() == written


def test_audit_fix_never_touches_the_input_or_files_beside_out(tmp_path):
    # the input is what --fix OUT would call OUT's contradictions file
    src = _data(tmp_path, "clean.contradictions.jsonl")
    before = src.read_bytes()
    done = runner.invoke(app, ["audit", str(src), "--fix", str(tmp_path / "clean.jsonl"),
                               "--skip", "diversity", "--skip", "token-lengths", "--force"])
    assert done.exit_code == 2 and "is the input" in done.stderr, done.output
    assert src.read_bytes() == before and not (tmp_path / "clean.jsonl").exists()
    # a user's file where the log would go: refused before any work, named in the message
    other = _data(tmp_path, "data.jsonl")
    log = tmp_path / "out.fix.json"
    log.write_text("{}")
    done = runner.invoke(app, ["audit", str(other), "--fix", str(tmp_path / "out.jsonl")])
    assert done.exit_code == 2 and "out.fix.json exists" in done.stderr
    assert log.read_text() == "{}" and not (tmp_path / ".rung").exists()  # no audit ran
    done = runner.invoke(app, ["audit", str(other), "--fix", str(tmp_path / "out.jsonl"),
                               "--skip", "diversity", "--skip", "token-lengths", "--force"])
    assert done.exit_code == 0, done.output
    assert json.loads(log.read_text())["kept"] == 15


def test_audit_fix_where_nothing_can_be_written_is_refused_before_the_audit(tmp_path):
    src = _data(tmp_path)
    beside = _data(tmp_path, "notes.jsonl")  # a file where --fix would need a folder
    done = runner.invoke(app, ["audit", str(src), "--fix", str(beside / "clean" / "out.jsonl")])
    assert done.exit_code == 2, done.output
    assert "cannot be written" in done.stderr and "notes.jsonl is a file, not a folder" in \
        done.stderr and "a folder you may write to" in done.stderr
    assert not (tmp_path / ".rung").exists()  # refused before the audit's work


def test_report_out_replaces_only_its_own_page_unless_forced(tmp_path, fake_model):
    task = write_task(tmp_path / "task")
    run_id = climb(task).run_id
    page = tmp_path / "notes.html"
    page.write_text("<p>my notes</p>")
    args = ["report", run_id, "--task", str(task), "--out", str(page)]
    done = runner.invoke(app, args)
    assert done.exit_code == 2 and "exists and rung did not write it" in done.stderr
    assert page.read_text() == "<p>my notes</p>"
    assert runner.invoke(app, args + ["--force"]).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0  # now it is a rung report: replaced freely
    assert 'content="rung report"' in page.read_text()


def test_export_to_a_file_is_a_message_not_a_traceback(tmp_path, fake_model):
    task = write_task(tmp_path / "task", ladder={})
    run_id = climb(task).run_id
    target = tmp_path / "model.bin"
    target.write_text("user bytes")
    done = runner.invoke(app, ["export", run_id, "--task", str(task), "--rung", "classifier",
                               "--out", str(target)])
    assert done.exit_code == 2 and "is a file, not a folder" in done.stderr
    assert "Traceback" not in done.output and target.read_text() == "user bytes"


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write(tmp_path / "out.txt", "old")

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        with atomic_folder(tmp_path / "folder") as folder:
            (folder / "half.bin").write_bytes(b"x" * 10)
            raise Interrupted
    assert not (tmp_path / "folder").exists()
    with pytest.raises(TypeError):  # the data cannot be written: nothing replaces the file
        atomic_write(path, 12345)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_claim_names_every_refused_target_at_once(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("1")
    b.write_text("2")
    with pytest.raises(ConfigError) as info:
        claim([a, b, tmp_path], inputs=[a])
    message = str(info.value)
    assert "a.jsonl is the input" in message and "b.jsonl exists" in message
    assert "is a folder" in message


def test_export_options_that_contradict_each_other_are_refused(tmp_path, fake_model):
    task = write_task(tmp_path / "task", ladder={})
    run_id = climb(task).run_id
    for options, words in ((["--rung", "classifier", "--format", "vllm"], "--rung classifier"),
                           (["--merge", "--format", "vllm"], "drop --merge"),
                           (["--merge", "--format", "classifier"], "a classifier has none")):
        done = runner.invoke(app, ["export", run_id, "--task", str(task), "--out",
                                   str(tmp_path / "out"), *options])
        assert done.exit_code == 2 and words in done.stderr, (options, done.output)
        assert not (tmp_path / "out").exists()
