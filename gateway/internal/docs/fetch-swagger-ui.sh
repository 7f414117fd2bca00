#!/bin/sh
# Fetches the pinned swagger-ui-dist release from the npm registry and vendors
# the files the /docs page serves into assets/swagger-ui/. The tarball's
# SHA-256 is pinned: a changed or substituted package fails the script
# instead of landing in the binary. To upgrade, change VERSION and SHA256,
# run the script, and review the diff.
set -eu

VERSION=5.35.0
SHA256=1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6

here=$(cd "$(dirname "$0")" && pwd)
dest="$here/assets/swagger-ui"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball="$tmp/swagger-ui-dist-$VERSION.tgz"
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	echo "swagger-ui-dist@$VERSION: sha256 $got, want $SHA256" >&2
	exit 1
fi
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$dest"
for f in LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png; do
	cp "$tmp/package/$f" "$dest/$f"
done
echo "$VERSION" >"$dest/VERSION"
echo "vendored swagger-ui-dist $VERSION into $dest"
