"""miner/ stays pure: no helpdesk, database or HTTP imports of its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import miner

MINER = Path(miner.__file__).resolve().parent
FORBIDDEN = {
    "connectors",
    "journey",
    "cli",
    "httpx",
    "requests",
    "sqlmodel",
    "sqlalchemy",
    "urllib",
    "socket",
    "http",
    "torch",
}


def test_public_surface() -> None:
    assert set(miner.__all__) >= {
        "ConversationMiner",
        "MessageIn",
        "Prediction",
        "Taxonomy",
        "TaxonomyError",
        "clean_message",
        "customer_text",
        "default_taxonomy",
        "load_taxonomy",
        "redact",
    }
    for name in miner.__all__:
        assert hasattr(miner, name), name


def test_miner_source_imports_nothing_forbidden() -> None:
    for path in MINER.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_miner_loads_no_other_package_of_ours() -> None:
    # (spaCy itself pulls in requests/httpx for its CLI; that is not ours to change.) spaCy's
    # thinc also imports torch whenever it is installed (the quality extra), so torch is made
    # unimportable here: an eager torch / sentence-transformers import of ours then fails.
    code = (
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "import miner, miner.models, miner.classify, miner.discovery\n"
        "bad = [m for m in ('connectors', 'journey', 'cli', 'sqlmodel', 'torch',"
        " 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
