# Splits a MatrixMarket coordinate file by row: every fifth row (r % 5 == 0) to the test file.
BEGIN { header = 1 }
/^%/ { if (header) { print > train; print > test }; next }
header { split($0, f, " "); rows = f[1]; cols = f[2]; header = 0;
         ntest = int(rows / 5); ntrain = rows - ntest; next }
{ r = $1 + 0; if (r % 5 == 0) { tl[++nt] = (r / 5) " " $2 " " $3 } else { trl[++ntr] = (r - int(r / 5)) " " $2 " " $3 } }
END {
  print ntrain, cols, ntr > train; for (i = 1; i <= ntr; i++) print trl[i] > train;
  print ntest, cols, nt > test; for (i = 1; i <= nt; i++) print tl[i] > test;
}
