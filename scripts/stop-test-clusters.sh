#!/usr/bin/env bash
# Stops PostgreSQL clusters that test processes started (under /tmp/trailwatch-pg-*) and that are
# still running: normally each test process's watchdog has already done it. Touches only those,
# and not those whose test process (owner.pid) still runs — another test run on this machine.
for data in /tmp/trailwatch-pg-*/data; do
  [ -f "$data/postmaster.pid" ] || continue
  owner=$(cat "$(dirname "$data")/owner.pid" 2>/dev/null || true)
  if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
  for bin in /usr/lib/postgresql/*/bin; do
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 && break
    else
      "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 && break
    fi
  done
  rm -rf "$(dirname "$data")"
done
exit 0
