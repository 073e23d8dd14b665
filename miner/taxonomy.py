"""Journey stages and pain-point themes, as data.

A taxonomy is a TOML file with ordered ``[[stages]]`` and ``[[themes]]`` tables; each entry has a
snake_case ``name``, a ``label``, a ``description`` and ``examples``. The taxonomy-only miner learns
from the descriptions and examples alone. :func:`default_taxonomy` loads the one shipped with the
package (generic B2C / SaaS support).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Stage", "Taxonomy", "TaxonomyError", "Theme", "default_taxonomy", "load_taxonomy"]

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_KEYS = ("name", "label", "description", "examples")
#: Optional keys: ``same_as`` names the default taxonomy's stage(s) or theme(s) an entry means:
#: a renamed stage keeps what the default model learnt about it, and a list merges several.
_OPTIONAL = ("same_as",)


class TaxonomyError(ValueError):
    """A taxonomy file is unreadable or invalid; the message is one line naming the problem."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One journey stage."""

    name: str
    label: str
    description: str
    examples: tuple[str, ...]
    same_as: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Theme:
    """One pain-point theme."""

    name: str
    label: str
    description: str
    examples: tuple[str, ...]
    same_as: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Ordered journey stages and pain-point themes."""

    stages: tuple[Stage, ...]
    themes: tuple[Theme, ...]

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def theme_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.themes)

    @property
    def fingerprint(self) -> str:
        """A stable hash of the content (names, labels, descriptions, examples, order)."""
        payload = {
            "stages": [_entry_dict(s) for s in self.stages],
            "themes": [_entry_dict(t) for t in self.themes],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_toml(self) -> str:
        """The taxonomy as TOML that :func:`parse_taxonomy` reads back to an equal taxonomy
        (a model directory carries the taxonomy it was trained on in this form)."""
        lines: list[str] = []
        for table, entries in (("stages", self.stages), ("themes", self.themes)):
            for entry in entries:
                lines.append(f"[[{table}]]")
                for key, value in _entry_dict(entry).items():
                    if isinstance(value, list):
                        items = ",\n".join(
                            f"    {json.dumps(v, ensure_ascii=False)}" for v in value
                        )
                        lines.append(f"{key} = [\n{items},\n]" if value else f"{key} = []")
                    else:
                        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
                lines.append("")
        return "\n".join(lines)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def theme(self, name: str) -> Theme:
        for t in self.themes:
            if t.name == name:
                return t
        raise KeyError(name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "taxonomy") -> Taxonomy:
        """Build and validate a taxonomy from parsed TOML (``stages`` and ``themes`` tables)."""
        stages = tuple(
            Stage(**fields) for fields in _entries(data, "stages", source=source, required=True)
        )
        themes = tuple(
            Theme(**fields) for fields in _entries(data, "themes", source=source, required=False)
        )
        return cls(stages=stages, themes=themes)


def _entry_dict(entry: Stage | Theme) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": entry.name,
        "label": entry.label,
        "description": entry.description,
        "examples": list(entry.examples),
    }
    if entry.same_as:  # absent → fingerprints of older taxonomies stay the same
        out["same_as"] = list(entry.same_as)
    return out


def _entries(
    data: dict[str, Any], table: str, *, source: str, required: bool
) -> list[dict[str, Any]]:
    raw = data.get(table)
    if raw is None:
        if required:
            raise TaxonomyError(f"{source}: missing [[{table}]] tables")
        return []
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise TaxonomyError(f"{source}: '{table}' must be an array of tables ([[{table}]])")
    if required and not raw:
        raise TaxonomyError(f"{source}: [[{table}]] is empty")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw, start=1):
        where = f"{source}: [[{table}]] #{i}"
        for key in _KEYS:
            if key not in entry:
                raise TaxonomyError(f"{where}: missing key '{key}'")
        unknown = sorted(set(entry) - set(_KEYS) - set(_OPTIONAL))
        if unknown:
            raise TaxonomyError(f"{where}: unknown key '{unknown[0]}'")
        name = entry["name"]
        if not isinstance(name, str) or not _SNAKE.match(name):
            raise TaxonomyError(f"{where}: name {name!r} is not snake_case")
        where = f"{source}: [[{table}]] '{name}'"
        if name in seen:
            raise TaxonomyError(f"{source}: duplicate {table[:-1]} name '{name}'")
        seen.add(name)
        for key in ("label", "description"):
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise TaxonomyError(f"{where}: '{key}' must be a non-empty string")
        examples = entry["examples"]
        if not isinstance(examples, list) or not all(
            isinstance(x, str) and x.strip() for x in examples
        ):
            raise TaxonomyError(f"{where}: 'examples' must be a list of non-empty strings")
        same_as = entry.get("same_as", [])
        same_as = [same_as] if isinstance(same_as, str) else same_as
        if not isinstance(same_as, list) or not all(
            isinstance(x, str) and _SNAKE.match(x) for x in same_as
        ):
            raise TaxonomyError(
                f"{where}: 'same_as' must name one default {table[:-1]} or a list of them"
            )
        out.append(
            {
                "name": name,
                "label": entry["label"].strip(),
                "description": " ".join(entry["description"].split()),
                "examples": tuple(" ".join(x.split()) for x in examples),
                "same_as": tuple(same_as),
            }
        )
    return out


def parse_taxonomy(text: str, *, source: str = "taxonomy") -> Taxonomy:
    """Parse TOML text into a validated :class:`Taxonomy`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"{source}: bad TOML: {exc}") from exc
    return Taxonomy.from_dict(data, source=source)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Load and validate a taxonomy TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"{p}: cannot read taxonomy file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"{p}: not UTF-8 text") from exc
    return parse_taxonomy(text, source=str(p))


@cache
def default_taxonomy() -> Taxonomy:
    """The taxonomy shipped with the package (generic B2C / SaaS support)."""
    text = resources.files("miner").joinpath("default_taxonomy.toml").read_text(encoding="utf-8")
    return parse_taxonomy(text, source="default_taxonomy.toml")
