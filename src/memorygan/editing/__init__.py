"""Editing (DESIGN 6): codes files shared by inversion and the editing commands, assessors, learned and closed-form
latent directions, and the measurement of an edit's effect."""
from memorygan.editing.codes import CODES_FORMAT, Codes, load_codes, save_codes

__all__ = ["CODES_FORMAT", "Codes", "load_codes", "save_codes"]
