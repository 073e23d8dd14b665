"""`cjm model suggest` as an analyst runs it: a file or the database in, JSON Lines out, and
one-line usage errors (exit 2) for wrong option combinations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey.db import open_database
from tests.cli_run import run
from tests.journey.test_labelling import CONTRACT_KEYS, add_conversations, corpus


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CJM_CONFIG", "CJM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cjm.toml").write_text(
        '[database]\nurl = "sqlite:///cjm.db"\n\n[miner]\nembeddings = "none"\n', "utf-8"
    )
    return tmp_path


def test_suggest_from_a_file_skips_the_labels_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = corpus()
    (workdir / "in.jsonl").write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), "utf-8"
    )
    (workdir / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:40]), "utf-8")
    code, out, err = run(
        ["--config", "cjm.toml", "model", "suggest", "--n", "10", "--input", "in.jsonl",
         "--labels", "labels.jsonl", "--output", "ask.jsonl"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "10 suggestions written to ask.jsonl" in out
    lines = [json.loads(line) for line in (workdir / "ask.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and all(set(line) == CONTRACT_KEYS for line in lines)
    assert not {line["id"] for line in lines} & {r["id"] for r in rows[:40]}


def test_suggest_from_the_database(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = open_database(f"sqlite:///{workdir / 'cjm.db'}")
    ids = add_conversations(engine, [r["text"] for r in corpus()[:12]])
    engine.dispose()
    code, out, err = run(
        ["--config", "cjm.toml", "model", "suggest", "--n", "5", "--from-db", "--source",
         "acme", "--output", "ask.jsonl"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in (workdir / "ask.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and {line["id"] for line in lines} <= set(ids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "o.jsonl"], "error: pass exactly one of --input FILE and --from-db"),
        (
            ["--input", "in.jsonl", "--from-db", "--output", "o.jsonl"],
            "error: pass exactly one of --input FILE and --from-db",
        ),
        (
            ["--input", "in.jsonl", "--source", "acme", "--output", "o.jsonl"],
            "error: --source needs --from-db",
        ),
        (["--input", "missing.jsonl", "--output", "o.jsonl"], "error: cannot read missing.jsonl"),
    ],
)
def test_wrong_options_are_one_line_usage_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (workdir / "in.jsonl").write_text('{"id": "1", "text": "where is my parcel"}\n', "utf-8")
    code, _, err = run(["--config", "cjm.toml", "model", "suggest", "--n", "3", *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith(message)
