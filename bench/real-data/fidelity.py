#!/usr/bin/env python3
"""The fidelity table of the real-data benchmark: for every set, PCA beside each loss of sae
compare (with each loss's default decode, and the hurdles also decoded by their mode), by the
exact-entry F1 on held-out rows, with exact precision and recall, exact rows, NLL bits per row and
seconds. Prints a Markdown table (README.md beside this script, "Fidelity").

Usage: fidelity.py SAE_BINARY [SETS_DIR] [--epochs N] [--val-frac F] [--sets a,b,...]
"""
import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_SETS = ["text-words", "code-tokens", "protein-kmer3", "dna-kmer5", "image-rgb"]
# (losses, decode): each loss's own decode (mean for the count likelihoods, round otherwise), and
# the two-part hurdles by the mode of their distribution, with the threshold chosen on the
# validation rows.
RUNS = [("mse,poisson,hurdle,hurdle_nb", None), ("hurdle,hurdle_nb", "mode")]


def compare(sae, data, losses, decode, epochs, val_frac, with_pca):
    command = [sae, "compare", "--data", data, "--backend", "cpu", "--losses", losses,
               "--epochs", str(epochs), "--val-frac", str(val_frac), "--json", "--quiet"]
    if decode:
        command += ["--decode", decode]
    if not with_pca:
        command.append("--no-pca")
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1:], time.time() - start
    return json.loads(done.stdout), [], time.time() - start


def percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sae")
    parser.add_argument("sets_dir", nargs="?",
                        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sets"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--val-frac", type=float, default=0.2)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    args = parser.parse_args()
    print("| set | model | decode | exact F1 % | exact P % | exact R % | rows exact % | "
          "nll bits/row | train s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in args.sets.split(","):
        data = os.path.join(args.sets_dir, name + ".mtx")
        for index, (losses, decode) in enumerate(RUNS):
            result, error, _ = compare(args.sae, data, losses, decode, args.epochs,
                                       args.val_frac, with_pca=index == 0)
            if result is None:
                print(f"| {name} | {losses} | {decode or 'default'} | error: {' '.join(error)} "
                      "| | | | | |")
                continue
            rows = list(result["losses"])
            if "pca" in result:
                rows.insert(0, dict(result["pca"], loss="pca-32"))
            for row in rows:
                if "failure" in row:
                    print(f"| {name} | {row['loss']} | {decode or 'default'} | failed: "
                          f"{row['failure']} | | | | | |", flush=True)
                    continue
                m = row["validation"]
                nll = m.get("nll_bits_per_row")
                print(f"| {name} | {row['loss']} | {m['decode']} | {percent(m['exact_f1'])} | "
                      f"{percent(m['exact_precision'])} | {percent(m['exact_recall'])} | "
                      f"{percent(m['row_exact_fraction'])} | "
                      f"{'n/a' if nll is None else f'{nll:.1f}'} | "
                      f"{row.get('seconds', 0):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
