"""How far the first training steps and the held-out check of each zoo model move between CPU
kernels: the tolerances of tests/test_zoo.py come from this measurement.

    python scripts/measure_provenance.py                                  # this machine's kernels
    ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 python scripts/measure_provenance.py

Prints, per model, the largest |recomputed - stored| training loss over the first 50 steps and the
relative difference of the held-out spot check (and the [MASK] accuracy for BERT).
"""

import json
import sys

import torch

from lmlib import zoo
from lmlib.training import seed_everything

STEPS = 50


def main(names) -> None:
    out = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
    for name in names:
        m = zoo.load(name)
        data = zoo.zoo_data(m.config, tokenizer=m.tokenizer)
        seed_everything(m.recipe["train"].get("seed", 0))
        model = zoo.build(m.config, data.tokenizer)
        h = zoo.fit(model, m.config, data, progress=False, stop_after=STEPS)
        step_diff = max(abs(a - b) for a, b in zip(h.train_loss, m.history.train_loss[:STEPS]))
        got = zoo.evaluate(m.model, m.config, data, "test", quick=True)
        want = m.metrics["check"]
        rel = {k: abs(got[k] - want[k]) / abs(want[k]) for k in want if isinstance(want[k], float)}
        out[name] = {"step_loss_max_abs_diff": step_diff, "check_rel_diff": rel}
        print(name, json.dumps(out[name]), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or list(zoo.ZOO_NAMES))
