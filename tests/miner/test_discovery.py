"""Theme discovery on a small corpus with planted clusters."""

from __future__ import annotations

import pytest
from sklearn.base import clone

from miner import ThemeDiscovery, discover_themes

PARKING = [
    "The parking garage at the store is always full, I could not find a space.",
    "No parking spaces left again at your branch, I drove around for twenty minutes.",
    "Parking fees at the garage are too high for a quick pickup.",
    "Your parking garage gate was broken and I could not get my car out.",
    "Please add more parking spaces, the garage is full every evening.",
]
LOYALTY = [
    "My loyalty points disappeared from my profile after the last purchase.",
    "The loyalty points from my booking were never added.",
    "Loyalty points expired without any warning.",
    "Why can I not redeem my loyalty points for the voucher?",
    "I lost all my loyalty points when the programme changed.",
]
NOISE = ["The cashier was friendly.", "Nice shop, long queue.", "Music in the store is loud."]


def test_planted_clusters_are_found_and_named() -> None:
    texts = PARKING + LOYALTY + NOISE
    model = ThemeDiscovery(n_themes=3, min_size=3, random_state=0).fit(texts)
    names = " | ".join(t.name for t in model.themes_)
    assert "parking" in names and "loyalty" in names
    info = model.get_theme_info()
    assert {"id", "name", "top_terms", "size", "share", "representative_quotes"} <= set(info[0])
    by_name = {t.name.split(" / ")[0]: t for t in model.themes_}
    parking = next(t for n, t in by_name.items() if "parking" in n or "garage" in n)
    assert len(set(parking.member_indices) & set(range(5))) >= 3
    assert not set(parking.member_indices) & set(range(5, 10))
    assert all(q.rstrip("…")[:30] in " ".join(texts) for q in parking.representative_quotes)
    ids, scores = model.transform(["the parking garage is full", "my loyalty points vanished"])
    assert ids[0] != ids[1] and (scores > 0).all()


def test_kmeans_method_and_contract() -> None:
    est = ThemeDiscovery(method="kmeans", n_themes=2)
    assert clone(est).get_params() == est.get_params()
    est.fit(PARKING + LOYALTY)
    assert {t.size for t in est.themes_} == {5}
    with pytest.raises(ValueError, match="single string"):
        est.transform("parking")
    with pytest.raises(ValueError, match="method"):
        ThemeDiscovery(method="lda").fit(PARKING)


def test_discover_only_what_configured_themes_do_not_explain() -> None:
    texts = PARKING + LOYALTY
    scores = [{"delivery_problems": 0.1}] * 5 + [{"refunds_and_returns": 0.9}] * 5
    cands = discover_themes(texts, scores, n_themes=2, min_size=3)
    assert len(cands) == 1
    assert "parking" in cands[0].name or "garage" in cands[0].name
    assert set(cands[0].member_indices) <= set(range(5))
    assert cands[0].share == pytest.approx(0.5)
    assert cands[0].to_dict()["top_terms"]


def test_degenerate_inputs() -> None:
    assert discover_themes([]) == []
    assert discover_themes(["", "  "]) == []
    assert ThemeDiscovery().fit(["ok", "ok"]).themes_ == []
