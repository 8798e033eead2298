# SPDX-License-Identifier: GPL-3.0-or-later
"""pd-local: a local persistent-homology potential with forces.

Every atom gets the persistence diagram of the alpha filtration of its neighbourhood (the atom and
its neighbours within `cutoff_A`, periodic images included; the sheet's xy plane for 2D aGr, 3D
for aC). Each diagram pair is vectorized with Gaussians on (birth, death) and weighted by a smooth
cutoff of its simplices' vertices' distances from the atom and by a smooth ramp of its persistence,
so energies stay continuous as atoms cross the cutoff and pairs are born on the diagonal. A small
network maps an atom's vector to its energy; a structure's energy is the sum.

Forces: every birth and death value is the filtration value of one simplex, the squared radius of
the smallest circumsphere of a "source" simplex (the simplex itself, or the coface it is attached
to); the sources are recorded when the complex is built and their radii recomputed in torch from
the positions, so F = -dE/dr is exact autograd.

Modules: `complex` (neighbourhoods, batched local alpha complexes, persistence pairs with their
sources), `incremental` (neighbour lists and triangulations reused between MD steps, certified),
`features` (torch values, weights, vectorization), `compiled` / `pairing` / `kernels` (the same
complexes, pairs, features and their gradient compiled with numba, for evaluation), `model` (network, loaded model,
energy_and_forces, energy_forces_stress), `train` (energy + force loss), `reference` (Tersoff
single-point reference forces for stored data). The ASE calculator is `pdmd.calculator.PDPotential`.
"""
