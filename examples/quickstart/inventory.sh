#!/bin/sh
# Ansible dynamic inventory: `ansible -i examples/quickstart/inventory.sh all -m ping`.
# Ansible calls it with --list or --host NAME; tg answers for this testbed's session
# (TG_SESSION picks one). TG names the tg binary when it is not on PATH.
exec "${TG:-tg}" -chdir "$(dirname "$0")" inventory "$@"
