"""Re-measure every checkpoint of a BigGAN run with the fixed domain IS (the run computed IS on class-sorted splits,
which gives 1; the other numbers are unchanged). Rewrites RUN/metrics.jsonl, keeping the in-run file as
metrics-during-run.jsonl.

    python docs/biggan/posthoc.py RUN DATA [THREADS]
"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
from pathlib import Path
from memorygan.biggan.checkpoint import load_biggan
from memorygan.biggan.classifier import load_classifier
from memorygan.biggan.evaluate import evaluate_generator, real_features
from memorygan.runs import list_checkpoints
run, data = Path(sys.argv[1]), sys.argv[2]
clf, _ = load_classifier(data)
real = real_features(clf, data)
old = {json.loads(l)["step"]: json.loads(l) for l in open(run / "metrics.jsonl")}
rows = []
for ck in list_checkpoints(run):
    G, cfg = load_biggan(ck)
    meta = json.loads((ck / "generator" / "config.json").read_text())["training"]
    r = evaluate_generator(G, clf, real, 50, categories=cfg.class_names)
    row = {"step": meta["step"], "kimg": meta["kimg"], "train_minutes": old.get(meta["step"], {}).get("train_minutes"),
           **{k: v for k, v in r.items() if k != "per_class"},
           "per_class_accuracy": {k: v["accuracy"] for k, v in r["per_class"].items()},
           "per_class_fid": {k: v["fid"] for k, v in r["per_class"].items()}}
    rows.append(row)
    print(row["step"], round(row["accuracy"], 3), round(row["inception_score"], 2), round(row["fid"], 2), round(row["fid_per_class_mean"], 2), row["precision"], row["recall"], flush=True)
(run / "metrics.jsonl").with_name("metrics-during-run.jsonl").write_text((run / "metrics.jsonl").read_text())
(run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
