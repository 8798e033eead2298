"""Melt-quench molecular dynamics (LAMMPS) and structural analysis of the results."""
