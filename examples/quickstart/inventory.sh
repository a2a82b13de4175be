#!/bin/sh
# Ansible dynamic inventory: `ansible -i examples/quickstart/inventory.sh all -m ping`.
# Ansible calls it with --list or --host NAME; tg answers for this testbed's session.
exec tg -chdir "$(dirname "$0")" inventory "$@"
