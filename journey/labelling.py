"""The labelling loop's journey side: which conversations to ask about, and where the answers go.

`cjm model suggest` (:func:`suggest_file`) and `cjm label` (:func:`run_label`) share one path:
candidates (the database's unlabelled conversations, or a JSON Lines file) → the model's scores →
:func:`miner.select_for_labelling` (uncertainty with diversity) → the picks, with the model's
prediction and a reason. Labels given in the terminal go to the `label` table, one transaction
per decision (a Ctrl-C loses nothing already answered), with who (`labeller`), when
(`created_at`) and where from (`origin = "cjm label"`); `cjm model train` reads them with every
other label (`database_labels`).

Already-labelled conversations are never suggested: those with a row in the `label` table, and
ids or texts in the `--labels` file. Identical texts are suggested once.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from rich.console import Console
from rich.markup import escape
from sqlalchemy import delete, exists
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from journey.db import session_scope
from journey.errors import ConfigError
from journey.modeling import LabelledSet, database_labels, iter_jsonl, read_labels
from journey.models import Conversation, Label, Source
from journey.store import conversation_texts
from miner import (
    AdaptedModel,
    ConversationMiner,
    JourneyModel,
    Prediction,
    Taxonomy,
    TextFeatures,
    cross_validate,
    detect_language,
    select_for_labelling,
    strategy_for,
    train,
)

ORIGIN = "cjm label"
POOL = 5000
BATCH = 500
#: Keys that toggle themes, in taxonomy order (q, s and u are commands).
THEME_KEYS = "abcdefghijklmnoprtvwxyz"
MAX_SHOWN_CHARS = 1500
HELP = "Enter accept · 1-9 stage · letters toggle themes · s skip · u undo · q quit"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An unlabelled conversation: its id as people see it (`source:ticket` for the database,
    the file's `id` otherwise), its customer text, and its row in the database (if any)."""

    id: str
    text: str
    conversation_id: int | None = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    candidate: Candidate
    prediction: Prediction
    reason: str
    uncertainty: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON Lines shape of `cjm model suggest`."""
        return {
            "id": self.candidate.id,
            "text": self.candidate.text,
            "stage": self.prediction.stage,
            "stage_confidence": round(float(self.prediction.stage_confidence), 4),
            "themes": list(self.prediction.themes),
            "reason": self.reason,
        }


def _key(text: str) -> str:
    return " ".join(text.lower().split())


# ---- candidates --------------------------------------------------------------------------------


def file_candidates(path: Path, *, limit: int = POOL, seed: int = 0) -> list[Candidate]:
    """Lines of a JSON Lines file with "id" and "text"; a seeded sample of `limit` when longer."""
    rows: list[Candidate] = []
    for number, row in iter_jsonl(path):
        if "id" not in row or not isinstance(row.get("text"), str):
            raise ConfigError(f'{path}:{number} needs "id" and a "text" string')
        rows.append(Candidate(id=str(row["id"]), text=row["text"]))
    if len(rows) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[int(i)] for i in keep]
    return rows


def database_candidates(
    engine: Engine,
    *,
    source: str | None = None,
    limit: int = POOL,
    exclude: Sequence[int] = (),
) -> list[Candidate]:
    """The newest `limit` conversations with customer text and no label yet (any origin)."""
    with session_scope(engine) as session:
        query = (
            select(Conversation.id, Conversation.external_id, Source.name)
            .join(Source, col(Source.id) == Conversation.source_id)
            .where(Conversation.deleted.is_(False))  # type: ignore[attr-defined]
            .where(~exists().where(col(Label.conversation_id) == Conversation.id))
        )
        if source is not None:
            if session.execute(select(Source.id).where(Source.name == source)).first() is None:
                raise ConfigError(f"--source {source!r}: no such source in the database")
            query = query.where(Source.name == source)
        if exclude:
            query = query.where(Conversation.id.not_in(list(exclude)))  # type: ignore[union-attr]
        rows = session.execute(
            query.order_by(Conversation.id.desc()).limit(limit)  # type: ignore[union-attr]
        ).all()
        texts = conversation_texts(session, [cid for cid, _, _ in rows])
    return [
        Candidate(id=f"{name}:{external}", text=texts[cid], conversation_id=cid)
        for cid, external, name in rows
        if texts.get(cid, "").strip()
    ]


# ---- selection -----------------------------------------------------------------------------------


def suggest(
    miner: ConversationMiner,
    candidates: Sequence[Candidate],
    n: int,
    *,
    exclude_ids: Sequence[str] = (),
    exclude_texts: Sequence[str] = (),
    seed: int = 0,
) -> list[Suggestion]:
    """The `n` candidates whose labels should teach `miner`'s model most, best first.

    Never one whose id or text is excluded (already labelled), never the same text twice, and
    only texts in a language the miner labels. The excluded texts (the labelled ones, at most
    `POOL` of them) are scored too, so the selection knows which kinds of tickets are covered."""
    ids, texts = set(exclude_ids), {_key(t) for t in exclude_texts}
    labelled = [*exclude_texts, *(c.text for c in candidates if c.id in ids)]
    texts |= {_key(t) for t in labelled}
    pool: list[Candidate] = []
    for c in candidates:
        key = _key(c.text)
        if not key or c.id in ids or key in texts:
            continue
        language = detect_language(c.text)
        if language is not None and language not in miner.languages:
            continue
        texts.add(key)
        ids.add(c.id)
        pool.append(c)
    if not pool or n <= 0:
        return []
    covered = [t for t in dict.fromkeys(labelled) if t.strip()][-POOL:]
    scored = [c.text for c in pool] + covered
    model = miner.model
    stage_proba, theme_proba, rows = [], [], []
    for start in range(0, len(scored), BATCH):
        _, _, _, scores, out = model.decide(
            scored[start : start + BATCH], stage_threshold=miner.abstain_below
        )
        stage_proba.append(out.stage_proba)
        theme_proba.append(scores)
        rows.append(out.analysis.X_doc)
    picks = select_for_labelling(
        np.vstack(stage_proba),
        sp.vstack(rows).tocsr(),
        n,
        theme_scores=np.vstack(theme_proba),
        theme_thresholds=model.theme_thresholds_,
        stage_names=[str(s) for s in model.stages_],
        theme_names=[str(t) for t in model.themes_],
        exclude=np.arange(len(scored)) >= len(pool),
        strategy=strategy_for(model),
        seed=seed,
    )
    predictions = miner.predict([pool[p.index].text for p in picks])
    return [
        Suggestion(pool[p.index], prediction, p.reason, p.uncertainty)
        for p, prediction in zip(picks, predictions, strict=True)
    ]


def suggest_file(
    miner: ConversationMiner,
    taxonomy: Taxonomy,
    *,
    n: int,
    output: Path,
    input_path: Path | None = None,
    engine: Engine | None = None,
    source: str | None = None,
    labels_path: Path | None = None,
    seed: int = 0,
    pool: int = POOL,
) -> int:
    """`cjm model suggest`: write the `n` best conversations to label as JSON Lines."""
    if n < 1:
        raise ConfigError("--n must be at least 1")
    if (input_path is None) == (engine is None):
        raise ConfigError("pass exactly one of --input FILE and --from-db")
    if source is not None and engine is None:
        raise ConfigError("--source needs --from-db")
    labelled = read_labels(labels_path, taxonomy) if labels_path is not None else LabelledSet()
    if engine is not None:
        candidates = database_candidates(engine, source=source, limit=pool)
        _extend(labelled, database_labels(engine, taxonomy))
    else:
        assert input_path is not None
        candidates = file_candidates(input_path, limit=pool, seed=seed)
    picks = suggest(
        miner, candidates, n, exclude_ids=labelled.ids, exclude_texts=labelled.texts, seed=seed
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    with partial.open("w", encoding="utf-8") as out:
        for suggestion in picks:
            out.write(json.dumps(suggestion.to_dict(), ensure_ascii=False) + "\n")
    partial.replace(output)
    return len(picks)


def _extend(labels: LabelledSet, more: LabelledSet) -> None:
    for i, text in enumerate(more.texts):
        labels.add(more.ids[i], text, more.stages[i], more.themes[i])


# ---- labels ------------------------------------------------------------------------------------


def store_label(
    engine: Engine,
    conversation_id: int,
    stage: str | None,
    themes: Sequence[str],
    labeller: str,
    origin: str = ORIGIN,
) -> int:
    """One decision, committed on its own; returns the label's id."""
    with session_scope(engine) as session:
        row = Label(
            conversation_id=conversation_id,
            origin=origin,
            stage=stage,
            themes=list(themes),
            labeller=labeller,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def delete_label(engine: Engine, label_id: int) -> None:
    with session_scope(engine) as session:
        session.execute(delete(Label).where(Label.id == label_id))  # type: ignore[arg-type]


# ---- background retraining -----------------------------------------------------------------------


@dataclass
class Retrainer:
    """Retrains on all labels in a thread; keeps the cross-validated stage macro-F1 per run."""

    taxonomy: Taxonomy
    embeddings: str | None = "wordllama"
    folds: int = 5
    seed: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    _thread: threading.Thread | None = None
    _model: JourneyModel | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, labels: LabelledSet) -> bool:
        """Start a run on `labels` (read by the caller's thread); False if one is running."""
        if self.running or len(labels) < 2:
            return False
        self._thread = threading.Thread(
            target=self._run, args=(labels,), name="cjm-label-retrain", daemon=True
        )
        self._thread.start()
        return True

    def _run(self, labels: LabelledSet) -> None:
        try:
            features = TextFeatures(embeddings=self.embeddings)
            scores = cross_validate(
                labels.texts,
                labels.stages,
                labels.themes,
                self.taxonomy,
                mode="supervised",
                cv=min(self.folds, len(labels)),
                features=features,
                random_state=self.seed,
            )
            model = train(
                labels.texts,
                labels.stages,
                labels.themes,
                self.taxonomy,
                mode="supervised",
                features=features,
                random_state=self.seed,
            )
        except Exception as exc:  # noqa: BLE001 - shown in the loop; labelling goes on
            with self._lock:
                self.error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self.curve.append((len(labels), float(scores["stage"]["macro_f1"])))
            self._model = model

    def take_model(self) -> JourneyModel | None:
        """The newest model trained since the last call (None if none)."""
        with self._lock:
            model, self._model = self._model, None
        return model

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


