# SPDX-License-Identifier: GPL-3.0-or-later
"""MD with a trained model (pd-local): the ASE engine and the LAMMPS engine (`fix external`)."""
