#!/usr/bin/python3
"""What a k-mer row's own composition reproduces exactly: codes that are the row's counts of
shorter words (m-mers, derived from its k-mer counts), decoded by the Markov chain of order m - 1
that those counts define. Each column's count is taken as Poisson around the chain's expected
count, and the decode predicts that Poisson's most likely non-zero count where its probability is
at least tau. tau is chosen by exact F1 on (up to 10 000 of) the training rows and applied
unchanged to the test rows. The row's total, which scales the chain, is read off the code itself
(each k-mer holds k - m + 1 m-mers), so the code length printed is all a row stores.

A reference for the autoencoders of bench/real-data/README.md ("What 32 numbers hold on the k-mer
sets"): the decoder here is written from how the rows were made, not learned.

usage: composition-codes.py SPLIT_DIR [SET ...]
  SET: dna-kmer5 (m = 2, 3, 4), protein-kmer3 (m = 1, 2); both when none is named. SPLIT_DIR holds
  SET-train.mtx and SET-test.mtx (rate-size.sh's 80/20 split). Debian's /usr/bin/python3 with
  python3-numpy and python3-scipy.
"""
import itertools
import os
import sys

import numpy as np
import scipy.io
import scipy.stats

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reverse_complement(word):
    return word.translate(COMPLEMENT)[::-1]


def dna_layout():
    """build-sets.py's dna-kmer5 columns: the canonical 5-mers in sorted order; a column counts a
    5-mer and its reverse complement, so its words are both orientations."""
    words = {min(w, reverse_complement(w)) for w in map("".join, itertools.product("ACGT", repeat=5))}
    return "ACGT", [[w, reverse_complement(w)] for w in sorted(words)], True


def protein_layout():
    """build-sets.py's protein-kmer3 columns: 3-mers over the 8 letters of the reduced alphabet."""
    return "abcdefgh", [["".join(p)] for p in itertools.product("abcdefgh", repeat=3)], False


SETS = {"dna-kmer5": (dna_layout, (2, 3, 4)), "protein-kmer3": (protein_layout, (1, 2))}


class CompositionCode:
    """Code = the row's counts of m-mers (canonical m-mers where columns merge both strands);
    decoder = the order m - 1 Markov chain of those counts (on both strands where they merge)."""

    def __init__(self, alphabet, columns, both_strands, m):
        k = len(columns[0][0])
        self.span = k - m + 1  # m-mers in one k-mer
        mers = ["".join(p) for p in itertools.product(alphabet, repeat=m)]
        canon = {w: min(w, reverse_complement(w)) if both_strands else w for w in mers}
        code_words = sorted(set(canon.values()))
        slot = {w: i for i, w in enumerate(code_words)}
        self.length = len(code_words)
        self.to_code = np.zeros((len(columns), self.length))
        for c, words in enumerate(columns):
            for i in range(self.span):
                self.to_code[c, slot[canon[words[0][i:i + m]]]] += 1
        # Every oriented m-mer's count on the strands the code covers: a palindrome (even m on
        # DNA) lies on both strands at once, so it counts twice there.
        self.oriented_slot = np.array([slot[canon[w]] for w in mers])
        self.oriented_weight = np.array([2.0 if both_strands and w == reverse_complement(w) else 1.0
                                         for w in mers])
        index = {w: i for i, w in enumerate(mers)}
        shorter = {w: i for i, w in enumerate("".join(p) for p in itertools.product(alphabet, repeat=m - 1))}
        self.prefix_of = np.array([shorter[w[:-1]] for w in mers])
        self.shorter_count = len(shorter)
        # word = first m-mer, then each next letter given the m - 1 letters before it
        self.numerators = np.array([[[index[w[i:i + m]] for i in range(self.span)] for w in words]
                                    for words in columns])
        self.denominators = np.array([[[shorter[w[i:i + m - 1]] for i in range(1, self.span)] for w in words]
                                      for words in columns])

    def encode(self, rows):
        return rows @ self.to_code

    def expected_counts(self, codes, prior=0.5):
        total = codes.sum(axis=1) / self.span
        freq = (codes + prior)[:, self.oriented_slot] * self.oriented_weight
        freq /= freq.sum(axis=1, keepdims=True)
        prefix = np.zeros((codes.shape[0], self.shorter_count))
        np.add.at(prefix.T, self.prefix_of, freq.T)
        chance = np.prod(freq[:, self.numerators], axis=3)
        if self.denominators.shape[2]:
            chance = chance / np.prod(prefix[:, self.denominators], axis=3)
        chance = chance.sum(axis=2)  # both orientations of a column
        return total[:, None] * chance / chance.sum(axis=1, keepdims=True)


def decode(expected, tau):
    count = np.maximum(np.floor(expected), 1)
    return np.where(scipy.stats.poisson.pmf(count, expected) >= tau, count, 0)


def exact_f1(predicted, rows):
    truth = rows != 0
    exact = np.count_nonzero(truth & (predicted == rows))
    return 2 * exact / (np.count_nonzero(predicted) + np.count_nonzero(truth))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    split_dir, names = argv[0], argv[1:] or list(SETS)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        print(f"composition-codes: unknown set(s) {unknown}; sets: {list(SETS)}", file=sys.stderr)
        return 2
    print("| set | m | code length | tau | training rows' F1 | test rows' F1 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        layout, orders = SETS[name]
        rows = {}
        for part in ("train", "test"):
            path = os.path.join(split_dir, f"{name}-{part}.mtx")
            if not os.path.exists(path):
                print(f"composition-codes: {path} is missing (rate-size.sh makes the split)", file=sys.stderr)
                return 2
            rows[part] = scipy.io.mmread(path).tocsr().toarray().astype(np.float64)
        train = rows["train"][:10_000]
        for m in orders:
            code = CompositionCode(*layout(), m)
            fitted = code.expected_counts(code.encode(train))
            f1, tau = max((exact_f1(decode(fitted, t), train), t) for t in np.arange(0.05, 0.60, 0.01))
            test_f1 = exact_f1(decode(code.expected_counts(code.encode(rows["test"])), tau), rows["test"])
            print(f"| {name} | {m} | {code.length} | {tau:.2f} | {100 * f1:.2f} | {100 * test_f1:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
