"""Key phrases read as language: what a person would write on a sticky note, not word pairs."""

from __future__ import annotations

from miner.phrases import key_phrases, phrase_candidates


def test_glue_word_pairs_are_not_phrases() -> None:
    assert phrase_candidates("Nowhere does it say that.") == {}
    assert phrase_candidates("The page is confusing, which is bad").keys() == {"page be confuse"}


def test_verb_determiner_noun_and_particles_are_phrases() -> None:
    found = {surface for surface, _w in phrase_candidates(
        "Please cancel my subscription. I can't log in, you charged twice!").values()}  # fmt: skip
    assert {"cancel my subscription", "can't log in", "charged twice"} <= found


def test_numbers_and_placeholders_break_a_phrase() -> None:
    found = {
        surface for surface, _w in phrase_candidates("order [ORDER] 12345 parcel lost").values()
    }
    assert found == {"parcel lost"}


def test_distinctive_phrases_win_with_the_shortest_quote() -> None:
    groups = {
        "delivery": [
            ["Where is my parcel? I want to track my parcel."],
            ["I cannot track my parcel anywhere, the app says nothing"],
            ["Hello, thanks for your help"],
            ["Hello, thanks for your help with the parcel"],
        ],
        "purchase": [
            ["You charged twice for one order"],
            ["I was charged twice and want my money"],
            ["Hello, thanks for your help"],
            ["Hello, thanks for your help"],
        ],
    }
    result = key_phrases(groups, limit=3)
    assert [p.phrase for p in result["delivery"]] == ["track my parcel"]
    assert result["delivery"][0].documents == 2
    assert result["delivery"][0].quote == "Where is my parcel? I want to track my parcel."
    assert [p.phrase for p in result["purchase"]] == ["charged twice"]
    assert result["purchase"][0].quote == "You charged twice for one order"  # the shorter


def test_a_phrase_every_group_says_equally_is_not_distinctive() -> None:
    same = [["card declined at checkout"], ["card declined again"]]
    result = key_phrases({"a": same, "b": same})
    assert result == {"a": [], "b": []}
