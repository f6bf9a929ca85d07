#!/usr/bin/env python3
"""The --auto table of the real-data benchmark: for every set, `sae train --auto` at latent 32
against PCA-32 on the same held-out rows, by the exact-entry F1, with the winning recipe, the
F1 ratio to PCA and the wall time of the search (its budget is cpu time on this machine). The
best recipe's model is measured again with refined codes (--refine-steps 40), which --auto keeps
where they score higher: "--auto F1" is the model it writes; the budget holds that trial too,
whose seconds are the last column. On a set of more rows than --auto-rows, the recipes are
ranked on a sample of them ("rows ranked on"; "best recipe's F1" is on its validation rows) and
the best then trains on every row ("every row": its epochs there and its F1 on all the
validation rows). Prints a Markdown table (README.md beside this script, "--auto against PCA").

Usage: auto.py SAE_BINARY [SETS_DIR] [--budget SECONDS] [--epochs N] [--val-frac F] [--sets a,b]
               [--auto-rows N]
"""
import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_SETS = ["text-words", "code-tokens", "protein-kmer3", "dna-kmer5", "image-rgb"]


def search(sae, data, budget, epochs, val_frac, auto_rows):
    command = [sae, "train", "--auto", "--data", data, "--backend", "cpu", "--auto-budget",
               str(budget), "--val-frac", str(val_frac), "-o", "", "--json", "--quiet"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if auto_rows is not None:
        command += ["--auto-rows", str(auto_rows)]
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.time() - start
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["failed"])[-1], seconds
    return json.loads(done.stdout), "", seconds


def describe(recipe):
    loss = recipe["loss"]
    if "huber_delta" in recipe:
        loss += f"({recipe['huber_delta']:g})"
    start = "pca anchor" if recipe["pca_anchor"] else f"latent {recipe['latent_activation']}"
    return f"{loss}/{recipe['decode']}, {start}, {recipe['epochs']} epochs"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sae")
    parser.add_argument("sets_dir", nargs="?",
                        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sets"))
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--epochs", type=int, default=None,
                        help="the most epochs a recipe trains (default: --auto's)")
    parser.add_argument("--val-frac", type=float, default=0.2)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--auto-rows", type=int, default=None,
                        help="the most rows that rank the recipes (default: --auto's)")
    args = parser.parse_args()
    epochs = "" if args.epochs is None else f" --epochs {args.epochs}"
    if args.auto_rows is not None:
        epochs += f" --auto-rows {args.auto_rows}"
    print(f"`sae train --auto --auto-budget {args.budget:g}{epochs} --val-frac {args.val_frac}`, "
          "latent 32, cpu backend; exact-entry F1 % on the held-out rows; seconds: wall time of "
          "the whole search on 2 cores.\n")
    print("| set | rows ranked on | PCA-32 F1 | best recipe's F1 | every row: epochs, F1 | "
          "refined codes' F1 | --auto F1 | ratio | winning recipe | seconds | "
          "of which the refinement trial |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.sets.split(","):
        data = os.path.join(args.sets_dir, name + ".mtx")
        result, failure, seconds = search(args.sae, data, args.budget, args.epochs, args.val_frac,
                                          args.auto_rows)
        if result is None:
            print(f"| {name} | | | failed: {failure} | | | | | | {seconds:.0f} | |", flush=True)
            continue
        best = result["recipes"][result["best"]]
        pca = result["pca"]["validation"]["exact_f1"]
        # The model --auto writes: the best recipe's, with refined codes where they scored higher.
        refinement = result.get("refinement")
        refined = "" if refinement is None else f"{100 * refinement['exact_f1']:.2f}"
        trial = "" if refinement is None else f"{refinement['seconds']:.0f}"
        all_rows = result.get("all_rows")
        every_row = "" if all_rows is None else \
            f"{all_rows['epochs']}, {100 * all_rows['exact_f1']:.2f}"
        unrefined = best["exact_f1"] if all_rows is None else all_rows["exact_f1"]
        kept = refinement["exact_f1"] if refinement and refinement["kept"] else unrefined
        ratio = kept / pca if pca > 0 else float("inf")
        print(f"| {name} | {result['search_rows']} | {100 * pca:.2f} | {100 * best['exact_f1']:.2f} | "
              f"{every_row} | {refined} | {100 * kept:.2f} | {ratio:.2f}x | {describe(best)} | "
              f"{seconds:.0f} | {trial} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
