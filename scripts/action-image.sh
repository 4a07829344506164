#!/usr/bin/env bash
# Point the container action at a prebuilt image: action.yml's `runs.image: Dockerfile`
# becomes `docker://IMAGE`, so a job using the action pulls the image (seconds) instead of
# building it (minutes). The release workflow runs this on the release commit it makes for
# the major tag (v1, ...); main keeps `image: Dockerfile` and builds from source.
#
#   scripts/action-image.sh ghcr.io/OWNER/alembic-preflight:1.2.3 [action.yml]
set -euo pipefail
image=${1:?usage: $0 IMAGE [ACTION_YML]}
file=${2:-action.yml}
line='  image: Dockerfile'
if [[ $(grep -cx -- "$line" "$file") != 1 ]]; then
    echo "$file: expected exactly one line '$line' (under runs:)" >&2
    exit 1
fi
sed -i "s|^$line\$|  image: docker://$image|" "$file"
grep -qx -- "  image: docker://$image" "$file"
