#!/usr/bin/env python3
"""Sparse latent codes on the real sets (issue 17): the exact-entry F1 on the validation rows and
the code's L0 of TopK at k = 4, 8, 16 (8 and 16 also with AuxK's gradient on the dead latents,
8 also with unit-norm decoder columns) and BatchTopK at k = 8, beside ReLU + L1 and PCA-32, each
trained by sae train with the same split, loss and epochs; and the bytes per row of the model's
lossless coding (every block, codes as float32 under the adaptive byte models) of the held-out
fifth of the set (rate-size.sh's split, which must exist in WORK_DIR).

Usage: topk.py SAE SETS_DIR WORK_DIR [EPOCHS] [SETS...]; $CONFIGS (labels joined by ",") runs
only those configurations.
"""
import json
import os
import subprocess
import sys
import time

CONFIGS = [
    ("relu + l1 1e-3", ["--latent-act", "relu", "--l1", "1e-3"]),
    ("topk:4", ["--latent-act", "topk:4"]),
    ("topk:8", ["--latent-act", "topk:8"]),
    ("topk:16", ["--latent-act", "topk:16"]),
    ("batchtopk:8", ["--latent-act", "batchtopk:8"]),
    ("topk:8 + aux-k 8", ["--latent-act", "topk:8", "--aux-k", "8"]),
    ("topk:16 + aux-k 16", ["--latent-act", "topk:16", "--aux-k", "16"]),
    ("topk:8 + decoder-norm", ["--latent-act", "topk:8", "--decoder-norm"]),
]


def main():
    sae, sets_dir, work = (os.path.abspath(a) for a in sys.argv[1:4])
    epochs = sys.argv[4] if len(sys.argv) > 4 else "10"
    sets = sys.argv[5:] or ["text-words", "code-tokens"]
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    print(f"{'set':14} {'code':16} {'exact F1':>9} {'PCA F1':>7} {'L0':>6} {'dead':>6} "
          f"{'B/row':>7} {'seconds':>8}")
    chosen = os.environ.get("CONFIGS")
    configs = [c for c in CONFIGS if chosen is None or c[0] in chosen.split(",")]
    for name in sets:
        for label, flags in configs:
            tag = label.replace(" ", "").replace(":", "").replace("+", "-")
            ckpt = os.path.join(work, f"{name}-{tag}.ckpt")
            start = time.time()
            out = subprocess.run(
                ["nice", "-n", "19", sae, "train", "--data", os.path.join(sets_dir, name + ".mtx"),
                 "--epochs", epochs, "-o", ckpt, "--force", "--json", "--quiet",
                 "--backend", "cpu"] + flags,
                capture_output=True, text=True, env=env, check=True).stdout
            seconds = time.time() - start
            report = json.loads(out)
            validation = report["validation"]
            test = os.path.join(work, f"{name}-test.mtx")
            stats = subprocess.run(
                ["nice", "-n", "19", sae, "compress", "--model", ckpt, "--data", test, "-o",
                 os.path.join(work, "topk.sae"), "--backend", "cpu", "--stats"],
                capture_output=True, text=True, env=env, check=True).stdout
            every = next(line.split()[5] for line in stats.splitlines()
                         if "model coding of every block" in line)
            print(f"{name:14} {label:16} {validation['exact_f1']:9.4f} "
                  f"{report['pca']['validation']['exact_f1']:7.4f} {validation['latent_l0']:6.2f} "
                  f"{validation['dead_latent_fraction']:6.3f} {float(every):7.2f} {seconds:8.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
