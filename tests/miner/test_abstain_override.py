"""`[miner].abstain_below` trades precision for coverage, and changing it re-mines."""

from __future__ import annotations

from miner import ConversationMiner, default_taxonomy

VAGUE = ["Hi, quick question about my thing, can someone call me back?"]


def test_lower_threshold_never_abstains_more_and_changes_the_version() -> None:
    taxonomy = default_taxonomy()
    calibrated = ConversationMiner(taxonomy)
    eager = ConversationMiner(taxonomy, abstain_below=0.0)
    strict = ConversationMiner(taxonomy, abstain_below=1.01)
    assert eager.predict(VAGUE)[0].stage is not None
    assert strict.predict(VAGUE)[0].stage is None
    assert len({calibrated.version, eager.version, strict.version}) == 3
