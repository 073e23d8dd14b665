"""Each cleaning rule, on hand-written examples."""

from __future__ import annotations

import time

import pytest

from miner import MessageIn, clean_message, customer_text
from miner.text import MAX_MESSAGE_CHARS, html_to_text, is_auto_reply

GMAIL = """Hi,

My order still hasn't arrived.

On Mon, Jan 6, 2025 at 10:00 AM Acme Support <support@acme.example> wrote:
> Hello, your order has shipped.
> Regards, Acme
"""

OUTLOOK = """The refund never showed up on my card.

________________________________
From: Acme Support <help@acme.example>
Sent: Tuesday, 7 January 2025 09:12
To: Jane
Subject: Re: refund

Dear Jane, we have processed your refund."""

ORIGINAL_MESSAGE = """I was charged twice for my subscription.

-----Original Message-----
From: Acme Billing
Sent: Monday, January 6, 2025 8:00 AM
To: me
Subject: RE: billing

We have looked into it."""

APPLE_MAIL = """Still waiting for the replacement part.

Sent from my iPhone

> On 6 Jan 2025, at 10:00, Acme <help@acme.example> wrote:
>
> Your replacement is on its way."""

GERMAN_CLIENT = """Das Paket ist immer noch nicht da.

Am 06.01.2025 um 10:00 schrieb Acme Support <help@acme.example>:
> Ihr Paket wurde versandt."""

FORWARDED = """Please look at this, it is the second time.

---------- Forwarded message ---------
From: Acme <noreply@acme.example>
Date: Mon, Jan 6, 2025
Subject: Your order

Your order was cancelled."""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (GMAIL, "My order still hasn't arrived."),
        (OUTLOOK, "The refund never showed up on my card."),
        (ORIGINAL_MESSAGE, "I was charged twice for my subscription."),
        (APPLE_MAIL, "Still waiting for the replacement part."),
        (GERMAN_CLIENT, "Das Paket ist immer noch nicht da."),
        (FORWARDED, "Please look at this, it is the second time."),
    ],
    ids=["gmail", "outlook", "original-message", "apple-mail", "german-client", "forwarded"],
)
def test_quoted_reply_chains_are_removed(raw: str, expected: str) -> None:
    assert clean_message(raw) == expected


def test_angle_bracket_quotes_are_removed() -> None:
    raw = "> you said it ships today\n> regards\nIt did not ship."
    assert clean_message(raw) == "It did not ship."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The app crashes.\n\n--\nJane Doe\nAcme Corp | +1 555 0100", "The app crashes."),
        ("The app crashes.\n\nBest regards,\nJane Doe\nHead of Things", "The app crashes."),
        ("The app crashes.\nThanks in advance,\nJane", "The app crashes."),
        ("The app crashes.\n\nSent from my Galaxy", "The app crashes."),
        ("The app crashes.\nKind regards\nJ.", "The app crashes."),
    ],
    ids=["dash-dash", "best-regards", "thanks-in-advance", "sent-from", "kind-regards"],
)
def test_signatures_and_closings_are_removed(raw: str, expected: str) -> None:
    assert clean_message(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hi team,\nMy card was declined.", "My card was declined."),
        ("Hello there!\n\nMy card was declined.", "My card was declined."),
        ("Dear Sir or Madam,\nMy card was declined.", "My card was declined."),
        ("Good morning, my card was declined.", "my card was declined."),
        ("Thanks!", "Thanks!"),
    ],
)
def test_greeting_boilerplate_is_removed(raw: str, expected: str) -> None:
    assert clean_message(raw) == expected


def test_lines_starting_with_thanks_are_not_signatures() -> None:
    raw = "My order is late.\nThanks, but the app still crashes when I pay.\nBest, Sam"
    assert clean_message(raw) == "My order is late.\nThanks, but the app still crashes when I pay."


def test_disclaimer_is_removed() -> None:
    raw = (
        "Where is my refund?\n\n"
        "This email and any attachments are confidential and intended solely for the addressee. "
        "If you received it in error, delete it."
    )
    assert clean_message(raw) == "Where is my refund?"


@pytest.mark.parametrize(
    "raw",
    [
        "I am out of the office until Monday, 12 May, with limited access to e-mail.",
        "Automatic reply: Re: your ticket #123",
        "This is an automated message. Please do not reply.",
    ],
)
def test_auto_replies_become_empty(raw: str) -> None:
    assert is_auto_reply(raw)
    assert clean_message(raw) == ""


def test_html_to_text_keeps_blocks_and_drops_quotes() -> None:
    html = (
        '<html><head><style>p{color:red}</style></head><body><div dir="ltr">Hi,<br><br>'
        "The app <b>crashes</b> when I&nbsp;pay.<br></div>"
        '<div class="gmail_quote"><div>On Tue, Acme wrote:</div>'
        "<blockquote>old text</blockquote></div></body></html>"
    )
    assert clean_message(html, html=True) == "The app crashes when I pay."
    assert "old text" not in html_to_text(html)


def test_outlook_html_reply_header_is_dropped() -> None:
    html = (
        "<div>The screen is cracked.</div><hr>"
        '<div id="divRplyFwdMsg"><b>From:</b> Acme</div><div>Earlier message</div>'
    )
    assert clean_message(html, html=True) == "The screen is cracked."


def test_html_is_detected_without_the_flag() -> None:
    assert clean_message("<p>My parcel is lost.</p><p>Please help</p>") == (
        "My parcel is lost.\n\nPlease help"
    )


def test_emoji_and_non_english_are_kept() -> None:
    assert clean_message("Still not working 😡😡") == "Still not working 😡😡"
    assert clean_message("Hola,\nmi pedido no ha llegado 📦") == "mi pedido no ha llegado 📦"
    assert clean_message("注文した商品がまだ届きません。") == "注文した商品がまだ届きません。"


@pytest.mark.parametrize("raw", ["", "   ", "\n\n", "\u200b"])
def test_empty_inputs(raw: str) -> None:
    assert clean_message(raw) == ""


def test_huge_input_is_bounded_and_fast() -> None:
    raw = "My order is late. " * 200_000  # 3.6 MB
    start = time.perf_counter()
    out = clean_message(raw)
    assert time.perf_counter() - start < 2.0
    assert 0 < len(out) <= MAX_MESSAGE_CHARS


def test_whitespace_and_invisible_characters_are_normalised() -> None:
    assert clean_message("The\u00a0app\u200b   crashes.\r\n\r\n\r\n\r\nAgain.") == (
        "The app crashes.\n\nAgain."
    )


def test_customer_text_keeps_only_public_end_user_unsolicited_messages() -> None:
    messages = [
        MessageIn("end_user", True, "My parcel is lost."),
        MessageIn("agent", True, "Sorry to hear that!"),
        MessageIn("agent", False, "internal: check the courier"),
        MessageIn("bot", True, "Did this article help?"),
        MessageIn("system", True, "Ticket merged"),
        MessageIn("end_user", False, "private?"),
        MessageIn("end_user", True, "Rated 1/5: slow", solicited=True),
        MessageIn("end_user", True, "  "),
        MessageIn("end_user", True, "It is the third time I ask."),
        MessageIn("end_user", True, "my parcel is lost."),
    ]
    assert customer_text(messages) == "My parcel is lost.\nIt is the third time I ask."


def test_customer_text_can_clean() -> None:
    messages = [MessageIn("end_user", True, "Hi,\nWhere is my refund?\n\nThanks,\nJo")]
    assert customer_text(messages, clean=True) == "Where is my refund?"
    assert customer_text([]) == ""