# ---- the terminal loop ----------------------------------------------------------------------


@dataclass
class LabelSummary:
    stored: int = 0
    skipped: int = 0
    undone: int = 0
    interrupted: bool = False
    exhausted: bool = False
    curve: list[tuple[int, float]] = field(default_factory=list)


KeyReader = Callable[[], str]


@dataclass
class _Step:
    suggestion: Suggestion
    stage: str | None
    themes: list[str]


def label_loop(
    engine: Engine,
    miner: ConversationMiner,
    *,
    read_key: KeyReader,
    console: Console,
    labeller: str,
    source: str | None = None,
    batch: int = 20,
    retrain_every: int = 20,
    retrainer: Retrainer | None = None,
    extra_labels: LabelledSet | None = None,
    pool: int = POOL,
    seed: int = 0,
) -> LabelSummary:
    """Ask about conversations in `suggest` order until the person quits, presses Ctrl-C or
    nothing is left. Keys: Enter/space accept, 1-9 pick a stage (and save), letters toggle
    themes, s skip, u undo, q quit, ? help. Every `retrain_every` labels a background run
    retrains on all labels; the next batch is chosen with that model."""
    taxonomy = miner.taxonomy
    stages = list(taxonomy.stage_names)[:9]
    themes = list(taxonomy.theme_names)[: len(THEME_KEYS)]
    theme_keys = dict(zip(THEME_KEYS, themes, strict=False))
    summary = LabelSummary()
    shown: list[_Step] = []
    history: list[tuple[int, int | None]] = []  # (position, label id or None for a skip)
    position = 0
    message = ""
    since_retrain = 0

    def next_batch() -> list[_Step]:
        nonlocal miner
        fresh = retrainer.take_model() if retrainer is not None else None
        if fresh is not None:
            miner = ConversationMiner(taxonomy, model=fresh, abstain_below=miner.abstain_below)
        seen = [s.suggestion.candidate.conversation_id for s in shown]
        candidates = database_candidates(
            engine, source=source, limit=pool, exclude=[c for c in seen if c is not None]
        )
        labelled = database_labels(engine, taxonomy)
        if extra_labels:
            _extend(labelled, extra_labels)
        picks = suggest(
            miner,
            candidates,
            batch,
            exclude_ids=labelled.ids,
            exclude_texts=labelled.texts,
            seed=seed + len(shown),
        )
        return [_Step(p, p.prediction.stage, list(p.prediction.themes)) for p in picks]

    try:
        while True:
            if position == len(shown):
                more = next_batch()
                if not more:
                    summary.exhausted = True
                    console.print("nothing left to label here", highlight=False)
                    break
                shown.extend(more)
            step = shown[position]
            _render(console, step, position, stages, theme_keys, message, summary, retrainer)
            message = ""
            key = read_key()
            if key in ("\r", "\n", " "):
                if step.stage is None:
                    message = f"no stage predicted: press 1-{len(stages)} to pick one"
                    continue
                chosen: str | None = step.stage
            elif key.isdigit() and 1 <= int(key) <= len(stages):
                chosen = stages[int(key) - 1]
            elif key in theme_keys:
                name = theme_keys[key]
                step.themes = (
                    [t for t in step.themes if t != name]
                    if name in step.themes
                    else [t for t in themes if t in step.themes or t == name]
                )
                continue
            elif key == "s":
                history.append((position, None))
                summary.skipped += 1
                position += 1
                continue
            elif key == "u":
                if not history:
                    message = "nothing to undo"
                    continue
                position, label_id = history.pop()
                if label_id is None:
                    summary.skipped -= 1
                else:
                    delete_label(engine, label_id)
                    summary.stored -= 1
                    since_retrain -= 1
                summary.undone += 1
                undone = shown[position]
                undone.stage = undone.suggestion.prediction.stage
                undone.themes = list(undone.suggestion.prediction.themes)
                message = "undone"
                continue
            elif key == "?":
                message = HELP
                continue
            elif key in ("q", "\x04"):
                break
            elif key == "\x03":
                raise KeyboardInterrupt
            else:
                message = f"unknown key {key!r}: " + HELP
                continue
            conversation_id = step.suggestion.candidate.conversation_id
            assert conversation_id is not None
            label_id = store_label(engine, conversation_id, chosen, step.themes, labeller)
            step.stage = chosen
            history.append((position, label_id))
            summary.stored += 1
            since_retrain += 1
            position += 1
            if retrainer is not None and since_retrain >= retrain_every:
                labels = database_labels(engine, taxonomy)
                if extra_labels:
                    _extend(labels, extra_labels)
                if retrainer.start(labels):
                    since_retrain = 0
    except KeyboardInterrupt:
        summary.interrupted = True
    if retrainer is not None:
        summary.curve = list(retrainer.curve)
    return summary


