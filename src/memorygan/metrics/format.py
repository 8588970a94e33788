"""A readable table of metric results (`memorygan metrics` prints it)."""
from __future__ import annotations

import math

from memorygan.metrics.registry import METRICS


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _table(rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    """Columns aligned: the first left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def format_results(results: dict[str, dict]) -> str:
    """A readable table: one row per metric (value, std, samples, real images, seconds), then the per-class IoU
    of consistency and the per-part values of smse / leakage."""
    rows = [("metric", "value", "std", "samples", "real", "seconds")]
    for name, r in results.items():
        m = METRICS.get(name)
        value = r.get(m.key) if m else None
        std = r.get(m.std_key) if m and m.std_key else None
        rows.append((name, _fmt(value), _fmt(std), _fmt(r.get("num_samples")), _fmt(r.get("num_real")),
                     f"{r.get('seconds', float('nan')):.1f}"))
    lines = _table(rows)
    if "consistency" in results:
        iou = results["consistency"].get("mask_iou") or {}
        lines += ["", "consistency per class:", *_table([("class", "IoU")] + [(c, _fmt(v)) for c, v in iou.items()],
                                                        "  ")]
    if "smse" in results:
        per = results["smse"].get("smse") or {}
        lines += ["", "smse per part, in order of addition:",
                  *_table([("part", "mean", "std", "count")] + [(p, _fmt(v.get("mean")), _fmt(v.get("std")),
                                                                 _fmt(v.get("count"))) for p, v in per.items()], "  ")]
    if "leakage" in results:
        per = results["leakage"].get("leakage") or {}
        lines += ["", "leakage per part (ratio = outside / inside):",
                  *_table([("part", "ratio", "inside", "outside", "area")]
                          + [(p, _fmt(v.get("ratio")), _fmt(v.get("inside")), _fmt(v.get("outside")),
                              _fmt(v.get("area"))) for p, v in per.items()], "  ")]
    return "\n".join(lines)
