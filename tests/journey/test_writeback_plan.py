"""The write-back rules, as pure decisions: minimal deltas, agents win, our prefixes only."""

from __future__ import annotations

from connectors.records import FieldIds
from journey.writeback import plan_update

FIELDS = FieldIds(stage="100", confidence="200")
DESIRED = {
    "stage": "stage__delivery",
    "confidence": "stage_confidence__high",
    "pain": ["pain__delivery_problems"],
}


def plan(**kwargs):  # type: ignore[no-untyped-def]
    args = {
        "current_tags": ["vip"],
        "current_fields": {},
        "desired": DESIRED,
        "applied": {},
        "stage_locked": False,
        "fields": FIELDS,
    }
    args.update(kwargs)
    return plan_update("42", **args)


def test_first_write_sets_fields_and_adds_tags_without_touching_agents_tags() -> None:
    result = plan()
    assert dict(result.update.set_fields) == {
        "100": "stage__delivery",
        "200": "stage_confidence__high",
    }
    assert result.update.add_tags == {"pain__delivery_problems"}
    assert result.update.remove_tags == frozenset()
    assert not result.stage_locked


def test_nothing_to_send_when_the_ticket_already_matches() -> None:
    result = plan(
        current_tags=["vip", "pain__delivery_problems", "stage__delivery"],
        current_fields={"100": "stage__delivery", "200": "stage_confidence__high"},
        applied=DESIRED,
    )
    assert result.update.is_empty


def test_agent_changed_stage_wins_and_is_recorded() -> None:
    result = plan(
        current_tags=["pain__delivery_problems"],
        current_fields={"100": "stage__purchase", "200": "stage_confidence__high"},
        applied=DESIRED,
        desired={**DESIRED, "stage": "stage__support"},
    )
    assert result.stage_locked
    assert result.agent_stage == "stage__purchase"
    assert result.update.is_empty


def test_stage_set_by_agent_before_cjm_is_never_overwritten() -> None:
    result = plan(current_fields={"100": "stage__consideration"})
    assert result.stage_locked and result.agent_stage == "stage__consideration"
    assert "100" not in dict(result.update.set_fields)
    assert result.update.add_tags == {"pain__delivery_problems"}


def test_locked_stage_stays_locked_even_when_field_matches_again() -> None:
    result = plan(current_fields={"100": "stage__delivery"}, stage_locked=True, applied=DESIRED)
    assert result.stage_locked and not result.update.set_fields


def test_theme_no_longer_found_is_removed_only_if_cjm_added_it() -> None:
    result = plan(
        current_tags=["pain__delivery_problems", "pain__refunds_and_returns", "pain__agent_made"],
        current_fields={"100": "stage__delivery", "200": "stage_confidence__high"},
        applied={**DESIRED, "pain": ["pain__delivery_problems", "pain__refunds_and_returns"]},
    )
    assert result.update.remove_tags == {"pain__refunds_and_returns"}
    assert result.update.add_tags == frozenset()


def test_tag_an_agent_removed_is_not_added_again() -> None:
    result = plan(
        current_tags=["vip"],
        current_fields={"100": "stage__delivery", "200": "stage_confidence__high"},
        applied=DESIRED,
    )
    assert result.update.is_empty
    assert result.suppressed == ("pain__delivery_problems",)


def test_without_fields_only_tags_are_planned() -> None:
    result = plan(fields=FieldIds())
    assert result.update.set_fields == ()
    assert result.update.add_tags == {"pain__delivery_problems"}


# ---- who set the stage: cjm's own values are never an agent's edit --------------------------


def test_a_stage_equal_to_the_delta_an_interrupted_run_sent_is_cjms_own() -> None:
    result = plan(
        current_tags=["pain__delivery_problems", "stage__delivery"],
        current_fields={"100": "stage__delivery", "200": "stage_confidence__high"},
        applied={**DESIRED, "stage": "stage__purchase"},
        sent={"fields": [["100", "stage__delivery"]], "stage": "stage__delivery"},
    )
    assert not result.stage_locked and result.agent_stage is None
    assert result.update.is_empty


def test_the_helpdesk_naming_cjm_as_the_updater_beats_an_empty_outbox() -> None:
    """A lost or recreated database: no local record, but the audit says cjm set it."""
    result = plan(
        current_fields={"100": "stage__purchase"},
        setter={"value": "stage__purchase", "by_cjm": True},
    )
    assert not result.stage_locked and result.agent_stage is None
    assert dict(result.update.set_fields)["100"] == "stage__delivery"


def test_the_helpdesk_naming_an_agent_locks_the_stage_even_when_it_matches() -> None:
    result = plan(
        current_fields={"100": "stage__delivery"},
        setter={"value": "stage__delivery", "by_cjm": False},
    )
    assert result.stage_locked and result.agent_stage == "stage__delivery"


def test_without_any_record_the_stage_cjm_would_write_is_not_an_agent_label() -> None:
    result = plan(current_fields={"100": "stage__delivery"})
    assert not result.stage_locked and result.agent_stage is None
    assert "100" not in dict(result.update.set_fields)


def test_an_agent_edit_after_cjms_audit_is_still_an_agents() -> None:
    result = plan(
        current_fields={"100": "stage__purchase"},
        applied=DESIRED,
        setter={"value": "stage__delivery", "by_cjm": True},  # an older audit: not this value
    )
    assert result.stage_locked and result.agent_stage == "stage__purchase"


def test_confidence_dropdown_follows_the_measured_bands() -> None:
    from journey.writeback import confidence_option
    from miner import confidence_bands

    bands = dict(confidence_bands())
    assert confidence_option(bands["high"]) == "stage_confidence__high"
    assert confidence_option(bands["high"] - 0.01) == "stage_confidence__medium"
    assert confidence_option(bands["medium"]) == "stage_confidence__medium"
    assert confidence_option(bands["medium"] - 0.01) == "stage_confidence__low"
