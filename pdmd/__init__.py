"""pdmd: persistent-homology descriptors of MD structures and a CNN potential on them.

Method of Minamitani & Obayashi, arXiv:2206.13727. Units throughout: Å, eV, K, ps;
persistence birth/death values are squared alpha radii in Å².
"""

from __future__ import annotations

__version__ = "0.1.0"
