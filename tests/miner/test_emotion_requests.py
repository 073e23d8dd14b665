"""Plain requests are not complaints, and questions are not confusion (issue 15): hand-written
support sentences, as a support reader would label them."""

from __future__ import annotations

import pytest

from miner import emotions, valence

PLAIN_REQUESTS = [
    "Please cancel my subscription.",
    "I want to cancel my account.",
    "I would like to cancel my order.",
    "Please close my account.",
    "Please update my email address.",
    "Can you change my delivery address?",
    "Could you please reset my password?",
    "I'd like to change the delivery date to Friday, please.",
    "Hi, I need to update the card on my account.",
]

COMPLAINTS_THAT_ASK = [
    "Please cancel my subscription, you charged me twice!",
    "I want to cancel my account because the app is broken.",
    "Please cancel my order, it still hasn't shipped.",
    "I want to close my account, this is unacceptable.",
    "Can you change my address? The parcel went to the wrong one again 😡",
]

QUESTIONS = [
    "How do I reset my password?",
    "What are your opening hours?",
    "Do you ship to Canada?",
    "Where can I find the invoice for my last order?",
    "Can I pay with PayPal?",
]

CONFUSED = [
    "I'm confused, the app says one thing and the website another.",
    "I don't understand why I was charged twice, can you explain?",
    "What does 'pending authorisation' mean??",
]


@pytest.mark.parametrize("text", PLAIN_REQUESTS)
def test_a_plain_request_is_neutral_and_shows_no_emotion(text: str) -> None:
    assert valence([text])[0].label == "neutral"
    assert emotions([text])[0].labels == ("none",)


@pytest.mark.parametrize("text", COMPLAINTS_THAT_ASK)
def test_a_request_with_a_problem_in_it_stays_negative(text: str) -> None:
    assert valence([text])[0].label == "negative"


@pytest.mark.parametrize("text", QUESTIONS)
def test_an_information_question_is_not_confusion(text: str) -> None:
    assert "confusion" not in emotions([text])[0].labels


@pytest.mark.parametrize("text", CONFUSED)
def test_saying_you_do_not_understand_is_still_confusion(text: str) -> None:
    assert "confusion" in emotions([text])[0].labels


def test_a_complaint_followed_by_a_plain_request_is_negative() -> None:
    text = "My order never arrived and nobody answers my emails. Please cancel my order."
    assert valence([text])[0].label == "negative"
