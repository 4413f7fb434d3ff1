#!/usr/bin/env bash
# Checks deploy/grafana-dashboard.json (meson test dashboard, suite deploy):
# every metric the design seed names has a panel, every query is filtered by
# the job and instance variables and has a legend, and no query uses `or`
# (which shows one series where two are meant).
set -euo pipefail
dash=${1:-$(dirname "$0")/grafana-dashboard.json}
seed_metrics=(
  alys_sync_state alys_sync_current_height alys_sync_target_height
  alys_sync_blocks_behind alys_sync_blocks_per_second alys_sync_peer_count
  alys_sync_errors_total alys_sync_recoveries_total alys_peer_response_time_seconds
  alys_block_validation_duration_seconds alys_block_execution_duration_seconds
  alys_batch_processing_duration_seconds alys_checkpoint_height
  alys_checkpoints_created_total
)
fail=0
exprs=$(jq -r '.panels[].targets[].expr' "$dash")
for m in "${seed_metrics[@]}"; do
  grep -q "$m" <<<"$exprs" || { echo "no panel shows $m"; fail=1; }
done
# The Grafana variables, literally (not shell expansions).
# shellcheck disable=SC2016
job_sel='job=~"$job"' instance_sel='instance=~"$instance"'
while IFS= read -r e; do
  [[ $e == *"$job_sel"* && $e == *"$instance_sel"* ]] ||
    { echo "not filtered by \$job and \$instance: $e"; fail=1; }
  [[ $e == *' or '* ]] && { echo "uses 'or': $e"; fail=1; }
done <<<"$exprs"
if jq -e '[.panels[].targets[] | select((.legendFormat // "") == "")] | length > 0' "$dash" >/dev/null; then
  echo "a query without a legend"; fail=1
fi
for v in job instance; do
  jq -e --arg v "$v" '.templating.list | map(.name) | index($v)' "$dash" >/dev/null ||
    { echo "no \$$v variable"; fail=1; }
done
[ "$fail" -eq 0 ] && echo "dashboard: ok"
exit "$fail"
