"""`cjm app package`: the apps as shipped pass the vendors' documented manifest rules (checked in
Python: the vendors' validators need an account and the network), and each rule really bites."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from journey.apps_package import default_apps_dir
from tests.cli_run import run


def test_both_apps_package_into_upload_zips(tmp_path: Path, capsys) -> None:
    code, out, err = run(["app", "package", "zendesk", "--out", str(tmp_path / "z.zip")], capsys)
    assert code == 0, err
    assert "checked" in out
    names = set(zipfile.ZipFile(tmp_path / "z.zip").namelist())
    assert {
        "manifest.json",
        "translations/en.json",
        "assets/iframe.html",
        "assets/map.html",
        "assets/zendesk.js",
        "assets/sidebar.js",
        "assets/sidebar.css",
        "assets/icon_nav_bar.svg",
    } <= names
    code, _, err = run(["app", "package", "freshdesk", "--out", str(tmp_path / "f.zip")], capsys)
    assert code == 0, err
    names = set(zipfile.ZipFile(tmp_path / "f.zip").namelist())
    assert {
        "manifest.json",
        "config/iparams.json",
        "config/requests.json",
        "app/index.html",
        "app/map.html",
        "app/scripts/freshdesk.js",
        "app/scripts/sidebar.js",
        "app/styles/sidebar.css",
        "app/styles/images/icon.svg",
    } <= names
    assert not [n for n in names if n.endswith(".py")]


def test_packaging_is_deterministic(tmp_path: Path, capsys) -> None:
    for name in ("a.zip", "b.zip"):
        assert run(["app", "package", "zendesk", "--out", str(tmp_path / name)], capsys)[0] == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _param(name: str) -> Callable[[dict], dict]:
    def pick(manifest: dict) -> dict:
        return next(p for p in manifest["parameters"] if p["name"] == name)

    return pick


ZENDESK_BREAKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "no author": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m.pop("author")),
        "lacks author",
    ),
    "old framework": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m.update(frameworkVersion="1.0")),
        "frameworkVersion",
    ),
    "missing asset": (
        lambda d: (d / "assets" / "iframe.html").unlink(),
        "location.support.ticket_sidebar: assets/iframe.html is not in the package",
    ),
    "http location": (
        lambda d: _edit_json(
            d / "manifest.json",
            lambda m: m["location"]["support"].update(ticket_sidebar="http://cjm.example/x"),
        ),
        "must be https",
    ),
    "unknown location": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: m["location"]["support"].update(side_panel="assets/x")
        ),
        "location.support.side_panel: unknown location",
    ),
    "secret not secure": (
        lambda d: _edit_json(
            d / "manifest.json",
            lambda m: [_param("shared_secret")(m).pop(k) for k in ("secure", "scopes")],
        ),
        "shared_secret: looks like a secret",
    ),
    "secure without scopes": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: _param("shared_secret")(m).pop("scopes")
        ),
        "needs scopes",
    ),
    "bad scope": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: _param("shared_secret")(m).update(scopes=["anywhere"])
        ),
        "scopes must be among",
    ),
    "bad parameter type": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: _param("cjm_url")(m).update(type="link")
        ),
        "type 'link'",
    ),
    "secret with a default": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: _param("shared_secret")(m).update(default="x")
        ),
        "must not ship a default",
    ),
    "no translations": (lambda d: (d / "translations" / "en.json").unlink(), "en.json is missing"),
    "nav_bar icon": (lambda d: (d / "assets" / "icon_nav_bar.svg").unlink(), "icon_nav_bar.svg"),
    "insecure request": (
        lambda d: (d / "assets" / "extra.js").write_text('fetch("http://cjm.example/")'),
        "insecure http://",
    ),
    "python inside": (lambda d: (d / "assets" / "x.py").write_text("print(1)"), "no Python"),
}

FRESHDESK_BREAKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "platform 2": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m.update({"platform-version": "2.3"})),
        "platform-version",
    ),
    "common alone": (
        lambda d: _edit_json(d / "manifest.json", lambda m: m["modules"].pop("support_ticket")),
        "common cannot stand alone",
    ),
    "missing page": (lambda d: (d / "app" / "index.html").unlink(), "app/index.html is not"),
    "token not secure": (
        lambda d: _edit_json(
            d / "config" / "iparams.json", lambda m: m["cjm_token"].update(secure=False)
        ),
        "cjm_token: looks like a secret",
    ),
    "undeclared template": (
        lambda d: _edit_json(
            d / "manifest.json", lambda m: m["modules"]["common"]["requests"].pop("getJourneyMap")
        ),
        "must name the same templates",
    ),
    "host with scheme": (
        lambda d: _edit_json(
            d / "config" / "requests.json",
            lambda m: m["getTicketView"]["schema"].update(host="https://cjm.example.com"),
        ),
        "bare host name",
    ),
    "undeclared iparam": (
        lambda d: _edit_json(
            d / "config" / "requests.json",
            lambda m: m["getTicketView"]["schema"].update(path="/x/<%= iparam.nope %>"),
        ),
        "iparam.nope is not declared",
    ),
    "no app client": (
        lambda d: (d / "app" / "map.html").write_text("<html><body></body></html>"),
        "must load the app client",
    ),
}


def _copy_apps(tmp_path: Path) -> Path:
    apps = tmp_path / "apps"
    shutil.copytree(default_apps_dir(), apps)
    return apps


@pytest.mark.parametrize("case", list(ZENDESK_BREAKS))
def test_zendesk_rule_violations_fail_with_one_line(tmp_path: Path, capsys, case: str) -> None:
    apps = _copy_apps(tmp_path)
    breaker, says = ZENDESK_BREAKS[case]
    breaker(apps / "zendesk")
    out = tmp_path / "z.zip"
    code, _, err = run(
        ["app", "package", "zendesk", "--out", str(out), "--apps-dir", str(apps)], capsys
    )
    assert code == 2
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("case", list(FRESHDESK_BREAKS))
def test_freshdesk_rule_violations_fail_with_one_line(tmp_path: Path, capsys, case: str) -> None:
    apps = _copy_apps(tmp_path)
    breaker, says = FRESHDESK_BREAKS[case]
    breaker(apps / "freshdesk")
    out = tmp_path / "f.zip"
    code, _, err = run(
        ["app", "package", "freshdesk", "--out", str(out), "--apps-dir", str(apps)], capsys
    )
    assert code == 2
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_out_must_be_a_zip(tmp_path: Path, capsys) -> None:
    code, _, err = run(["app", "package", "zendesk", "--out", str(tmp_path / "z.tar")], capsys)
    assert code == 2 and ".zip" in err
