#!/bin/sh
# A command agent that spawns a child with maosctl and waits for it; its env names this task.
set -e
maosctl="$1"
id=$("$maosctl" task submit child --agent-type echo --input '{"x": 7}' --parent "$MAOS_TASK_ID")
"$maosctl" task wait "$id"
