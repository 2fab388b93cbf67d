#!/usr/bin/env bash
# `make run`, second part: an aggregator serving the CloudWatch Logs API on loopback, an agent
# shipping the sample logs to it with PutLogEvents, then reads through the API (the AWS CLI when
# installed) and the store. Everything stops at the end.
set -euo pipefail
BIN=${1:-.build/release/trailwatch}
export TW_DEMO_KEY_ID=AKIDTRAILWATCHDEMO TW_DEMO_SECRET=demo-secret-not-for-production
export TW_DEMO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf var/aggregator var/agent
mkdir -p var/aggregator
"$BIN" run pipelines/api-aggregator.yaml --quiet 2> var/aggregator/stderr.log &
AGGREGATOR=$!
trap 'kill -TERM $AGGREGATOR 2>/dev/null; wait $AGGREGATOR 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'serving ' var/aggregator/stderr.log 2>/dev/null && break; sleep 0.1; done
echo "== aggregator: CloudWatch Logs API on http://127.0.0.1:$TW_DEMO_PORT (SigV4, key $TW_DEMO_KEY_ID)"
"$BIN" run pipelines/api-agent.yaml --once --quiet
echo "== agent shipped the sample logs with PutLogEvents; $(wc -l < var/aggregator/received.log) events acknowledged and received"
if command -v aws > /dev/null; then
  export AWS_ACCESS_KEY_ID=$TW_DEMO_KEY_ID AWS_SECRET_ACCESS_KEY=$TW_DEMO_SECRET AWS_DEFAULT_REGION=us-east-1
  echo "== aws logs describe-log-groups --endpoint-url http://127.0.0.1:$TW_DEMO_PORT"
  aws logs describe-log-groups --endpoint-url "http://127.0.0.1:$TW_DEMO_PORT" --query 'logGroups[].logGroupName' --output text
  echo "== aws logs filter-log-events --log-group-name /app/worker --filter-pattern ERROR (first 3)"
  aws logs filter-log-events --log-group-name /app/worker --filter-pattern ERROR --endpoint-url "http://127.0.0.1:$TW_DEMO_PORT" \
    --limit 3 --no-paginate --query 'events[].[message]' --output text
else
  echo "(install the AWS CLI with 'pip install awscli' to query the API; the store answers meanwhile)"
fi
echo "== trailwatch query var/aggregator/store.db 'stats count(*) as events by @log'"
"$BIN" query var/aggregator/store.db 'stats count(*) as events by @log'
