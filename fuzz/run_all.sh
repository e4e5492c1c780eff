#!/usr/bin/env bash
# Runs each fuzz target for $SECONDS_EACH seconds (default 600), one after
# another on one core, from the seed corpora in seeds/; logs in logs/.
set -euo pipefail
cd "$(dirname "$0")"
each=${SECONDS_EACH:-600}
for target in ${TARGETS:-idx checkpoint weights cli}; do
    mkdir -p "corpus/$target" logs
    cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$each" -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        > "logs/$target.log" 2>&1 || { echo "$target: FAILED, see logs/$target.log"; tail -30 "logs/$target.log"; exit 1; }
    echo "$target: $(grep -E 'stat::number_of_executed_units' "logs/$target.log" | tail -1)"
done
