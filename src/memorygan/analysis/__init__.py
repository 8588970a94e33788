"""Analyses of trained generators (DESIGN 5; MemoryGAN Sec. 4.5): sequential composition, part-level style mixing,
interpolation, t-SNE of per-part codes and cosine correlation between parts. Each has a figure function and a
`write_*` function that saves the PNG(s) and the numbers behind them (`memorygan analyze ...`)."""
from memorygan.analysis.compose import composition_figure, sequential_composition, write_composition
from memorygan.analysis.correlate import correlation, correlation_figure, cosine_correlation, write_correlation
from memorygan.analysis.embed import embedding, embedding_figure, tsne, write_embedding
from memorygan.analysis.interpolate import (interpolate_codes, interpolation, interpolation_figure,
                                            write_interpolation)
from memorygan.analysis.mix import (LARGE_PARTS, MODES, large_part_ids, mix_parts, mixing, mixing_grid, swap_layers,
                                    swap_mask, write_mixing)
from memorygan.analysis.parts import SPACES, part_codes

__all__ = [
    "sequential_composition", "composition_figure", "write_composition",
    "LARGE_PARTS", "MODES", "large_part_ids", "swap_layers", "swap_mask", "mix_parts", "mixing", "mixing_grid",
    "write_mixing",
    "interpolate_codes", "interpolation", "interpolation_figure", "write_interpolation",
    "SPACES", "part_codes",
    "tsne", "embedding", "embedding_figure", "write_embedding",
    "cosine_correlation", "correlation", "correlation_figure", "write_correlation",
]
