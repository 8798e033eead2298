"""pdmd: persistent-homology descriptors of MD structures and a CNN potential on them.

Method of Minamitani & Obayashi, arXiv:2206.13727. Units throughout: Å, eV, K, ps;
persistence birth/death values are squared alpha radii in Å².
"""

from __future__ import annotations

from pdmd.version import __version__

__all__ = ["PDPotential", "__version__", "load_potential"]


def __getattr__(name: str):
    """Lazy re-exports: `from pdmd import load_potential, PDPotential` without importing torch/ASE up front."""
    if name == "load_potential":
        from pdmd.api import load_potential

        return load_potential
    if name == "PDPotential":
        from pdmd.api import PDPotential

        return PDPotential
    raise AttributeError(f"module 'pdmd' has no attribute {name!r}")