def _render(
    console: Console,
    step: _Step,
    position: int,
    stages: list[str],
    theme_keys: dict[str, str],
    message: str,
    summary: LabelSummary,
    retrainer: Retrainer | None,
) -> None:
    s, p = step.suggestion, step.suggestion.prediction
    if console.is_terminal:
        console.clear()
    text = s.candidate.text
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + " …"
    console.rule(f"#{position + 1} · {s.candidate.id} · {summary.stored} labelled", style="dim")
    console.print(escape(text), highlight=False)
    console.print()
    predicted = f"{p.stage} ({p.stage_confidence:.2f})" if p.stage else "no stage (abstained)"
    console.print(f"[bold]predicted[/bold] {escape(predicted)} · {escape(s.reason)}")
    if p.evidence:
        quoted = " · ".join(f"“{e}”" for e in p.evidence)
        console.print(f"[dim]evidence[/dim] {escape(quoted)}")
    console.print(
        "[bold]stage[/bold]  "
        + "  ".join(
            f"[reverse]{k}:{name}[/reverse]" if name == step.stage else f"{k}:{name}"
            for k, name in enumerate(stages, start=1)
        )
    )
    console.print(
        "[bold]themes[/bold] "
        + "  ".join(
            f"[reverse]{k}:{name}[/reverse]" if name in step.themes else f"[dim]{k}:{name}[/dim]"
            for k, name in theme_keys.items()
        )
    )
    console.print(f"[dim]{HELP}[/dim]")
    if retrainer is not None:
        curve = " · ".join(f"{n} → {f:.2f}" for n, f in retrainer.curve) or "none yet"
        status = " (retraining…)" if retrainer.running else ""
        console.print(f"[dim]learning curve, CV stage macro-F1: {curve}{status}[/dim]")
        if retrainer.error:
            console.print(f"[red]retraining failed:[/red] {escape(retrainer.error)}")
    if message:
        console.print(f"[yellow]{escape(message)}[/yellow]")
    console.print("key> ", end="", highlight=False, markup=False)


