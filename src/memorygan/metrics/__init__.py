"""Metrics (DESIGN.md section 5): feature statistics with FID/KID/IS (Inception or probe features), the domain
probe, domain metrics and mask consistency, and the registry that computes them by name (`compute_metrics`)."""
from memorygan.metrics.domain import DomainMetrics, domain_metrics
from memorygan.metrics.fidelity import (FeatureExtractor, InceptionExtractor, ProbeExtractor, compute_fidelity,
                                        fidelity_scores, real_feature_stats)
from memorygan.metrics.probe import (ProbeReport, ProbeUNet, dataset_fingerprint, evaluate_probe, load_probe,
                                     train_probe)
from memorygan.metrics.compute import compute_metrics
from memorygan.metrics.evaluate import evaluate_run, run_snapshot
from memorygan.metrics.format import format_results
from memorygan.metrics.jsonl import append_metric_lines, read_metric_lines
from memorygan.metrics.registry import metric_names
from memorygan.metrics.stats import (FeatureStats, IoUCounts, fid_from_stats, frechet_distance,
                                     kernel_inception_distance, mean_iou)

__all__ = [
    "FeatureStats", "frechet_distance", "fid_from_stats", "kernel_inception_distance", "IoUCounts", "mean_iou",
    "ProbeUNet", "ProbeReport", "train_probe", "load_probe", "evaluate_probe", "dataset_fingerprint",
    "DomainMetrics", "domain_metrics",
    "FeatureExtractor", "InceptionExtractor", "ProbeExtractor", "compute_fidelity", "fidelity_scores",
    "real_feature_stats",
    "compute_metrics", "evaluate_run", "run_snapshot", "append_metric_lines", "read_metric_lines", "format_results",
    "metric_names",
]
