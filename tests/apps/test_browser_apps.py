"""The agent apps, the live map and the labelling page in a real browser.

Headless Chromium (Debian's package, driven by Playwright from PyPI; never `playwright
install`) opens a fake helpdesk host page (tests/apps/fakehost.py) that embeds each app's page,
served from the packaged upload zip, and answers the ZAF / Freshworks client protocol; its
request proxy signs the JWT / fills the templates and calls a real `create_app(...)` served by
uvicorn on a localhost port, over a database filled by a real sync against the simulator.
Screenshots land in test-artifacts/ for people to look at.

Write-back of a correction is *immediate* here (the server has a connector factory): the test
checks the simulator's ticket, not only the outbox.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from journey.apps_package import package_app
from journey.db import make_engine, migrate, session_scope
from journey.label_web import ORIGIN as PAGE_ORIGIN
from journey.models import Classification, Conversation, Label, Person, Source
from journey.store import themes_of
from miner import default_taxonomy
from simulator import serve_in_thread
from tests.apps.conftest import (
    APP_SECRET,
    FRESHDESK_SOURCE,
    FRESHDESK_TOKEN,
    SOURCE,
    FreshdeskWorld,
    World,
    make_freshdesk_world,
    make_world,
)
from tests.apps.fakehost import HOST_DIR, Installation, create_host_app
from tests.journey_map.test_browser import _install_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SDK = "https://static.zdassets.com/**"
FAKE_SDK = HOST_DIR / "fake_zaf_sdk.js"
AGENT = "agent.jones@acme.example"
STAGE_LABELS = {s.name: s.label for s in default_taxonomy().stages}


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _install_chromium()
    if binary is None:
        pytest.skip(
            "headless Chromium is not installed and could not be (apt-get install chromium)"
        )
    return binary


@pytest.fixture(scope="module")
def browser(chromium: str, host: str) -> Iterator[Any]:
    """Started after the synced worlds and the servers (`host`): Playwright's sync API runs an
    event loop in this thread, after which the worlds' asyncio.run could not."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("apps-browser")


