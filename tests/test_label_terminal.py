"""`cjm label` in a real pseudo-terminal, as a person runs it: keys go in one at a time, the
screen comes back, Ctrl-C is the terminal's interrupt. What ends up in the `label` table must be
exactly the decisions given (accept, change, undo, Ctrl-C, resume)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from journey.db import open_database
from tests.journey.test_labelling import add_conversations, corpus, stored_labels

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal"),
]


class Terminal:
    """`cjm ARGS` on the slave side of a pty; the test types on the master side."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CJM_")}
        env.update(COLUMNS="200", LINES="60", TERM="xterm")
        pid, fd = pty.fork()
        if pid == 0:  # the child: the CLI, with the pty as its controlling terminal
            # as in a person's shell: Ctrl-C interrupts (a test run started in the background
            # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.chdir(cwd)
            code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from cli import main; main()"
            os.execve(sys.executable, [sys.executable, "-c", code, *args], env)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.status: int | None = None

    def read_until(self, marker: bytes, count: int, timeout: float = 120.0) -> str:
        """Read until `marker` has appeared `count` times in the whole output."""
        deadline = time.monotonic() + timeout
        while self.output.count(marker) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {marker!r}:\n{self.screen()[-3000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                self.output += ANSI.sub(b"", chunk)
        return self.screen()

    def screen(self) -> str:
        return self.output.decode("utf-8", "replace")

    def type(self, key: bytes) -> None:
        os.write(self.fd, key)

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._drain()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._drain()
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"cjm label did not exit:\n{self.screen()[-3000:]}")

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                return
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += ANSI.sub(b"", chunk)


def last_shown(screen: str) -> tuple[str, str | None]:
    """(ticket id, predicted stage) of the newest screen."""
    tickets = re.findall(r"#\d+ · (\S+) · \d+ labelled", screen)
    predictions = re.findall(r"predicted (\w+ \(|no stage)", screen)
    assert tickets and predictions, screen[-2000:]
    stage = predictions[-1]
    return tickets[-1], None if stage == "no stage" else stage.removesuffix(" (")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "cjm.toml").write_text(
        '[database]\nurl = "sqlite:///cjm.db"\n\n[miner]\nembeddings = "none"\n', "utf-8"
    )
    return tmp_path


def test_label_in_a_terminal_accept_change_undo_ctrl_c_and_resume(workdir: Path) -> None:
    engine = open_database(f"sqlite:///{workdir / 'cjm.db'}")
    rows = [r for r in corpus() if r["stage"] in ("delivery", "purchase", "consideration")]
    ids = add_conversations(engine, [r["text"] for r in rows[:12]])
    args = ["--config", "cjm.toml", "label", "--batch", "4", "--labeller", "kim"]
    expected: list[tuple[int, str]] = []

    term = Terminal(args, workdir)
    prompts = 1
    screen = term.read_until(b"key> ", prompts)
    first, predicted = last_shown(screen)
    if predicted is None:  # nothing to accept: pick a stage instead
        term.type(b"5")
        expected.append((ids[first], "delivery"))
    else:
        term.type(b"\r")  # accept
        expected.append((ids[first], predicted))
    prompts += 1
    screen = term.read_until(b"key> ", prompts)
    second, _ = last_shown(screen)
    assert second != first
    term.type(b"4")  # change: consideration... then think again
    prompts += 1
    screen = term.read_until(b"key> ", prompts)
    term.type(b"u")  # undo: the second is back on screen, its label gone
    prompts += 1
    screen = term.read_until(b"key> ", prompts)
    assert last_shown(screen)[0] == second
    term.type(b"6")  # support
    expected.append((ids[second], "support"))
    prompts += 1
    term.read_until(b"key> ", prompts)
    term.type(b"\x03")  # Ctrl-C: the terminal's interrupt
    assert term.wait() == 130
    assert "2 labels stored" in term.screen()
    assert [(c, s) for c, s, *_ in stored_labels(engine)] == expected

    # resume: nothing labelled comes back; one more label, then q
    term = Terminal(args, workdir)
    screen = term.read_until(b"key> ", 1)
    third, _ = last_shown(screen)
    assert third not in (first, second)
    term.type(b"3")
    expected.append((ids[third], "consideration"))
    screen = term.read_until(b"key> ", 2)
    assert last_shown(screen)[0] not in (first, second, third)
    term.type(b"q")
    assert term.wait() == 0
    rows_stored = stored_labels(engine)
    assert [(c, s) for c, s, *_ in rows_stored] == expected
    assert {(origin, who) for *_, origin, who in rows_stored} == {("cjm label", "kim")}
    engine.dispose()


def test_label_without_a_terminal_is_a_usage_error(workdir: Path) -> None:
    import subprocess

    open_database(f"sqlite:///{workdir / 'cjm.db'}").dispose()
    result = subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "--config", "cjm.toml", "label"],
        cwd=workdir,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CJM_")},
            "PYTHONPATH": str(ROOT),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: cjm label needs a terminal (stdin is not a TTY)"
    ]
