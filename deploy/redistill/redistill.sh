#!/bin/sh
# The scheduled redistillation, as cron, systemd and Kubernetes run it. Exit 3 (the gate kept the current
# model) and 4 (nothing new to learn) are normal outcomes, not failures: they exit 0 so schedulers don't
# alert or retry. Everything else (errors, 5 = another run holds the registry) is passed on.
#   DISTILBOT_REGISTRY  model registry (shared with the API servers)
#   DISTILBOT_DB_URL    the bot's store (read only)
#   REDISTILL_ARGS      extra options, e.g. "--keep 10 --tolerance 0.003"
set -u
python -m distill redistill --registry "${DISTILBOT_REGISTRY}" --db "${DISTILBOT_DB_URL}" ${REDISTILL_ARGS:-}
code=$?
case $code in
  0) echo "redistill: published a new version" ;;
  3) echo "redistill: the gate kept the current version (see the report)"; code=0 ;;
  4) echo "redistill: nothing new to learn"; code=0 ;;
esac
exit $code
