#!/usr/bin/env bash
# Data-parallel training under mpirun on the cpu backend (ctest label mpi):
#  - 1, 2 and 3 ranks train the same parameters as one process (to float rounding), from .mtx
#    and from .npy (the dense path);
#  - a run of 2 ranks resumed on 3 ends where one uninterrupted process does;
#  - a run without validation rows trains to the end (no "diverged" from an empty validation);
#  - a bad row in rank 1's share ends the job with one line naming rank 1, in bounded time;
#  - a rank killed mid-run ends the job, and the last checkpoint still loads.
# Usage: data_parallel_test.sh SAE MPIEXEC PYTHON WORK_DIR
set -euo pipefail
sae=$1
mpiexec=$2
python=$3
work=$4
here=$(cd "$(dirname "$0")" && pwd)
compare="$python $here/compare_checkpoints.py"
rm -rf "$work" && mkdir -p "$work" && cd "$work"

# One OpenMP thread a rank: the ranks share the machine's cores. --oversubscribe: more ranks than
# cores; --allow-run-as-root: CI runs as root.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
mpirun_n() { local n=$1; shift; timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root -np "$n" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

"$sae" gen --out data.mtx --rows 2000 --cols 64 --nnz 10 --quiet
train=(train --backend cpu --data data.mtx --hidden 32 --latent 8 --batch 128 --select loss --no-pca
       --quiet)

echo "== the same parameters from 1 process and from 1, 2 and 3 ranks"
"$sae" "${train[@]}" --epochs 3 -o single.ckpt --json > single.json
for n in 1 2 3; do
  mpirun_n "$n" "$sae" "${train[@]}" --epochs 3 -o "ranks$n.ckpt" --json > "ranks$n.json"
done
$compare 1e-5 single.ckpt ranks1.ckpt ranks2.ckpt ranks3.ckpt
# The reduced validation metrics are those of all the validation rows.
grep -q '"rows": 200,' ranks3.json || fail "3 ranks did not report the 200 validation rows"

echo "== a hurdle loss: its threshold and decode chosen on the reduced validation counts"
# --decoder-norm: each rank rescales its replica of the decoder alike after the reduced step.
hurdle=("${train[@]}" --epochs 2 --loss hurdle --latent-act topk:4 --l1 0.01 --clip-norm 1
        --decoder-norm --json)
"$sae" "${hurdle[@]}" -o hurdle-single.ckpt > hurdle-single.json
mpirun_n 3 "$sae" "${hurdle[@]}" -o hurdle-ranks3.ckpt > hurdle-ranks3.json
$compare 1e-5 hurdle-single.ckpt hurdle-ranks3.ckpt
for field in '"hurdle_threshold": [0-9.]*' '"decode": {[^}]*}' '"rows": [0-9]*'; do
  [[ $(grep -o "$field" hurdle-single.json) == $(grep -o "$field" hurdle-ranks3.json) ]] ||
    fail "3 ranks report another $field than one process"
done

echo "== dense rows (.npy, the dense path) on 1 process and 3 ranks"
"$sae" gen --out dense.npy --rows 1500 --cols 48 --nnz 8 --quiet
dense=(train --backend cpu --data dense.npy --hidden 16 --latent 4 --batch 100 --epochs 2
       --select loss --no-pca --quiet)
"$sae" "${dense[@]}" -o dense-single.ckpt > dense-single.out
mpirun_n 3 "$sae" "${dense[@]}" -o dense-ranks3.ckpt > dense-ranks3.out
$compare 1e-5 dense-single.ckpt dense-ranks3.ckpt

echo "== 2 ranks for 2 epochs, resumed on 3 ranks to epoch 3"
mpirun_n 2 "$sae" "${train[@]}" --epochs 2 -o resumed.ckpt > resumed-2.out
mpirun_n 3 "$sae" train --backend cpu --resume resumed.ckpt --epochs 3 -o resumed.ckpt \
  --no-pca --quiet > resumed-3.out
$compare 1e-5 single.ckpt resumed.ckpt

echo "== no validation rows"
"$sae" "${train[@]}" --epochs 4 --val-frac 0 -o single-noval.ckpt > single-noval.out
mpirun_n 2 "$sae" "${train[@]}" --epochs 4 --val-frac 0 -o ranks-noval.ckpt \
  > ranks-noval.out
$compare 1e-5 single-noval.ckpt ranks-noval.ckpt

echo "== a bad row in rank 1's share"
# The last entry (a row of rank 1's half) gets a value that is not a count.
sed '$ s/[0-9]*$/-3/' data.mtx > bad.mtx
set +e
mpirun_n 2 "$sae" train --backend cpu --data bad.mtx --epochs 2 -o bad.ckpt --quiet \
  > bad.out 2> bad.err
status=$?
set -e
cat bad.err
[[ $status -ne 0 && $status -ne 124 ]] || fail "a bad shard exited with $status (124: it hung)"
[[ $(grep -c '^sae: error: rank 1 of 2: ' bad.err) -eq 1 ]] || fail "no one line naming rank 1"
! grep -q 'rank 0 of 2' bad.err || fail "rank 0 reported an error of its own"

echo "== rank 1 killed mid-run"
set +e
timeout 120 "$mpiexec" --oversubscribe --allow-run-as-root -np 2 bash -c '
  if [[ $OMPI_COMM_WORLD_RANK == 1 ]]; then (sleep 3; kill -9 $$) & fi
  exec "$0" "$@"' "$sae" "${train[@]}" --epochs 100000 -o killed.ckpt > killed.out 2> killed.err
status=$?
set -e
tail -5 killed.err
[[ $status -ne 0 && $status -ne 124 ]] || fail "a killed rank's job exited with $status (124: it hung)"
[[ -f killed.ckpt ]] || fail "no checkpoint was written before the kill"
"$sae" info --backend cpu --model killed.ckpt > /dev/null || fail "the last checkpoint does not load"
echo "data-parallel tests passed"
