"""Simulator parity for the production-grade connector: users/me, OAuth tokens that expire and
rotate, CSAT ratings, conversation logs, legacy chats, redactions, the job life cycle, and the
fault switches (Retry-After bookkeeping, 409s, per-ticket job failures, 503 + Retry-After)."""

from __future__ import annotations

from typing import Any

from simulator import SimulatorFaults
from simulator.zendesk import INTEGRATION_USER_ID
from tests.simulator.test_zendesk_simulator import NOW, get, make, put, run


def messaging_ticket(sim: Any) -> int:
    return next(t for t in sim.ticket_ids() if sim._tickets[t].channel == "native_messaging")


def test_users_me_is_the_integration_user() -> None:
    sim = make(5)
    body = get(sim, "/api/v2/users/me.json").json()
    assert body["user"]["id"] == INTEGRATION_USER_ID and body["user"]["role"] == "admin"


def test_oauth_access_tokens_expire_and_refresh_tokens_rotate_once() -> None:
    sim = make(5)
    sim.register_oauth_client("cjm", "client-secret")
    access, refresh = sim.issue_oauth_tokens("cjm", ttl=60)

    def bearer(token: str) -> int:
        response = run(
            sim,
            lambda c: c.get("/api/v2/tickets/1.json", headers={"Authorization": f"Bearer {token}"}),
            auth=None,
        )
        return response.status_code

    assert bearer(access) == 200
    sim.advance(61)
    assert bearer(access) == 401
    grant = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": "cjm",
        "client_secret": "client-secret",
    }
    fresh = run(sim, lambda c: c.post("/oauth/tokens", json=grant), auth=None)
    assert fresh.status_code == 200
    pair = fresh.json()
    assert pair["refresh_token"] != refresh and pair["expires_in"] == sim.oauth_access_ttl
    assert bearer(pair["access_token"]) == 200
    reused = run(sim, lambda c: c.post("/oauth/tokens", json=grant), auth=None)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    wrong = run(
        sim,
        lambda c: c.post(
            "/oauth/tokens",
            json={**grant, "refresh_token": pair["refresh_token"], "client_secret": "nope"},
        ),
        auth=None,
    )
    assert wrong.status_code == 400
    assert sim.requests["POST /oauth/tokens"] == 3


def test_satisfaction_ratings_cursor_pages_score_filter_and_edits() -> None:
    sim = make(400)
    everything: list[dict[str, Any]] = []
    url = "/api/v2/satisfaction_ratings.json?score=received_with_comment&page[size]=20"
    for _ in range(100):
        body = get(sim, url).json()
        everything.extend(body["satisfaction_ratings"])
        if not body["meta"]["has_more"]:
            break
        url = body["links"]["next"]
    assert everything and all(r["comment"] and r["score"] in ("good", "bad") for r in everything)
    assert len({r["id"] for r in everything}) == len(everything)
    stamps = [r["updated_at"] for r in everything]
    assert stamps == sorted(stamps)
    rated = everything[0]["ticket_id"]
    sim.advance(60)
    sim.rate_ticket(rated, "bad", "Actually it broke again")
    since = int(NOW.timestamp())
    fresh = get(sim, f"/api/v2/satisfaction_ratings.json?start_time={since}").json()
    assert [(r["ticket_id"], r["comment"]) for r in fresh["satisfaction_ratings"]] == [
        (rated, "Actually it broke again")
    ]


