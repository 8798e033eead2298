"""Structures written outside pdmd's generator: sheets in any plane and cell, buckled sheets, POSCAR,
extxyz and LAMMPS files, and the one-line errors for what pdmd cannot take."""

import subprocess
from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.build import graphene
from ase.io import write
from conftest import BIN

from pdmd.descriptor.persistence import alpha_diagram
from pdmd.errors import DescriptorError, InputError
from pdmd.md.random_cell import random_positions
from pdmd.models.labelled import LabelKeys, check_split_size, read_labelled
from pdmd.structure import Frame, ReadOptions, check_structure_fits, read_frames, sheet_axis, structure_dim

N = 120
L = float(np.sqrt(N / 0.38))


@pytest.fixture(scope="module")
def flat():
    """A random carbon sheet in the xy plane (min. distance 1.3 Å), 15 Å of vacuum along z, pbc in xy."""
    xy = random_positions(N, np.diag([L, L]), 1.3, seed=5)
    return Atoms(f"C{N}", positions=np.column_stack([xy, np.full(N, 7.5)]), cell=[L, L, 15.0], pbc=True)


@pytest.fixture(scope="module")
def ref(flat):
    return alpha_diagram(Frame.from_ase(flat), 2)


def same(d1, d2, atol=1e-8):
    assert d1.n_pairs == d2.n_pairs and d1.n_pairs > 50
    np.testing.assert_allclose(d1.births_A2, d2.births_A2, atol=atol)
    np.testing.assert_allclose(d1.deaths_A2, d2.deaths_A2, atol=atol)
    np.testing.assert_allclose(d1.essential_births_A2, d2.essential_births_A2, atol=atol)


def permuted(atoms: Atoms, order: list[int]) -> Atoms:
    """The same structure with Cartesian axes (and cell axes) permuted: the sheet in another plane."""
    return Atoms(atoms.numbers, positions=atoms.positions[:, order], cell=atoms.cell[:][order][:, order], pbc=True)


def buckled(atoms: Atoms, amplitude: float) -> Atoms:
    out = atoms.copy()
    x, y = out.positions[:, 0] / L, out.positions[:, 1] / L
    out.positions[:, 2] += amplitude * np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y)
    return out


def test_sheets_in_xz_and_yz_planes_and_across_the_cell_boundary_give_the_flat_diagram(flat, ref):
    for order, axis in (([0, 2, 1], 1), ([2, 1, 0], 0), ([1, 2, 0], 1)):
        atoms = permuted(flat, order)
        assert sheet_axis(Frame.from_ase(atoms)) == axis and structure_dim(Frame.from_ase(atoms)) == 2
        same(alpha_diagram(Frame.from_ase(atoms), 2), ref)
    straddling = flat.copy()
    straddling.positions[:, 2] = np.where(np.arange(N) % 2, -0.1, 14.9)  # one plane, half the atoms in the image
    same(alpha_diagram(Frame.from_ase(straddling), 2), ref)


def test_buckled_sheet_projection_keeps_the_in_plane_diagram_and_3d_sees_the_buckling(flat, ref):
    wavy = buckled(flat, 1.5)
    assert np.ptp(wavy.positions[:, 2]) > 2.5 and structure_dim(Frame.from_ase(wavy)) == 2
    same(alpha_diagram(Frame.from_ase(wavy), 2, sheet="projection"), ref)
    flat3d = alpha_diagram(Frame.from_ase(flat), 2, sheet="3d")
    same(flat3d, ref)  # a flat sheet: the open 3D diagram is the 2D one
    wavy3d = alpha_diagram(Frame.from_ase(wavy), 2, sheet="3d")
    assert len(wavy3d.essential_births_A2) == 2 and wavy3d.n_pairs > 50
    assert not np.allclose(np.sort(wavy3d.deaths_A2)[:50], np.sort(ref.deaths_A2)[:50])  # real bond lengths differ
    # the sheet in the xz plane gives the same 3D diagram
    same(alpha_diagram(Frame.from_ase(permuted(wavy, [0, 2, 1])), 2, sheet="3d"), wavy3d, atol=1e-6)


