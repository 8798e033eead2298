import mongomock
import numpy as np

from pdmd.descriptor.spec import DescriptorSpec
from pdmd.pipeline import descriptors_for_structures
from pdmd.store.datastore import DESCRIPTORS, STRUCTURES, DataStore
from pdmd.structure import Frame

AGR = DescriptorSpec.for_system("agr")


def frame(seed=0):
    rng = np.random.default_rng(seed)
    a, b = 1.42 * 1.5, 1.42 * 1.2  # a rattled rectangular net of 6 × 8 atoms filling its periodic cell
    lx, ly = 6 * a, 8 * b
    xy = np.array([[i * a, j * b] for i in range(6) for j in range(8)]) + rng.normal(0, 0.05, (48, 2))
    cell = np.diag([lx, ly, 10.0])
    return Frame(np.column_stack([xy % [lx, ly], np.zeros(48)]), cell, np.full(48, 6), (True, True, False))


def meta(step=10):
    return {"run_id": "r1", "kind": "intermediate", "step": step, "energy_eV_per_atom": -6.5, "system": "agr"}


def test_structure_storage_is_idempotent_and_reindexable(tmp_path):
    db = mongomock.MongoClient().db
    store = DataStore(tmp_path, db=db)
    d1 = store.save_structure(frame(), meta())
    d2 = store.save_structure(frame(), meta())
    assert d1 == d2 and db[STRUCTURES].count_documents({}) == 1
    assert len(list((tmp_path / "structures" / "r1").glob("*.npz"))) == 1
    np.testing.assert_allclose(store.load_frame(d1).positions, frame().positions)
    store.save_structure(frame(1), meta(20))
    descriptors_for_structures(store, store.run_structures("r1"), AGR, isolate=False)
    again = descriptors_for_structures(store, store.run_structures("r1"), AGR, isolate=False)
    assert again["reused"] == 2 and again["computed"] == 0
    db[STRUCTURES].drop()
    db[DESCRIPTORS].drop()
    counts = DataStore(tmp_path, db=db).reindex()  # the database was lost; files rebuild it
    assert counts == {STRUCTURES: 2, DESCRIPTORS: 2}
    assert db[STRUCTURES].find_one({"_id": d1["_id"]})["energy_eV_per_atom"] == -6.5
    assert list(DataStore(tmp_path).iter_structures({"step": 20}))[0]["step"] == 20  # file-only queries


def test_no_temporary_files_left_and_documents_stay_small(tmp_path):
    store = DataStore(tmp_path, db=mongomock.MongoClient().db)
    doc = store.save_structure(frame(), meta())
    descriptors_for_structures(store, [doc], AGR, isolate=False)
    assert not list(tmp_path.rglob("*.tmp"))
    import json

    for path in tmp_path.rglob("*.json"):
        assert len(json.dumps(json.loads(path.read_text()))) < 20_000  # arrays live in npz files


def test_loading_a_data_set_reads_without_writing_and_a_rerun_restores_the_index(tmp_path):
    from pdmd.models.data import load_store_dataset

    store = DataStore(tmp_path, db=mongomock.MongoClient().db)
    for i in range(3):
        store.save_structure(frame(i), meta(10 * (i + 1)))
    descriptors_for_structures(store, store.run_structures("r1"), AGR, isolate=False)
    store.db[DESCRIPTORS].drop()
    data = load_store_dataset(store, ["r1"], AGR)
    assert len(data.energies_eV) == 3
    assert store.db[DESCRIPTORS].count_documents({}) == 0  # reading a data set wrote nothing
    again = descriptors_for_structures(store, store.run_structures("r1"), AGR, isolate=False)
    assert again["reused"] == 3 and store.db[DESCRIPTORS].count_documents({}) == 3  # the rerun re-indexes


def test_an_unfinished_run_is_extended_only_with_its_own_settings(tmp_path):
    """A partly stored run (no complete.json): the same settings continue it, other settings are refused."""
    from dataclasses import replace

    import pytest

    from pdmd.errors import InputError
    from pdmd.md.protocol import MeltQuenchProtocol
    from pdmd.pipeline import _reuse_stored_run

    protocol = MeltQuenchProtocol(seed=5, cooling_rate_K_per_ps=800.0, n_atoms=48)
    store = DataStore(tmp_path, db=mongomock.MongoClient().db)
    store.save_structure(frame(), {**meta(), "run_id": protocol.run_id, "protocol": protocol.as_dict()})
    assert _reuse_stored_run(protocol, store) is None  # unfinished: run it again, same settings
    with pytest.raises(InputError, match=r"partly stored.*timestep_fs: stored 1\.0, asked 0\.5.*remove the unfinished"):
        _reuse_stored_run(replace(protocol, timestep_fs=0.5), store)