@contextmanager
def terminal_keys() -> Iterator[KeyReader]:
    """Single keystrokes from the terminal (cbreak mode: Ctrl-C still interrupts)."""
    if not sys.stdin.isatty():
        raise ConfigError("cjm label needs a terminal (stdin is not a TTY)")
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read_key() -> str:
        data = os.read(fd, 32)
        if not data:
            return "q"
        return data.decode("utf-8", "replace")[:1] if not data.startswith(b"\x1b") else ""

    try:
        yield read_key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_label(
    engine: Engine,
    miner: ConversationMiner,
    *,
    console: Console,
    source: str | None = None,
    batch: int = 20,
    labeller: str | None = None,
    retrain_every: int = 20,
    labels_path: Path | None = None,
    read_key: KeyReader | None = None,
) -> LabelSummary:
    """`cjm label`: the interactive loop over the database, with background retraining."""
    if batch < 1:
        raise ConfigError("--batch must be at least 1")
    if retrain_every < 1:
        raise ConfigError("--retrain-every must be at least 1")
    who = labeller or getpass.getuser()
    extra = read_labels(labels_path, miner.taxonomy) if labels_path is not None else None
    model = miner.model
    base = model.base if isinstance(model, AdaptedModel) else model  # an adapted default model
    retrainer = Retrainer(miner.taxonomy, embeddings=base.features_.embeddings)
    options: dict[str, Any] = {
        "console": console,
        "labeller": who,
        "source": source,
        "batch": batch,
        "retrain_every": retrain_every,
        "retrainer": retrainer,
        "extra_labels": extra,
    }
    if read_key is not None:
        return label_loop(engine, miner, read_key=read_key, **options)
    with terminal_keys() as keys:
        return label_loop(engine, miner, read_key=keys, **options)