def test_tilted_triclinic_cell_and_hexagonal_graphene(flat, ref):
    # the same sheet in a cell whose third vector is tilted (triclinic): in-plane lattice unchanged
    tri = Atoms(flat.numbers, positions=flat.positions, cell=[[L, 0, 0], [0, L, 0], [3.0, -2.0, 15.0]], pbc=True)
    same(alpha_diagram(Frame.from_ase(tri), 2), ref)
    # sheared in-plane basis (a, a + b) of the same lattice: HomCloud refuses it, the default switches backend
    sheared = Atoms(flat.numbers, positions=flat.positions, cell=[[L, 0, 0], [L, L, 0], [0, 0, 15.0]], pbc=True)
    auto = alpha_diagram(Frame.from_ase(sheared), 2)
    assert auto.computed_by == "delaunay"
    same(auto, ref)
    with pytest.raises(DescriptorError, match="axis-aligned.*use backend 'delaunay'"):
        alpha_diagram(Frame.from_ase(sheared), 2, backend="homcloud")
    # ASE's graphene (hexagonal cell, no vacuum vector, pbc T T F), rattled: its rectangular re-cell (a
    # double cover of the same periodic structure) has every pair twice, plus one: a lifted torus loop
    hexa = graphene(size=(6, 6, 1))
    hexa.positions += np.random.default_rng(0).normal(0, 0.08, hexa.positions.shape)
    d_hex = alpha_diagram(Frame.from_ase(hexa), 2)
    a1, a2 = hexa.cell[0], hexa.cell[1]
    rect = hexa.repeat((1, 2, 1))
    rect.set_cell([a1, a1 + 2 * a2, [0, 0, 10.0]], scale_atoms=False)
    rect.pbc = True
    d_rect = alpha_diagram(Frame.from_ase(rect), 2)
    pairs = Counter(map(tuple, np.round(d_rect.pairs(), 8)))
    pairs.subtract(Counter(map(tuple, np.round(np.repeat(d_hex.pairs(), 2, axis=0), 8))))
    extra = [p for p, c in pairs.items() for _ in range(c) if c > 0]
    assert min(pairs.values()) == 0 and len(extra) == 1 and d_rect.n_pairs == 2 * d_hex.n_pairs + 1
    assert np.isclose(extra[0][0], d_hex.essential_births_A2).any()
    # perfect graphene (co-circular hexagons: no unique Delaunay triangulation): one pair per independent
    # hexagon, E - V + 1 - 2 torus loops = 108 - 72 + 1 - 2 = 35, born at (bond/2)², dying at bond² (Å²)
    perfect = alpha_diagram(Frame.from_ase(graphene(size=(6, 6, 1))), 2)
    assert perfect.n_pairs == 35 and len(perfect.essential_births_A2) == 2
    np.testing.assert_allclose(perfect.births_A2, 1.42028**2 / 4, rtol=1e-4)
    np.testing.assert_allclose(perfect.deaths_A2, 1.42028**2, rtol=1e-4)


def test_files_poscar_extxyz_lammps_data_with_image_flags_and_dump(flat, ref, tmp_path):
    xz = permuted(flat, [0, 2, 1])
    write(tmp_path / "POSCAR", xz, format="vasp")
    write(tmp_path / "sheet.extxyz", xz)
    for name in ("POSCAR", "sheet.extxyz"):
        same(alpha_diagram(Frame.from_ase(read_frames(tmp_path / name)[0]), 2), ref)
    # LAMMPS data, atom_style full, no style comment, image flags that put atoms several cells away
    rng = np.random.default_rng(1)
    flags = rng.integers(-3, 4, (N, 3)) * [1, 1, 0]
    lines = ["written by hand", "", f"{N} atoms", "1 atom types", f"0 {L} xlo xhi", f"0 {L} ylo yhi",
             "0 15 zlo zhi", "", "Masses", "", "1 12.011", "", "Atoms", ""]  # fmt: skip
    for i, (p, f) in enumerate(zip(flat.positions, flags)):
        lines.append(f"{i + 1} 1 1 0.0 {p[0]:.10f} {p[1]:.10f} {p[2]:.10f} {f[0]} {f[1]} {f[2]}")
    (tmp_path / "sheet.data").write_text("\n".join(lines) + "\n")
    atoms = read_frames(tmp_path / "sheet.data")[0]  # .data -> lammps-data, style from the column count
    assert np.abs(atoms.positions[:, :2]).max() > L  # unwrapped by the image flags ...
    same(alpha_diagram(Frame.from_ase(atoms), 2), ref)  # ... and wrapped back
    style = read_frames(tmp_path / "sheet.data", options=ReadOptions(atom_style="full"))[0]
    np.testing.assert_allclose(style.positions, atoms.positions)
    with pytest.raises(InputError, match="cannot read structure file .*sheet.data as lammps-data.*--atom-style"):
        read_frames(tmp_path / "sheet.data", options=ReadOptions(atom_style="atomic"))
    dump = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", str(N), "ITEM: BOX BOUNDS pp pp pp", f"0 {L}", f"0 {L}",
            "0 15", "ITEM: ATOMS id type xu yu zu"]  # fmt: skip
    unwrapped = flat.positions + flags * L
    dump += [f"{i + 1} 1 {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}" for i, p in enumerate(unwrapped)]
    (tmp_path / "dump.sheet").write_text("\n".join(dump) + "\n")
    dumped = read_frames(tmp_path / "dump.sheet")[0]  # recognised by its first line
    dumped.numbers[:] = 6  # dumps carry types, not elements
    same(alpha_diagram(Frame.from_ase(dumped), 2), ref)
    # a 3D cell in a triclinic basis of its own lattice, as a LAMMPS data file (tilt factors, rotated box)
    cube = Atoms("C64", positions=random_positions(64, np.eye(3) * 8.4, 1.3, seed=3), cell=np.eye(3) * 8.4, pbc=True)
    a, b, c = cube.cell[:]
    tri = cube.copy()
    tri.set_cell([a, b + a, c - b], scale_atoms=False)
    write(tmp_path / "tri.lmp", tri, format="lammps-data", masses=True)
    back = read_frames(tmp_path / "tri.lmp")[0]
    assert abs(back.cell[1, 0]) > 1.0  # a tilted box
    same(alpha_diagram(Frame.from_ase(back), 3), alpha_diagram(Frame.from_ase(cube), 3), atol=1e-6)
    with pytest.raises(InputError, match="cannot read structure file .* as a guessed format .*--format"):
        (tmp_path / "junk.xyz").write_text("not a structure\n")
        read_frames(tmp_path / "junk.xyz")


