"""Property-based tests: whatever text a customer sends, cleaning and redaction never crash and
never let a planted e-mail address, card number, IBAN or phone number through."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miner import clean_message, redact

# Test values only: a Luhn-valid test card, a valid IBAN, a reserved-range phone number.
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819", "FR1420041010050500013M02606"]
PHONES = ["+44 20 7946 0958", "+1 202-555-0143", "+49 30 901820"]

words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="@"), max_size=40
)
emails = st.from_regex(r"[a-z]{2,10}\.[a-z]{2,10}@[a-z]{3,10}\.(com|org|example)", fullmatch=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=words,
    after=words,
    email=emails,
    card=st.sampled_from(CARDS),
    iban=st.sampled_from(IBANS),
    phone=st.sampled_from(PHONES),
)
def test_planted_pii_never_survives_redaction(
    before: str, after: str, email: str, card: str, iban: str, phone: str
) -> None:
    text = f"{before} mail me at {email} or call {phone}. Card {card}, IBAN {iban} {after}"
    redacted = redact(text)
    for secret in (email, card, iban, phone):
        assert secret not in redacted
    digits = "".join(ch for ch in card if ch.isdigit())
    assert digits not in "".join(ch for ch in redacted if ch.isdigit())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000), st.booleans())
def test_cleaning_and_redaction_never_crash(text: str, html: bool) -> None:
    cleaned = clean_message(text, html=html)
    assert isinstance(cleaned, str)
    assert isinstance(redact(cleaned), str)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=200))
def test_nested_html_does_not_blow_up(depth: int) -> None:
    bomb = "<div>" * depth * 50 + "help my order" + "</div>" * depth * 50
    assert "help my order" in clean_message(bomb, html=True)
