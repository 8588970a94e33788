"""allocator.tune_allocator: large temporaries stop costing page faults (measured in fresh processes)."""
import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys, torch
from memorygan import allocator
applied = allocator.tune_allocator() if sys.argv[1] == "tuned" else False
x = torch.ones(4 << 20)                       # 16 MiB temporaries, as a forward pass makes them
for _ in range(2):
    (x * 2).sum()
f0 = allocator.minor_faults()
for _ in range(10):
    (x * 2).sum()
print(json.dumps({"applied": applied, "faults": allocator.minor_faults() - f0}))
"""


def _run(mode: str, env=None) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_tuned_allocator_reuses_large_blocks():
    default, tuned = _run("default"), _run("tuned")
    assert tuned["applied"] is True
    # 10 x 16 MiB freshly mapped pages by default (thousands of faults each); none once the heap keeps them
    assert default["faults"] > 10 * 1000 and tuned["faults"] < 200, (default, tuned)


def test_can_be_turned_off(monkeypatch):
    import os
    env = dict(os.environ, MEMORYGAN_DEFAULT_MALLOC="1")
    assert _run("tuned", env)["applied"] is False
