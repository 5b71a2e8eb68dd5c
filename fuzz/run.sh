#!/usr/bin/env bash
# Runs every fuzz target for the given number of seconds (default 600), after replaying the
# inputs kept in fuzz/regressions/<target>/ (each one once made a target fail; they must pass
# now). CI runs it with 30 s per target; before a parser change is called done, run it longer.
#
#   bash fuzz/run.sh            # 10 minutes per target
#   bash fuzz/run.sh 30 log_formats sentry_envelope
#
# Fuzzing needs nightly compiler flags (sanitizers, coverage). The nightly toolchain is used when
# rustup has one; otherwise the stable compiler is asked to accept them (RUSTC_BOOTSTRAP=1), which
# is how this runs on a machine with one toolchain. A crash leaves its input in
# fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
summary=()
for target in "${targets[@]}"; do
  echo "--- $target"
  "${fuzz[@]}" build --release "$target" >/dev/null
  if [ -d "regressions/$target" ]; then
    "${fuzz[@]}" run --release "$target" "regressions/$target" -- -runs=0 >/dev/null 2>&1 \
      || { echo "$target: a kept regression input fails again" >&2; exit 1; }
  fi
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if ! "${fuzz[@]}" run --release "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "$target: the fuzzer found a failing input (see fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  summary+=("$target: $execs runs in ${seconds} s, clean")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
