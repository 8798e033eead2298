"""Analyses of trained models and data sets: Grad-CAM, interpolation test, descriptor comparison, baselines."""
