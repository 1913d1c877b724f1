"""Notebook front ends (the only package importing IPython and ipywidgets)."""
