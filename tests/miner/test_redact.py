"""Each redaction rule, on hand-written examples."""

from __future__ import annotations

import pytest

from miner import redact
from miner.redact import Redactor


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("mail me at jane.doe+cjm@example.co.uk now", "mail me at [EMAIL] now"),
        ("J_Smith99@mail.example.com.", "[EMAIL]."),
        ("call (415) 555-2671 please", "call [PHONE] please"),
        ("my mobile is +44 7911 123456", "my mobile is [PHONE]"),
        ("ring +49 30 901820", "ring [PHONE]"),
        ("card 4111 1111 1111 1111 was charged", "card [CARD] was charged"),
        ("card 5500-0000-0000-0004 expired", "card [CARD] expired"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("to GB82WEST12345698765432.", "to [IBAN]."),
        ("from 203.0.113.42 today", "from [IP] today"),
        ("from 2001:db8::8a2e:370:7334 today", "from [IP] today"),
        ("use https://acme.example/reset?token=9f8a7b6c5d4e now", "use [URL] now"),
        ("see https://acme.example/i/AbC123xyZ987qwe456RTY12.", "see [URL]."),
        ("my name is Jane Doe and", "my name is [PERSON] and"),
        ("I spoke to Mark yesterday", "I spoke to [PERSON] yesterday"),
        ("Dear Mr. Smith, hello", "Dear Mr. [PERSON], hello"),
    ],
)
def test_each_rule(raw: str, expected: str) -> None:
    assert redact(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "order #123456789 on 2024-01-15 for $1,234.56",
        "version 1.2.3.4.5 and 999.1.1.1",
        "see https://acme.example/help/articles/returns",
        "at 10:30:45 on 12/05/2024",
        "DE89 3704 0044 0532 0130 01 bad checksum",
        "This is ridiculous. My name is not important.",
        "the agent said no",
    ],
)
def test_lookalikes_are_kept(raw: str) -> None:
    assert redact(raw) == raw


def test_rules_can_be_switched_off_and_region_set() -> None:
    text = "jane@example.com 020 7946 0958"
    assert Redactor(emails=False, region="GB")(text) == "jane@example.com [PHONE]"
    assert Redactor(phones=False)(text) == "[EMAIL] 020 7946 0958"


def test_empty_and_placeholders_only() -> None:
    assert redact("") == ""
    assert redact("[EMAIL] [PHONE]") == "[EMAIL] [PHONE]"


def test_person_entities_from_a_pipeline() -> None:
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "olga"}, {"LOWER": "petrova"}]}])
    text = "olga petrova from billing never called back"
    assert Redactor(nlp=nlp)(text) == "[PERSON] from billing never called back"
    assert redact(text) == text  # no statistical pipeline: only the cue rules


@pytest.mark.parametrize(
    "phone",
    ["555-619-3114", "(555) 010-4477", "555-0134", "+44 7700 900637", "07700 900461"],
)
def test_phone_numbers_in_fictional_ranges_are_still_phone_numbers(phone: str) -> None:
    assert redact(f"Call me on {phone} after six.") == "Call me on [PHONE] after six."


@pytest.mark.parametrize(
    "text",
    [
        "Time of call: 2026-11-24 14:32:24 UTC",
        "Tracking updated 2026-11-24T14:32:24Z",
        "The outage was 24/11/2026 14:32 to 15:05",
    ],
)
def test_dates_and_times_are_not_phone_numbers(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A pending charge of £107.12.\nAnna", "A pending charge of £107.12.\n[PERSON]"),
        ("Cancel it please.\nThanks,\nEmma", "Cancel it please.\nThanks,\n[PERSON]"),
        ("It crashes on login. Cheers, Tom", "It crashes on login. Cheers, [PERSON]"),
        ("Sort it.\nCarla Müller\nMobile: 555-312-3046", "Sort it.\n[PERSON]\nMobile: [PHONE]"),
        ("Can you help?\nThanks", "Can you help?\nThanks"),  # a closing word is not a name
        ("I love the new blender. Amazing", "I love the new blender. Amazing"),
    ],
)
def test_first_name_sign_offs_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
