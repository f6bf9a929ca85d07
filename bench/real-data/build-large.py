#!/usr/bin/env python3
"""A real count matrix with more rows than `sae train --auto` ranks recipes on (--auto-rows,
default 65536): dna-kmer5's genomes cut into 100-bp windows instead of 400-bp ones, the same
canonical 5-mer columns (188 843 rows of 82.6 non-zeros on average). Built by build-sets.py's own
code with its window set to 100 and no row cap, so that it rebuilds byte for byte from the same
packages (build-sets.sh installs them).

Usage: build-large.py [OUT_DIR]     writes OUT_DIR/dna-kmer5-w100.mtx (default: sets/ beside this)
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    out = argv[0] if argv else os.path.join(HERE, "sets")
    spec = importlib.util.spec_from_file_location("build_sets", os.path.join(HERE, "build-sets.py"))
    sets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sets)
    sets.DNA_WINDOW = 100
    os.makedirs(out, exist_ok=True)
    rows, _ = sets.build_dna(os.path.join(out, ".cache"))
    what = ("a 100-bp window (not overlapping; windows more than 10 % N skipped) of one genome per "
            "species, as dna-kmer5's 400-bp ones")
    path = os.path.join(out, "dna-kmer5-w100.mtx")
    sets.write_mtx(path, "dna-kmer5-w100", what, rows)
    nnz = sum(len(r) for r in rows)
    print(f"{path}: {len(rows)} rows, {nnz / len(rows):.1f} non-zeros/row")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
