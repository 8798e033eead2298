"""The one descriptor setting (`DescriptorSpec`) and the typed document schemas (`pdmd.store.documents`)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.errors import InputError
from pdmd.store.documents import DocumentError, ModelCard, StructureDoc, read_card, read_document, write_card


def test_system_defaults_and_ids_are_the_papers_and_the_stored_ones():
    agr, ac = DescriptorSpec.for_system("agr"), DescriptorSpec.for_system("ac")
    assert (agr.dim, agr.lo_A2, agr.hi_A2, agr.bins, agr.degree, agr.sheet) == (2, 0.0, 4.0, 128, 1, "3d")
    assert (ac.dim, ac.lo_A2, ac.hi_A2, ac.sheet) == (3, 0.0, 8.0, None)
    assert agr.default_standardization == "minmax" and ac.default_standardization == "zscore"
    # the names descriptors already stored on disk are filed under
    assert agr.id == "homcloud-h1-0-4-128" and ac.id == "delaunay.r2-h1-0-8-128"
    assert DescriptorSpec.for_system("2d", sheet="projection").id == "homcloud-h1-0-4-128-projection"
    assert DescriptorSpec.for_system("agr", range_A2=(0, 5), bins=64).id == "homcloud-h1-0-5-64"


def test_round_trip_through_a_card_and_old_cards_read_the_same():
    spec = DescriptorSpec.for_system("2d", bins=32, backend="delaunay", elements=[6])
    back = DescriptorSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec and back.id == spec.id
    old = {
        "system": "agr",
        "dim": 2,
        "degree": 1,
        "backend": "homcloud",
        "elements": [6],
        "lo_A2": 0.0,
        "hi_A2": 4.0,
        "bins": 128,
    }  # fmt: skip  (a card written before the sheet mode existed)
    assert DescriptorSpec.from_dict(old) == replace(DescriptorSpec.for_system("agr"), bulk_pair=False)  # as trained


def test_a_named_backend_is_always_used_a_recorded_default_may_switch():
    assert DescriptorSpec.for_system("agr").requested_backend is None
    assert DescriptorSpec.for_system("agr", backend="homcloud").requested_backend == "homcloud"
    recorded = DescriptorSpec.from_dict(DescriptorSpec.for_system("agr", backend="homcloud").to_dict())
    assert recorded.requested_backend is None  # predict may use the other backend (same diagram) for such cells


@pytest.mark.parametrize(
    ("change", "named"),
    [({"bins": 1}, "bins"), ({"dim": 3}, "dim 3"), ({"colour": "red"}, "colour"), ({"system": "x"}, "'x'"),
     ({"sheet": "flat"}, "sheet"), ({"lo_A2": 5.0}, "window")],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_field(change, named):
    d = {**DescriptorSpec.for_system("agr").to_dict(), **change}
    with pytest.raises(InputError, match=named):
        DescriptorSpec.from_dict(d, "card.json")


def _card(tmp_path):
    spec = DescriptorSpec.for_system("agr")
    metrics = {"train_rmse_meV_per_atom": 1.0, "test_rmse_meV_per_atom": 2.0, "n_train": 8, "n_test": 2,
               "mean_predictor_test_rmse_meV_per_atom": 9.0, "test_energy_std_meV_per_atom": 9.5}  # fmt: skip
    return {"_id": "m", "name": "m", "path": str(tmp_path), "descriptor": spec.to_dict(), "split": {},
            "metrics": metrics, "extra_section": {"kept": np.float32(1.5)}}  # fmt: skip


def test_a_card_is_checked_when_written_and_when_read(tmp_path):
    written = write_card(tmp_path, _card(tmp_path))
    assert written["extra_section"] == {"kept": 1.5}  # further sections are kept, made JSON-ready
    card = ModelCard.from_dict(read_card(tmp_path))
    assert card.model_kind == "pd-cnn" and card.spec == DescriptorSpec.for_system("agr")
    bad = _card(tmp_path)
    del bad["metrics"]["n_test"]
    with pytest.raises(DocumentError, match="n_test"):
        write_card(tmp_path / "other", bad)
    assert not (tmp_path / "other" / "model.json").exists()  # nothing written
    damaged = {**_card(tmp_path), "metrics": {**_card(tmp_path)["metrics"], "test_rmse_meV_per_atom": "low"}}
    (tmp_path / "model.json").write_text(json.dumps(damaged, default=float))
    with pytest.raises(DocumentError, match=r"model\.json.*test_rmse_meV_per_atom.*retrain"):
        read_card(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2")
    with pytest.raises(DocumentError, match="unreadable model card"):
        read_card(tmp_path)
    with pytest.raises(InputError, match="not a pdmd model folder"):
        read_card(tmp_path / "nowhere")


def test_a_structure_document_of_the_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"_id": "abc", "n_atoms": "many", "files": {"arrays": "a.npz"}}))
    with pytest.raises(DocumentError, match=r"s\.json.*n_atoms.*rerun the melt-quench"):
        read_document(path, StructureDoc)
    path.write_text(json.dumps({"_id": "abc", "n_atoms": 3, "files": {}}))
    with pytest.raises(DocumentError, match="files.arrays"):
        read_document(path, StructureDoc)
    path.write_text(json.dumps({"_id": "abc", "n_atoms": -5, "files": {"arrays": "a.npz"}}))
    with pytest.raises(DocumentError, match="needs n_atoms >= 1, got -5"):
        read_document(path, StructureDoc)


def test_a_damaged_card_gives_one_line_through_the_cli(tmp_path):
    from conftest import fw

    card = _card(tmp_path)
    card["metrics"] = {"test_rmse_meV_per_atom": 2.0}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text(json.dumps(card, default=float))
    proc = fw(["pdmd", "show", "m"], tmp_path, check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert "not a valid pdmd model card: metrics lack" in proc.stderr and "retrain" in proc.stderr


def test_open_diagrams_are_an_option_with_their_own_id_and_differ_at_the_boundary():
    from pdmd.structure import Frame

    rng = np.random.default_rng(0)
    a = 2.46  # a rattled net of rings across the periodic boundary
    base = np.array([[0, 0], [a / 2, a / (2 * 3**0.5)]])
    cell_xy = np.array([[a, 0], [0, a * 3**0.5]])
    rect = np.vstack([base, base + [a / 2, a * 3**0.5 / 2]])
    pts = np.vstack([rect + [i * a, j * a * 3**0.5] for i in range(5) for j in range(3)])
    lx, ly = 5 * cell_xy[0, 0], 3 * cell_xy[1, 1]
    frame = Frame(np.column_stack([pts + rng.normal(0, 0.05, pts.shape), np.zeros(len(pts))]) % [lx, ly, 10],
                  np.diag([lx, ly, 10.0]), np.full(len(pts), 6), (True, True, False))  # fmt: skip
    periodic, open_ = DescriptorSpec.for_system("agr"), DescriptorSpec.for_system("agr", periodic=False)
    assert open_.id == "homcloud-h1-0-4-128-open" and DescriptorSpec.from_dict(open_.to_dict()) == open_
    dp, do = periodic.diagram(frame), open_.diagram(frame)
    assert 0 < do.n_pairs < dp.n_pairs  # rings cut by the cell boundary are missing in the open diagram
    with pytest.raises(InputError, match="bins 0"):
        DescriptorSpec.for_system("agr", bins=0)
    with pytest.raises(InputError, match="open diagram"):
        DescriptorSpec.for_system("agr", periodic=False, backend="delaunay")
