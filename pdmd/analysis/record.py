"""Store an analysis' numbers with its model: in the model card (model.json) and the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pdmd.store.files import read_json, to_jsonable, write_json_atomic


def record_analysis(model_dir: Path, key: str, result: dict, db=None) -> dict:
    """Add `result` under `analyses[key]` of the model's card; upsert the card into `db` if given."""
    card = read_json(model_dir / "model.json")
    card.setdefault("analyses", {})[key] = to_jsonable(
        {**result, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    )
    write_json_atomic(model_dir / "model.json", card)
    if db is not None:
        from pdmd.ml.fit import upsert_model_card

        upsert_model_card(db, card)
    return card
