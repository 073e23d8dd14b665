"""The default model's training corpus, as one list of labelled messages with their domain.

Three parts (licences and attributions: training/README.md):

* ``written``  our own messages, ``training/written/<domain>.jsonl`` (committed, Apache-2.0),
  written by the team to ``training/GUIDE.md``;
* ``public``   intents of public data sets mapped by ``training/public_mapping.toml``, built by
  ``training/build_public_corpus.py`` into ``training/build/public.jsonl`` (never committed);
* ``cfpb``     the CFPB complaint narratives in ``../shared/datasets/cfpb`` (read in place),
  labelled by ``bench/data/cfpb_mapping.toml``.

Every text goes through the sync path (``clean_message`` + ``redact``) so the model trains on
what it will see.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from miner import clean_message, redact  # noqa: E402

WRITTEN = ROOT / "training" / "written"
PUBLIC = ROOT / "training" / "build" / "public.jsonl"
CFPB = ROOT.parent / "shared" / "datasets" / "cfpb" / "complaints.jsonl"


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    stage: str | None
    themes: tuple[str, ...]
    domain: str
    source: str  # "written" | "public" | "cfpb"


def _prepare(text: str) -> str:
    return redact(clean_message(text))


def written(folder: Path = WRITTEN) -> list[Example]:
    out: list[Example] = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out.append(
                    Example(
                        _prepare(row["text"]),
                        row["stage"],
                        tuple(row["themes"]),
                        row.get("domain") or path.stem,
                        "written",
                    )
                )
    return out


#: Public sources the shipped model trains on. SGD (CC BY-SA 4.0) is mapped and buildable but
#: left out: whether share-alike reaches a model trained on it is unsettled, and cjm ships
#: under Apache-2.0 (training/README.md).
PUBLIC_SOURCES = frozenset({"clinc150", "hwu64"})


def public(path: Path = PUBLIC, sources: frozenset[str] = PUBLIC_SOURCES) -> list[Example]:
    if not path.exists():
        return []
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("source") not in sources:
                continue
            out.append(
                Example(
                    _prepare(row["text"]),
                    row["stage"],
                    tuple(row.get("themes", ())),
                    f"{row.get('source', 'public')}:{row['domain']}",
                    "public",
                )
            )
    return out


def cfpb(path: Path = CFPB) -> list[Example]:
    if not path.exists():
        return []
    sys.path.insert(0, str(ROOT / "bench"))
    from miner_quality import load_mapping, map_row  # bench/miner_quality.py

    rules = load_mapping()
    out: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        stage, themes = map_row(row, rules)
        out.append(Example(_prepare(row["narrative"]), stage, tuple(themes), "cfpb", "cfpb"))
    return out


def load(*, with_public: bool = True, with_cfpb: bool = True) -> list[Example]:
    """Every example, non-empty texts only (cleaning can empty a greeting-only message)."""
    rows = written() + (public() if with_public else []) + (cfpb() if with_cfpb else [])
    return [r for r in rows if r.text.strip()]
