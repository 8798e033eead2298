"""Persistence diagrams of atom positions and the histogram images the CNN reads."""
