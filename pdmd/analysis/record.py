"""Store an analysis' numbers with its model: in the model card (model.json) and the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pdmd.store.documents import read_card, write_card


def record_analysis(model_dir: Path, key: str, result: dict, db=None) -> dict:
    """Add `result` under `analyses[key]` of the model's card; upsert the card into `db` if given."""
    card = read_card(model_dir)
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    card.setdefault("analyses", {})[key] = {**result, "created": created}
    card = write_card(model_dir, card)
    if db is not None:
        from pdmd.models.card import upsert_model_card

        upsert_model_card(db, card)
    return card
