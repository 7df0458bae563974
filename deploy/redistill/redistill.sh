#!/bin/sh
# The scheduled redistillation, as cron, systemd and Kubernetes run it. Exit 3 (the gate kept the current
# model) and 4 (nothing new to learn) are normal outcomes, not failures: they exit 0 so schedulers don't
# alert or retry. Everything else (errors, 5 = another run holds the registry) is passed on.
#   DISTILBOT_REGISTRY  model registry (shared with the API servers)
#   DISTILBOT_DB_URL    the bot's store (read only); distill reads it from the environment: with its password
#                       it never goes on a command line, where any user of the machine could read it
#   DISTILBOT_REDISTILL_WORK  harvested visitor text (a volume only this job mounts; --retention-days prunes it)
#   REDISTILL_ARGS      extra options, e.g. "--keep 10 --retention-days 14"
set -u
: "${DISTILBOT_DB_URL:?is not set}"
python -m distill redistill --registry "${DISTILBOT_REGISTRY}" ${REDISTILL_ARGS:-}
code=$?
case $code in
  0) echo "redistill: published a new version" ;;
  3) echo "redistill: the gate kept the current version (see the report)"; code=0 ;;
  4) echo "redistill: nothing new to learn"; code=0 ;;
esac
exit $code
