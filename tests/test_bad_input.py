"""Plausible bad input gets one line and the fix, never "internal error" (issue 16, item 3):
JSON Lines that are not UTF-8, a database file that is not SQLite or is damaged, `--out -` and
`--out DIR`, and Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from journey.db import open_database
from tests.cli_run import run


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)


def _config(tmp_path: Path, db: Path, base_url: str | None = None) -> Path:
    path = tmp_path / "cjm.toml"
    where = f'base_url = "{base_url}"' if base_url else 'subdomain = "acme"'
    path.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n\n[[sources]]\nname = "zd"\nkind = "zendesk"\n'
        f'{where}\nemail = "lead@acme.example"\ntoken_env = "CJM_TEST_TOKEN"\n',
        encoding="utf-8",
    )
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---- JSON Lines that are not UTF-8 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'{"id":"1","text":"ok"}\n{"id":"2","text":"caf\xe9 late \xff parcel"}\n',
            "latin1.jsonl:2 is not UTF-8 (byte 0xe9 at column 22): convert it, e.g. "
            "iconv -f latin1 -t utf-8 ",
        ),
        (
            bytes(random.Random(5).randrange(256) for _ in range(5000)),
            "latin1.jsonl:1 ",  # binary: NUL bytes or invalid UTF-8, named by line
        ),
    ],
    ids=["latin1", "binary"],
)
@pytest.mark.parametrize("command", ["train", "evaluate", "classify"])
def test_a_jsonl_file_that_is_not_utf8_names_the_line_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str, command: str
) -> None:
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(content)
    output = tmp_path / "out.jsonl"
    args = {
        "train": ["model", "train", "--labels", str(source), "--out", str(tmp_path / "m")],
        "evaluate": ["model", "evaluate", "--labels", str(source)],
        "classify": ["model", "classify", "--input", str(source), "--output", str(output)],
    }[command]
    code, _, err = run(["--quiet", *args], capsys)
    assert code == 2, err
    assert message in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 1
    assert not output.exists() and not list(tmp_path.glob(".*partial"))  # nothing half-written


def test_a_bom_on_the_first_line_is_fine(tmp_path: Path) -> None:
    from journey.modeling import iter_jsonl

    source = tmp_path / "bom.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"id": "1", "text": "hello"}\n')
    assert list(iter_jsonl(source)) == [(1, {"id": "1", "text": "hello"})]


# ---- a database file that is not SQLite, or is damaged ---------------------------------------


def _damaged_copy(tmp_path: Path) -> Path:
    """A real cjm database with random bytes written over 40 of its pages."""
    db = tmp_path / "damaged.db"
    open_database(f"sqlite:///{db}").dispose()
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA journal_mode=DELETE")
        raw.execute("CREATE TABLE filler (x TEXT)")
        raw.executemany("INSERT INTO filler VALUES (?)", [("x" * 300,) for _ in range(3000)])
    raw.close()
    data = bytearray(db.read_bytes())
    rng = random.Random(50)
    for page in range(20, 60):
        start = page * 4096 + 100
        data[start : start + 3000] = rng.randbytes(3000)
    db.write_bytes(bytes(data))
    return db


@pytest.mark.parametrize("kind", ["not sqlite", "damaged"])
@pytest.mark.parametrize(
    "command", [["map", "--format", "md"], ["themes", "top"], ["sync", "--no-writeback"]]
)
def test_a_database_that_is_not_sqlite_or_is_damaged_is_refused_untouched(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    command: list[str],
) -> None:
    monkeypatch.setenv("CJM_TEST_TOKEN", "t")
    if kind == "not sqlite":
        db = tmp_path / "notdb.db"
        db.write_text("import os\nprint('this is a Python file')\n", encoding="utf-8")
        expected = f"error: {db} is not a SQLite database: check [database].url"
    else:
        db = _damaged_copy(tmp_path)
        expected = f"error: {db} is a damaged SQLite database ("
    before = _md5(db)
    config = _config(tmp_path, db)
    code, out, err = run(["--config", str(config), *command], capsys)
    assert code == 2, err
    assert err.startswith(expected) and "restore the file from a backup" in err
    assert len(err.strip().splitlines()) == 1 and "sqlalche.me" not in err
    assert _md5(db) == before  # nothing was written
    assert not (tmp_path / "cjm-map").exists()


# ---- --out - and --out DIR -------------------------------------------------------------------


@pytest.fixture
def map_config(tmp_path: Path) -> Path:
    return _config(tmp_path, tmp_path / "cjm.db")


def test_out_dash_writes_the_map_to_stdout(
    map_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["--config", str(map_config), "map", "--format", "json", "--out", "-"], capsys
    )
    assert code == 0, err
    assert json.loads(out)["schema"] == "cjm.journey_map"  # only the map: pipe it to jq
    assert not (map_config.parent / "-").exists()


def test_out_dir_writes_inside_it_and_leaves_no_partial(
    map_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = map_config.parent / "maps"
    folder.mkdir()
    code, out, err = run(
        ["--config", str(map_config), "map", "--format", "md", "--out", str(folder)], capsys
    )
    assert code == 0, err
    assert out.strip() == str(folder / "journey-map.md")
    assert [p.name for p in folder.iterdir()] == ["journey-map.md"]


def test_an_unwritable_out_is_one_line_and_leaves_nothing(
    map_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = map_config.parent / "a-file"
    blocker.write_text("x", encoding="utf-8")
    target = blocker / "map.md"  # a file's "subdirectory": cannot be created
    code, _, err = run(["--config", str(map_config), "map", "--out", str(target)], capsys)
    assert code == 2
    assert err.startswith(f"error: cannot write the map to {target}: ")
    assert "internal error" not in err
    assert err.strip().endswith("part of that path is a file, not a directory (--out)")
    assert not [p for p in map_config.parent.iterdir() if "map" in p.name]  # no .partial


# ---- Ctrl-C ----------------------------------------------------------------------------------


def test_ctrl_c_is_one_line_and_exit_130(
    map_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import journey.runner

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(journey.runner, "run_map", interrupted)
    code, out, err = run(["--config", str(map_config), "map"], capsys)
    assert code == 130
    assert err == "interrupted: nothing stored was lost; run it again\n" and out == ""


# ---- a busy source ---------------------------------------------------------------------------


def test_a_busy_source_exits_75_so_cron_can_tell_busy_from_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from journey.lock import sync_lock

    monkeypatch.setenv("CJM_TEST_TOKEN", "t")
    db = tmp_path / "cjm.db"
    engine = open_database(f"sqlite:///{db}")
    config = _config(tmp_path, db)
    with sync_lock(engine, "zd"):  # another cjm sync holds the source
        code, _, err = run(["--config", str(config), "sync", "--lock-wait", "0.3"], capsys)
    engine.dispose()
    assert code == 75
    assert (
        "error: zd: another `cjm sync` (or a `cjm worker` batch) is already running for "
        "source 'zd' after waiting 0.3 s" in err
    )


def test_a_sync_waits_for_a_worker_batch_that_ends_soon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `cjm serve` worker batch holds the source for seconds: the nightly sync that starts
    meanwhile waits for it and then runs, instead of exiting 75 and skipping a night."""
    from journey.lock import sync_lock
    from simulator import ZendeskSimulator, create_zendesk_app, serve_in_thread

    monkeypatch.setenv("CJM_TEST_TOKEN", "sim-token")
    db = tmp_path / "cjm.db"
    engine = open_database(f"sqlite:///{db}")
    held, release = threading.Event(), threading.Event()

    def worker_batch() -> None:
        with sync_lock(engine, "zd"):
            held.set()
            release.wait(10)

    batch = threading.Thread(target=worker_batch)
    batch.start()
    assert held.wait(10)
    threading.Timer(0.5, release.set).start()  # the batch ends half a second later
    sim = ZendeskSimulator.generate(tickets=5, seed=1)
    with serve_in_thread(create_zendesk_app(sim)) as server:
        config = _config(tmp_path, db, base_url=server.url)
        code, out, err = run(
            ["--config", str(config), "sync", "--no-writeback", "--lock-wait", "20"], capsys
        )
    batch.join(10)
    engine.dispose()
    assert code == 0, err
    assert "zd: another sync or a `cjm worker` batch is writing this source" in out + err


# ---- model train --out and themes discover on an empty database ------------------------------


def test_model_train_never_replaces_a_folder_that_is_not_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"id": "1", "text": "where is my parcel", "stage": "delivery"}\n')
    precious = tmp_path / "notes.txt"
    precious.write_text("my notes", encoding="utf-8")
    code, _, err = run(
        ["--quiet", "model", "train", "--labels", str(labels), "--out", str(tmp_path)], capsys
    )
    assert code == 2
    assert f"--out {tmp_path} holds other files and is not a cjm model" in err
    assert precious.read_text(encoding="utf-8") == "my notes"


def test_discover_on_a_never_synced_database_says_sync_first(
    map_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--config", str(map_config), "themes", "discover"], capsys)
    assert code == 1 and out == ""
    assert "no classified conversations in the database yet: run `cjm sync` first" in err