def test_satisfaction_rating_pages_equal_the_filtered_list_from_start_time() -> None:
    """Paging a filtered, time-bounded list returns exactly its members, in order, once."""
    sim = make(600)
    index = sim.csat_index()
    start = index[len(index) // 3][0]
    expected = [
        5_000_000 + tid
        for stamp, tid in index
        if stamp >= start and sim._tickets[tid].csat == "bad"
    ]
    assert len(expected) > 7  # several pages of 7
    seen: list[int] = []
    url = f"/api/v2/satisfaction_ratings.json?score=bad&start_time={start}&page[size]=7"
    for _ in range(200):
        body = get(sim, url).json()
        seen.extend(r["id"] for r in body["satisfaction_ratings"])
        if not body["meta"]["has_more"]:
            break
        url = body["links"]["next"]
    assert seen == expected


def test_conversation_log_has_the_bot_phase_only_for_messaging_tickets() -> None:
    sim = make(300)
    tid = messaging_ticket(sim)
    events = get(sim, f"/api/v2/tickets/{tid}/conversation_log?page[size]=100").json()["events"]
    kinds = [(e["type"], e["author"]["type"]) for e in events[:3]]
    assert kinds[0] == ("Messaging::ConversationMessage", "bot")
    assert kinds[1] == ("Messaging::ConversationMessage", "user")
    assert events[0]["reference"] is None
    mirrored = [e for e in events if e["reference"]]
    comment_ids = {c["id"] for c in sim.ticket(tid).comments}
    assert {int(e["reference"].rsplit(":", 1)[1]) for e in mirrored} == comment_ids
    email = next(t for t in sim.ticket_ids() if sim._tickets[t].channel == "email")
    plain = get(sim, f"/api/v2/tickets/{email}/conversation_log").json()["events"]
    assert all(e["type"] == "Comment" for e in plain)
    sim.delete_ticket(email)
    assert get(sim, f"/api/v2/tickets/{email}/conversation_log").status_code == 404


def test_legacy_chat_export_pages_by_time_and_id() -> None:
    sim = make(400)
    chats: list[dict[str, Any]] = []
    url = "/api/v2/incremental/chats?start_time=0&limit=5"
    for _ in range(100):
        body = get(sim, url).json()
        chats.extend(body["chats"])
        if body["next_page"] is None:
            break
        url = body["next_page"].split("zendesk.test", 1)[-1]
    chat_tickets = [t for t in sim.ticket_ids() if sim._tickets[t].channel == "chat"]
    assert sorted(c["zendesk_ticket_id"] for c in chats) == sorted(chat_tickets)
    first = chats[0]
    assert first["history"][1]["nick"] == "visitor" and first["history"][1]["msg"]


def test_redaction_changes_the_comment_and_leaves_an_event() -> None:
    sim = make(40)
    tid = sim.open_tickets_with_customer_text()[0]
    comment = sim.ticket(tid).comments[0]
    word = comment["body"].split()[0]
    sim.advance(60)
    sim.redact_comment(tid, comment["id"], word)
    comments = get(sim, f"/api/v2/tickets/{tid}/comments.json").json()["comments"]
    assert comments[0]["body"].startswith("▇" * len(word))
    start = int(NOW.timestamp())
    events = get(sim, f"/api/v2/incremental/ticket_events.json?start_time={start}").json()
    child = events["ticket_events"][-1]["child_events"][0]
    assert child == {**child, "event_type": "CommentRedactionEvent", "comment_id": comment["id"]}


def test_jobs_go_queued_working_completed() -> None:
    sim = make(40, job_polls_to_complete=3)
    tid = sim.open_tickets_with_customer_text()[0]
    job = put(
        sim, f"/api/v2/tickets/update_many.json?ids={tid}", {"ticket": {"additional_tags": ["x"]}}
    ).json()["job_status"]
    seen = [
        get(sim, f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]["status"]
        for _ in range(3)
    ]
    assert seen == ["queued", "working", "completed"]


def test_retry_after_violations_are_counted_by_the_server() -> None:
    sim = make(5, faults=SimulatorFaults(rate_limit_per_minute=2))
    sim.now = NOW.replace(second=30)
    codes = [get(sim, "/api/v2/tickets/1.json").status_code for _ in range(3)]
    assert codes == [200, 200, 429] and sim.retry_after_violations == 0
    get(sim, "/api/v2/tickets/1.json")  # sent before the 30 s it was told to wait
    assert sim.retry_after_violations == 1
    sim.advance(31)
    assert get(sim, "/api/v2/tickets/1.json").status_code == 200
    assert sim.retry_after_violations == 1


def test_conflicts_transient_job_failures_and_503_retry_after() -> None:
    sim = make(40, faults=SimulatorFaults(conflict_every_n=2, ticket_update_fail_every_n=2))
    ids = sim.open_tickets_with_customer_text()[:2]
    url = f"/api/v2/tickets/update_many.json?ids={ids[0]},{ids[1]}"
    first = put(sim, url, {"ticket": {"additional_tags": ["x"]}})
    assert first.status_code == 200
    assert put(sim, url, {"ticket": {"additional_tags": ["x"]}}).status_code == 409
    polled = get(sim, f"/api/v2/job_statuses/{first.json()['job_status']['id']}.json").json()
    assert [r["success"] for r in polled["job_status"]["results"]] == [True, False]
    sim = make(
        5,
        faults=SimulatorFaults(fail_every_n=1, fail_status=503, service_unavailable_retry_after=7),
    )
    response = get(sim, "/api/v2/tickets/1.json")
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