def test_one_line_errors_name_the_problem(flat, tmp_path):
    si = flat.copy()
    si.numbers[:] = 14
    with pytest.raises(InputError, match=r"120 Si atoms, not carbon"):
        alpha_diagram(Frame.from_ase(si), 2)
    mixed = flat.copy()
    mixed.numbers[:3] = 1
    with pytest.raises(InputError, match=r"mixes carbon with other atoms \(3 H\)"):
        alpha_diagram(Frame.from_ase(mixed), 2)
    # LAMMPS data without Masses: type 1 reads as H, and the error says what to add
    lines = ["no masses", "", f"{N} atoms", "1 atom types", f"0 {L} xlo xhi", f"0 {L} ylo yhi", "0 15 zlo zhi", "",
             "Atoms # atomic", ""]  # fmt: skip
    lines += [f"{i + 1} 1 {p[0]} {p[1]} {p[2]}" for i, p in enumerate(flat.positions)]
    (tmp_path / "h.lmp").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="not carbon.*Masses"):
        alpha_diagram(Frame.from_ase(read_frames(tmp_path / "h.lmp")[0]), 2)
    cube = Frame(random_positions(64, np.eye(3) * 8.5, 1.3, seed=2), np.eye(3) * 8.5, np.full(64, 6), (True,) * 3)
    with pytest.raises(InputError, match="is a 3D periodic structure .*not a 2D sheet"):
        alpha_diagram(cube, 2)
    with pytest.raises(InputError, match="is a 2D sheet .*not a 3D periodic cell"):
        alpha_diagram(Frame.from_ase(flat), 3)
    with pytest.raises(InputError, match="3D periodic structure.*trained on 2D sheets"):
        check_structure_fits(cube, 2, [6])
    with pytest.raises(InputError, match="is a 2D sheet.*trained on 3D periodic cells"):
        check_structure_fits(Frame.from_ase(flat), 3, [6])
    molecule = Atoms("C6", positions=np.random.default_rng(0).uniform(0, 3, (6, 3)) * [1, 1, 1])
    with pytest.raises(InputError, match="3 zero lattice vectors"):
        structure_dim(Frame.from_ase(molecule))
    stray = flat.copy()
    stray.positions[0, 2] += 12.0  # 12 Å above the sheet: not one sheet
    stray.cell[2, 2] = 40.0
    with pytest.raises(InputError, match="thick across its vacuum .*atom 0"):
        alpha_diagram(Frame.from_ase(stray), 2)