@pytest.fixture(scope="module")
def zworld(folder: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{folder / 'zendesk.db'}")
    migrate(engine)
    yield make_world(folder, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def fworld(folder: Path) -> Iterator[FreshdeskWorld]:
    engine = make_engine(f"sqlite:///{folder / 'freshdesk.db'}")
    migrate(engine)
    yield make_freshdesk_world(folder, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def zserver(zworld: World) -> Iterator[str]:
    with serve_in_thread(zworld.app(write_now=True)) as server:
        yield server.url


@pytest.fixture(scope="module")
def fserver(fworld: FreshdeskWorld) -> Iterator[str]:
    with serve_in_thread(fworld.app()) as server:
        yield server.url


def _unpacked(vendor: str, folder: Path) -> Path:
    target = folder / f"{vendor}-app"
    if not target.exists():
        package_app(vendor, folder / f"{vendor}.zip")
        zipfile.ZipFile(folder / f"{vendor}.zip").extractall(target)
    return target


@pytest.fixture(scope="module")
def installs(folder: Path, zserver: str, fserver: str) -> dict[str, Installation]:
    return {
        "zendesk": Installation(
            vendor="zendesk",
            app_dir=_unpacked("zendesk", folder),
            settings={"cjm_url": zserver, "cjm_source": SOURCE, "shared_secret": APP_SECRET},
            secure={"shared_secret"},
        ),
        "freshdesk": Installation(
            vendor="freshdesk",
            app_dir=_unpacked("freshdesk", folder),
            settings={
                "cjm_host": fserver.removeprefix("http://"),
                "cjm_source": FRESHDESK_SOURCE,
                "cjm_token": FRESHDESK_TOKEN,
            },
            secure={"cjm_token"},
        ),
    }


@pytest.fixture(scope="module")
def host(installs: dict[str, Installation]) -> Iterator[str]:
    with serve_in_thread(create_host_app(installs)) as server:
        yield server.url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    context.route(
        SDK, lambda route: route.fulfill(path=str(FAKE_SDK), content_type="text/javascript")
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_app(page: Any, host: str, vendor: str, location: str = "ticket_sidebar") -> Any:
    page.goto(f"{host}/host/page?vendor={vendor}&location={location}")
    return page.frame_locator("#app-frame")


def stored(
    engine: Any, *, stage_is_none: bool = False
) -> list[tuple[Conversation, Classification]]:
    """Classified, writable conversations, those of customers with most conversations first."""
    with session_scope(engine) as session:
        where = (
            Classification.stage.is_(None) if stage_is_none else Classification.stage.is_not(None)
        )
        rows = session.execute(
            select(Conversation, Classification)
            .join(Classification, Classification.conversation_id == Conversation.id)
            .where(where, Conversation.status.not_in(["closed", "deleted"]))
        ).all()
        counts: dict[str | None, int] = {}
        for conversation in session.execute(select(Conversation)).scalars():
            counts[conversation.requester_id] = counts.get(conversation.requester_id, 0) + 1
        rows.sort(key=lambda r: (-counts.get(r[0].requester_id, 0), r[0].id))
        session.expunge_all()
    return rows


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return check()


# ---- Zendesk ---------------------------------------------------------------------------------


def test_zendesk_sidebar_shows_stage_themes_evidence_and_the_customers_journey(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    conversation, classification = stored(zworld.engine)[0]
    installs["zendesk"].data = {
        "ticket.id": int(conversation.external_id),
        "currentUser.email": AGENT,
    }
    app = open_app(page, host, "zendesk")
    app.locator("#cjm-stage-name").wait_for()
    assert app.locator("#cjm-stage-name").inner_text() == STAGE_LABELS[classification.stage]
    assert app.locator("#cjm-band").inner_text().split(" · ")[0] in ("High", "Medium", "Low")
    shown = app.locator("#cjm-themes .cjm-chip").evaluate_all(
        "nodes => nodes.map(n => n.dataset.theme)"
    )
    assert shown == _themes(zworld.engine, classification.conversation_id)
    quotes = app.locator("#cjm-evidence q").all_inner_texts()
    assert quotes and all(q.strip() for q in quotes)
    assert set(quotes) <= {classification.stage_evidence, *classification.evidence}
    with session_scope(zworld.engine) as session:
        theirs = (
            session.execute(
                select(Conversation.external_id)
                .where(Conversation.requester_id == conversation.requester_id)
                .where(Conversation.deleted.is_(False))
                .order_by(Conversation.created_at)
            )
            .scalars()
            .all()
        )
    steps = app.locator("#cjm-journey li").evaluate_all("nodes => nodes.map(n => n.dataset.ticket)")
    assert steps == theirs and len(steps) >= 2
    assert app.locator("#cjm-journey li.cjm-current").get_attribute("data-ticket") == (
        conversation.external_id
    )
    # Another conversation of the journey opens in the helpdesk (ZAF routeTo).
    other = next(t for t in steps if t != conversation.external_id)
    app.locator(f'#cjm-journey li[data-ticket="{other}"]').click()
    assert wait_for(lambda: "invoke routeTo" in page.evaluate("window.hostLog"))
    # It went through the proxy as a secure request with a signed JWT; the browser never had
    # the secret.
    sent = installs["zendesk"].proxied[-1]
    assert sent["secure"] is True and sent["cors"] is False and sent["jwt"]["algorithm"] == "HS256"
    assert APP_SECRET not in page.content() and APP_SECRET not in str(page.evaluate("window.HOST"))
    shot(page, "zendesk-sidebar")


def test_zendesk_sidebar_names_a_step_from_another_helpdesk_and_does_not_link_it(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    """The customer also wrote to another helpdesk (same hashed e-mail): that conversation is in
    the journey, named by its source, and clicking it routes nowhere."""
    first = stored(zworld.engine)[0][0]
    conversation = next(c for c, _ in stored(zworld.engine) if c.requester_id != first.requester_id)
    with session_scope(zworld.engine) as session:
        session.execute(
            update(Person)
            .where(Person.source_id == conversation.source_id)
            .where(Person.external_id == conversation.requester_id)
            .values(email_hash="h-browser-customer")
        )
        shop = Source(name="shop-desk", kind="freshdesk", base_url="http://shop.test")
        session.add(shop)
        session.flush()
        session.add(
            Person(
                source_id=shop.id,
                external_id="shop-1",
                role="end-user",
                email_hash="h-browser-customer",
            )
        )
        session.add(
            Conversation(
                source_id=shop.id,
                external_id="5501",
                requester_id="shop-1",
                created_at=conversation.created_at,
                updated_at=conversation.updated_at,
            )
        )
    installs["zendesk"].data = {
        "ticket.id": int(conversation.external_id),
        "currentUser.email": AGENT,
    }
    app = open_app(page, host, "zendesk")
    step = app.locator('#cjm-journey li[data-ticket="5501"]')
    step.wait_for()
    assert step.locator(".cjm-what").inner_text().startswith("shop-desk #5501")
    routed = page.evaluate("window.hostLog").count("invoke routeTo")
    step.click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.hostLog").count("invoke routeTo") == routed
    shot(page, "zendesk-sidebar-journey-across-helpdesks")


def test_zendesk_correction_reaches_the_label_table_the_field_and_the_ticket(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    conversation, classification = stored(zworld.engine)[1]
    ticket = int(conversation.external_id)
    theirs = "purchase" if classification.stage != "purchase" else "delivery"
    installs["zendesk"].data = {"ticket.id": ticket, "currentUser.email": AGENT}
    app = open_app(page, host, "zendesk")
    app.locator(f'button.cjm-correct[data-stage="{theirs}"]').click()
    app.locator("#cjm-message").wait_for()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert app.locator("#cjm-override").inner_text().endswith(f"({AGENT}, {today})")
    assert app.locator("#cjm-stage-name").inner_text() == STAGE_LABELS[theirs]
    current = app.locator("#cjm-journey li.cjm-current .cjm-what").inner_text()
    assert current == f"#{ticket} {STAGE_LABELS[theirs]}"
    with session_scope(zworld.engine) as session:
        labels = (
            session.execute(
                select(Label).where(Label.conversation_id == classification.conversation_id)
            )
            .scalars()
            .all()
        )
    assert [(lb.origin, lb.stage, lb.labeller) for lb in labels] == [("zendesk app", theirs, AGENT)]
    fields = page.evaluate("window.ticketFields")
    assert list(fields.values()) == [f"stage__{theirs}"]
    assert list(fields)[0].startswith("ticket.customField:custom_field_")
    assert wait_for(lambda: zworld.stage(ticket) == f"stage__{theirs}"), zworld.stage(ticket)
    shot(page, "zendesk-sidebar-corrected")


def test_zendesk_sidebar_states_abstained_not_mined_and_unreachable(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    abstained, _ = stored(zworld.engine, stage_is_none=True)[0]
    installs["zendesk"].data = {"ticket.id": int(abstained.external_id), "currentUser.email": AGENT}
    app = open_app(page, host, "zendesk")
    app.locator("#cjm-abstained").wait_for()
    assert app.locator("button.cjm-correct").count() == len(STAGE_LABELS)
    shot(page, "zendesk-sidebar-abstained")

    installs["zendesk"].data = {"ticket.id": 987654, "currentUser.email": AGENT}
    app = open_app(page, host, "zendesk")
    app.locator("#cjm-not-mined").wait_for()
    shot(page, "zendesk-sidebar-not-mined")

    url = installs["zendesk"].settings["cjm_url"]
    installs["zendesk"].settings["cjm_url"] = "http://127.0.0.1:9"  # nothing listens there
    try:
        app = open_app(page, host, "zendesk")
        app.locator("#cjm-unreachable").wait_for()
        assert "cjm unreachable" in app.locator("#cjm-unreachable").inner_text()
        shot(page, "zendesk-sidebar-unreachable")
    finally:
        installs["zendesk"].settings["cjm_url"] = url


def test_zendesk_wrong_shared_secret_is_refused_not_shown(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    conversation, _ = stored(zworld.engine)[2]
    installs["zendesk"].data = {"ticket.id": int(conversation.external_id)}
    installs["zendesk"].settings["shared_secret"] = "not-the-secret-0123456789abcdefghij"
    try:
        app = open_app(page, host, "zendesk")
        app.locator("#cjm-refused").wait_for()
        assert app.locator("#cjm-stage-name").count() == 0
    finally:
        installs["zendesk"].settings["shared_secret"] = APP_SECRET


def test_zendesk_nav_bar_shows_the_live_map(
    page: Any, host: str, installs: dict[str, Installation]
) -> None:
    installs["zendesk"].data = {}
    app = open_app(page, host, "zendesk", location="nav_bar")
    journey_map = app.frame_locator("#cjm-map")
    journey_map.locator("body").wait_for()
    text = journey_map.locator("body").inner_text()
    assert sum(label in text for label in STAGE_LABELS.values()) >= 3
    shot(page, "zendesk-nav-bar-map")


# ---- Freshdesk -------------------------------------------------------------------------------


def test_freshdesk_sidebar_shows_the_ticket_and_a_correction_reaches_the_ticket(
    page: Any, host: str, installs: dict[str, Installation], fworld: FreshdeskWorld
) -> None:
    conversation, classification = stored(fworld.engine)[0]
    ticket = int(conversation.external_id)
    installs["freshdesk"].data = {
        "ticket": {"id": ticket},
        "loggedInUser": {"contact": {"email": AGENT}},
    }
    app = open_app(page, host, "freshdesk")
    app.locator("#cjm-stage-name").wait_for()
    assert app.locator("#cjm-stage-name").inner_text() == STAGE_LABELS[classification.stage]
    assert app.locator("#cjm-journey li.cjm-current").get_attribute("data-ticket") == str(ticket)
    shot(page, "freshdesk-sidebar")
    theirs = "awareness" if classification.stage != "awareness" else "support"
    app.locator(f'button.cjm-correct[data-stage="{theirs}"]').click()
    app.locator("#cjm-message").wait_for()
    with session_scope(fworld.engine) as session:
        labels = (
            session.execute(
                select(Label).where(Label.conversation_id == classification.conversation_id)
            )
            .scalars()
            .all()
        )
    assert [(lb.origin, lb.stage, lb.labeller) for lb in labels] == [
        ("freshdesk app", theirs, AGENT)
    ]
    assert page.evaluate("window.ticketFields") == {"cf_journey_stage": f"stage__{theirs}"}
    shown = app.locator("#cjm-themes .cjm-chip").evaluate_all("ns => ns.map(n => n.dataset.theme)")
    # a stage-only correction leaves the themes
    assert shown == _themes(fworld.engine, classification.conversation_id)

    def on_ticket() -> Any:
        return fworld.sim.ticket(ticket).custom_fields.get("cf_journey_stage")

    assert wait_for(lambda: on_ticket() == f"stage__{theirs}"), on_ticket()
    # the bearer token came from the secure iparam through the template, not from the page
    assert FRESHDESK_TOKEN not in str(page.evaluate("window.HOST"))
    shot(page, "freshdesk-sidebar-corrected")


def test_freshdesk_full_page_app_shows_the_live_map(
    page: Any, host: str, installs: dict[str, Installation]
) -> None:
    app = open_app(page, host, "freshdesk", location="full_page_app")
    journey_map = app.frame_locator("#cjm-map")
    journey_map.locator("body").wait_for()
    assert (
        sum(label in journey_map.locator("body").inner_text() for label in STAGE_LABELS.values())
        >= 3
    )
    shot(page, "freshdesk-full-page-map")


# ---- cjm serve's own pages ---------------------------------------------------------------------


def test_live_map_page_renders_and_refuses_a_bad_filter(page: Any, zserver: str) -> None:
    response = page.goto(f"{zserver}/map?source={SOURCE}")
    assert response.status == 200
    assert sum(page.get_by_text(label).count() > 0 for label in STAGE_LABELS.values()) >= 3
    shot(page, "live-map")
    response = page.goto(f"{zserver}/map?channel=pigeon")
    assert response.status == 400
    body = page.locator("body").inner_text().strip()
    assert "pigeon" in body and len(body.splitlines()) == 1


def test_labelling_page_is_keyboard_first_and_stores_each_decision(
    page: Any, zserver: str, zworld: World
) -> None:
    def page_labels() -> list[Label]:
        with session_scope(zworld.engine) as session:
            rows = session.execute(select(Label).where(Label.origin == PAGE_ORIGIN)).scalars().all()
            session.expunge_all()
        return list(rows)

    page.goto(f"{zserver}/label?labeller=ana")
    page.locator("#text").wait_for(timeout=60_000)
    stages = list(STAGE_LABELS)
    first = page.locator(".meta").inner_text()
    page.keyboard.press("2")  # pick the second stage
    wait_for(lambda: len(page_labels()) == 1)
    [label] = page_labels()
    assert (label.stage, label.labeller) == (stages[1], "ana")
    page.wait_for_function(
        "first => document.querySelector('.meta').innerText !== first", arg=first
    )
    shot(page, "label-page")
    page.keyboard.press("s")  # skip
    page.keyboard.press("u")  # undo the skip
    page.locator("#status", has_text="undone").wait_for()
    page.keyboard.press("u")  # undo the label
    wait_for(lambda: not page_labels())
    assert not page_labels()
    page.wait_for_function(
        "first => document.querySelector('.meta').innerText === first", arg=first
    )
    page.keyboard.press("a")  # toggle the first theme
    page.keyboard.press("3")
    wait_for(lambda: len(page_labels()) == 1)
    [label] = page_labels()
    first_theme = default_taxonomy().theme_names[0]
    assert label.stage == stages[2]
    assert (first_theme in label.themes) != (first_theme in _predicted_themes(zworld, label))


def _predicted_themes(world: World, label: Label) -> list[str]:
    return _themes(world.engine, label.conversation_id)


def _themes(engine: Any, conversation_id: int) -> list[str]:
    """The miner's themes of a conversation, as stored (the `conversation_theme` rows)."""
    with session_scope(engine) as session:
        return themes_of(session, [conversation_id])[conversation_id]


def test_customer_text_is_shown_as_text_never_as_html(
    page: Any, host: str, installs: dict[str, Installation], zworld: World
) -> None:
    conversation, classification = stored(zworld.engine)[3]
    hostile = '<img src=x onerror="window.pwned=1">Refund me <b>now</b>'
    with session_scope(zworld.engine) as session:
        row = session.get(Classification, classification.id)
        row.evidence = [hostile, *row.evidence]
        session.add(row)
    installs["zendesk"].data = {"ticket.id": int(conversation.external_id)}
    app = open_app(page, host, "zendesk")
    app.locator("#cjm-evidence").wait_for()
    assert hostile in app.locator("#cjm-evidence").inner_text()
    assert app.locator("#cjm-evidence img, #cjm-evidence b").count() == 0
    assert not app.locator("body").evaluate("() => window.pwned === 1")


def test_freshdesk_sidebar_says_when_cjm_is_unreachable(
    page: Any, host: str, installs: dict[str, Installation], fworld: FreshdeskWorld
) -> None:
    conversation, _ = stored(fworld.engine)[1]
    installs["freshdesk"].data = {"ticket": {"id": int(conversation.external_id)}}
    cjm_host = installs["freshdesk"].settings["cjm_host"]
    installs["freshdesk"].settings["cjm_host"] = "127.0.0.1:9"  # nothing listens there
    try:
        app = open_app(page, host, "freshdesk")
        app.locator("#cjm-unreachable").wait_for()
        shot(page, "freshdesk-sidebar-unreachable")
    finally:
        installs["freshdesk"].settings["cjm_host"] = cjm_host
