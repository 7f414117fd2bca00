#!/usr/bin/env bash
# Renames the module path of every module of the workspace, for a team that
# clones Bastion as the start of its own project:
#
#   bash tools/rename-module.sh example.com/mybank
#
# It rewrites github.com/bastion-bank/bastion to the new path in every go.mod,
# Go file, .proto go_package and the Makefile (tracked files only), then
# regenerates the code from the protos and tidies each module. Review the
# diff and run `make test` afterwards. It refuses to run on a dirty tree, so
# the change is one reviewable diff.
set -euo pipefail
cd "$(dirname "$0")/.."
old="github.com/bastion-bank/bastion"
new="${1:-}"
if [[ ! "$new" =~ ^[a-z0-9.-]+(/[A-Za-z0-9._~-]+)+$ ]]; then
	echo "usage: $0 NEW/MODULE/PATH   (e.g. example.com/mybank)" >&2
	exit 2
fi
if [[ -n "$(git status --porcelain)" ]]; then
	echo "the working tree has changes: commit or stash them first" >&2
	exit 1
fi
git ls-files -z -- '*.go' '*.mod' '*.proto' 'Makefile' | xargs -0 grep -lZ -F "$old" |
	xargs -0 -r sed -i "s#${old//./\\.}#${new}#g"
make gen
while read -r dir; do
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod tidy)
done < <(go list -m -f '{{.Dir}}')
echo "renamed $old to $new; review with git diff, then run make test"