def test_training_labels_keys_and_refusals(flat, tmp_path):
    frames = []
    for i in range(12):
        a = buckled(flat, 0.1 * i)
        a.info["run_id"] = f"run{i % 4}"
        a.arrays["atomic_energy"] = np.full(N, -7.0 + 0.01 * i)
        a.arrays["REF_forces"] = np.zeros((N, 3)) + i
        frames.append(a)
    write(tmp_path / "good.extxyz", frames)
    data = read_labelled(tmp_path / "good.extxyz", keys=LabelKeys("atomic_energy", "REF_forces"))
    np.testing.assert_allclose(data.energies_eV, -7.0 + 0.01 * np.arange(12))  # per-atom array summed / N
    assert data.forces_eV_A[3].shape == (N, 3) and data.forces_eV_A[3][0, 0] == 3
    check_split_size(data.groups, 0.25, "run", 0, "good")  # 9 train / 3 test structures: enough
    with pytest.raises(InputError, match="no energy 'wrong'"):
        read_labelled(tmp_path / "good.extxyz", keys=LabelKeys("wrong"))
    frames[5].arrays["atomic_energy"][7] = np.nan
    write(tmp_path / "nan.extxyz", frames)
    with pytest.raises(InputError, match=r"nan.extxyz@5: the energy is nan"):
        read_labelled(tmp_path / "nan.extxyz", keys=LabelKeys("atomic_energy"))
    with pytest.raises(InputError, match=r"good.extxyz@0: no energy"):
        read_labelled(tmp_path / "good.extxyz")
    frames[5].arrays["atomic_energy"][7] = -7.0
    frames[2].positions[4, 1] = np.inf
    write(tmp_path / "inf.extxyz", frames)
    with pytest.raises(InputError, match=r"inf.extxyz@2: atom 4 .*non-finite"):
        read_labelled(tmp_path / "inf.extxyz", keys=LabelKeys("atomic_energy"))
    with pytest.raises(InputError, match="2 structures are too few: .* 1 training / 1 test"):
        check_split_size(["a", "b"], 0.5, "run", 0, "two")
    with pytest.raises(InputError, match="one run .*--split snapshot"):
        check_split_size(["a"] * 20, 0.2, "run", 0, "one")
    with pytest.raises(InputError, match="test fraction must lie between 0 and 1"):
        check_split_size(data.groups, 1.0, "snapshot", 0, "all-test")
    write(tmp_path / "three.extxyz", frames[6:9])
    for name, message in (("nan.extxyz", "nan.extxyz@5: the energy is nan"), ("three.extxyz", "too few")):
        argv = ["train", "--data", str(tmp_path / name), "--energy-key", "atomic_energy", "--out", str(tmp_path / "m")]
        proc = subprocess.run([str(BIN / "pdmd"), *argv], capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "m").exists()  # refused before any PD or model


def test_pd_command_on_a_buckled_sheet_in_the_xz_plane_and_a_wrapped_lammps_cell(flat, tmp_path):
    write(tmp_path / "wavy.extxyz", permuted(buckled(flat, 1.5), [0, 2, 1]))
    out = subprocess.run([str(BIN / "pdmd"), "pd", str(tmp_path / "wavy.extxyz")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2D sheet" in out.stdout and "outside [0, 4]²" in out.stdout
    n = 64
    cube = random_positions(n, np.eye(3) * 8.4, 1.3, seed=3)
    atoms = Atoms(f"C{n}", positions=cube + [[8.4 * 2, 0, -8.4]] * (np.arange(n)[:, None] % 2), cell=[8.4] * 3,
                  pbc=True)  # fmt: skip
    write(tmp_path / "ac.data", atoms, format="lammps-data", masses=True)
    out = subprocess.run([str(BIN / "pdmd"), "pd", str(tmp_path / "ac.data")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "3D periodic cell" in out.stdout and "outside [0, 8]²" in out.stdout  # the 3D training window
    assert "wrapped into it" in out.stderr and "Traceback" not in out.stderr
    hexa = tmp_path / "graphene.extxyz"
    write(hexa, graphene(size=(6, 6, 1), vacuum=5.0))
    out = subprocess.run([str(BIN / "pdmd"), "pd", str(hexa), "--backend", "homcloud"], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "axis-aligned" in out.stderr and "use backend 'delaunay'" in out.stderr


def test_script_without_main_guard_computes_homcloud_diagrams(tmp_path):
    """The HomCloud worker is a spawned process; it must not re-run a user's unguarded script."""
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import numpy as np\n"
        "from pdmd.descriptor.persistence import alpha_diagram\n"
        "from pdmd.md.random_cell import random_positions\n"
        "from pdmd.structure import Frame\n"
        f"xy = random_positions({N}, np.diag([{L}, {L}]), 1.3, seed=5)\n"
        f"f = Frame(np.column_stack([xy, np.zeros({N})]), np.diag([{L}, {L}, 10.0]), np.full({N}, 6), (1, 1, 0))\n"
        "print('pairs', alpha_diagram(f, 2, backend='homcloud').n_pairs)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("pairs "), out.stderr[-2000:]
    assert int(out.stdout.split()[1]) > 50
