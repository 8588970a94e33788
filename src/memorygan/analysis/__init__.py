"""Analyses of trained generators (DESIGN 5): sequential composition, ..."""
from memorygan.analysis.compose import composition_figure, sequential_composition

__all__ = ["sequential_composition", "composition_figure"]
