#!/usr/bin/env bash
# Prepare a Docker engine and the images the end-to-end tests (tests/e2e/test_docker.py) need,
# on a machine with no running engine and no image registry (see issue 4):
#
#   1. docker.io + debootstrap from Debian, if missing
#   2. dockerd, if no engine answers (log: $DOCKERD_LOG)
#   3. stand-ins that earlier versions of this script tagged with official names: untagged
#   4. alembic-preflight-test/debian:bookworm-slim: debootstrapped (minbase) and imported
#   5. alembic-preflight-test/postgres:15: a stand-in built from that base with Debian's
#      PostgreSQL 15, behaving like the official image for testcontainers
#      (POSTGRES_USER/_PASSWORD/_DB, psql, UTF8); the tests pass it as --postgres-image
#   6. alembic-preflight-test/alembic-preflight: the product image from the real Dockerfile,
#      built FROM the base of step 4 (--build-arg BASE_IMAGE; the Dockerfile's default stays
#      the official debian:bookworm-slim for real builds)
#
# Every image it makes is named under alembic-preflight-test/ and labelled
# org.alembic-preflight.stand-in: an official name (postgres:17-alpine, debian:bookworm-slim)
# on a machine must be the real image, or a later `docker build` or `docker run` there would
# take a look-alike for it (a "postgres:17-alpine" that is PostgreSQL 15). Earlier versions
# did tag those names; step 3 removes such tags.
#
# Idempotent: every step is skipped when its result is there; images carry a label with a hash
# of their inputs and are rebuilt only when it changes. Safe to run on a machine that has a real
# engine and registry: it never replaces an image it did not build (no stand-in label).
#
# Environment:
#   E2E_PRODUCT_IMAGE  tag of the product image        (default: alembic-preflight-test/alembic-preflight)
#   E2E_PG_IMAGE       PostgreSQL image for the tests  (default: alembic-preflight-test/postgres:15);
#                      another name is used as it is (pulled if absent), never built
#   DEBIAN_MIRROR      mirror for debootstrap           (default: Debian's)
#   DOCKERD_LOG        where dockerd logs when started  (default: /var/log/dockerd-e2e.log)
#   PIP_INDEX_URL      passed to the product build when set (else the Dockerfile's default)
set -euo pipefail

cd "$(dirname "$0")/.."
# dockerd, and the iptables it runs, live in sbin, which a non-login PATH may lack
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
DOCKER=/usr/bin/docker # Debian's client: the one in /usr/local/bin needs buildx for BuildKit
OURS=alembic-preflight-test # the namespace of every image this script makes
PRODUCT_IMAGE=${E2E_PRODUCT_IMAGE:-$OURS/alembic-preflight}
PG_IMAGE=${E2E_PG_IMAGE:-$OURS/postgres:15}
BASE_IMAGE=$OURS/debian:bookworm-slim
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd-e2e.log}
HASH_LABEL=org.alembic-preflight.inputs-hash
STANDIN_LABEL=org.alembic-preflight.stand-in
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# One run at a time (pytest-xdist workers each call this script): the others wait, then find
# everything up to date.
exec 9>/tmp/alembic-preflight-docker-e2e-setup.lock
flock 9

SECONDS_TOTAL_START=$SECONDS
step_start=0
step() { step_start=$SECONDS; echo "==> $*"; }
done_step() { echo "    ($*: $((SECONDS - step_start)) s)"; }

label_of() { # IMAGE LABEL -> value or empty
    "$DOCKER" image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

# -- 1. packages ------------------------------------------------------------------------------
step "docker.io and debootstrap"
# Only what is missing: a machine with its own engine (a GitHub runner's Docker packages,
# dockerd in /usr/bin) keeps it; Debian's docker.io would conflict with them.
find_dockerd() { # Debian puts it in /usr/sbin, which a non-login PATH may lack
    command -v dockerd 2>/dev/null || for d in /usr/sbin/dockerd /usr/bin/dockerd; do
        if [[ -x $d ]]; then
            echo "$d"
            return
        fi
    done
}
packages=()
if [[ ! -x $DOCKER ]] || { ! timeout 5 "$DOCKER" info >/dev/null 2>&1 && [[ -z $(find_dockerd) ]]; }; then
    packages+=(docker.io iptables)
fi
if ! command -v debootstrap >/dev/null; then
    packages+=(debootstrap)
fi
if ((${#packages[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
done_step "packages"

# -- 2. the engine ----------------------------------------------------------------------------
step "Docker engine"
if ! timeout 5 "$DOCKER" info >/dev/null 2>&1; then
    if [[ -n ${DOCKER_HOST:-} ]]; then
        echo "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd" >&2
        exit 1
    fi
    # A machine restored from a snapshot keeps /var/run: pid files of daemons that are gone
    # make dockerd refuse to start ("pid file found"). Remove those whose process is not alive
    # under that name; a live daemon's file is kept.
    for pidfile in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
        file=${pidfile%%:*} name=${pidfile##*:}
        [[ -f $file ]] || continue
        pid=$(tr -dc 0-9 <"$file")
        if [[ -z $pid || $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
            echo "    removing stale $file (pid ${pid:-none} is not a running $name)"
            rm -f "$file"
        fi
    done
    echo "    starting dockerd (log: $DOCKERD_LOG)"
    # setsid: dockerd outlives this script (CI runs the tests after it)
    # 9>&-: the daemon must not inherit (and hold forever) the lock taken above
    setsid nohup "$(find_dockerd)" >"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    for _ in $(seq 1 60); do
        if [[ -S /var/run/docker.sock ]] && timeout 5 "$DOCKER" info >/dev/null 2>&1; then
            break
        fi
        sleep 1
    done
    if ! timeout 5 "$DOCKER" info >/dev/null 2>&1; then
        echo "dockerd did not answer within 60 s; last lines of $DOCKERD_LOG:" >&2
        tail -n 30 "$DOCKERD_LOG" >&2
        exit 1
    fi
fi
done_step "engine"

# -- 3. official names that earlier versions gave stand-ins ----------------------------------
step "stand-ins under official names"
official_name() { # REPOSITORY -> whether it names a Docker Official Image (no namespace)
    local repo=${1#docker.io/}
    repo=${repo#library/}
    [[ $repo != */* ]]
}
untag() { # TAG WHY
    local err
    if err=$("$DOCKER" image rm "$1" 2>&1 >/dev/null); then
        echo "    untagged $1 ($2)"
    else # a container (even a stopped one) still uses it: the next run tries again
        echo "    kept $1 for now ($2): ${err##*: }"
    fi
}
# The stand-in PostgreSQL they built (postgres:17-alpine, or E2E_PG_IMAGE): its label says it
# is ours, whatever its name
while read -r tag; do
    if [[ $tag != "$OURS"/* && $tag != *"<none>"* ]] && official_name "${tag%:*}"; then
        untag "$tag" "our stand-in, label $STANDIN_LABEL"
    fi
done < <("$DOCKER" image ls --filter "label=$STANDIN_LABEL=debian-postgresql-15" \
    --format '{{.Repository}}:{{.Tag}}')
# The base they imported carries no label: an image by that name that no registry gave
# (no digest) and `docker import` made (the comment it writes) is that one. A real
# debian:bookworm-slim has a digest, even when it was loaded from a tar.
old_base=debian:bookworm-slim
if [[ $("$DOCKER" image inspect --format '{{len .RepoDigests}} {{.Comment}}' "$old_base" 2>/dev/null) == "0 Imported from -" ]]; then
    untag "$old_base" "imported by an earlier version of this script"
fi
done_step "official names"

# -- 4. the base image ------------------------------------------------------------------------
step "$BASE_IMAGE"
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    rootfs=$(mktemp -d /tmp/bookworm-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
        >/tmp/debootstrap-e2e.log 2>&1 || {
        tail -n 30 /tmp/debootstrap-e2e.log >&2
        exit 1
    }
    # What the official image adds on top of a minbase tree (debuerreotype's "slimify" and
    # apt settings), so that builds behave the same on the stand-in: deb822 sources with
    # updates and security, no docs or man pages, no leftover .debs.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | "$DOCKER" import \
        --change 'CMD ["bash"]' \
        --change "LABEL $STANDIN_LABEL=debian-bookworm-minbase" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    trap - EXIT
fi
done_step "base image"

# -- 5. the stand-in PostgreSQL image -----------------------------------------------------------
step "$PG_IMAGE (stand-in)"
pg_ctx=$(mktemp -d /tmp/pg-standin.XXXXXX)
trap 'rm -rf "$pg_ctx"' EXIT
cat >"$pg_ctx/Dockerfile" <<'EOF'
ARG BASE_IMAGE
FROM $BASE_IMAGE
# Debian's PostgreSQL 15 (the only major version bookworm carries); no cluster is created at install
RUN set -eux; \
    mkdir -p /etc/postgresql-common; \
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /var/run/postgresql /var/lib/postgresql/data; \
    chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
EOF
cat >"$pg_ctx/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# A small imitation of the official postgres image's entrypoint: the parts testcontainers and
# alembic-preflight rely on (POSTGRES_USER/_PASSWORD/_DB, listen on all addresses, UTF8).
set -eu
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" != postgres ]; then exec "$@"; fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
        echo "Error: POSTGRES_PASSWORD is empty (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    chown postgres "$pwfile"
    as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$auth" --no-sync >/dev/null
    rm -f "$pwfile"
    echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
    # like the official image: a temporary server on the socket only, then the real one
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
        as_pg psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q \
            -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop
    echo "PostgreSQL init process complete; ready for start up."
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
EOF
chmod +x "$pg_ctx/docker-entrypoint.sh"
base_id=$("$DOCKER" image inspect --format '{{.Id}}' "$BASE_IMAGE")
pg_hash=$(cat "$pg_ctx/Dockerfile" "$pg_ctx/docker-entrypoint.sh" <(echo "$base_id") | sha256sum | cut -c1-16)
if [[ $PG_IMAGE != "$OURS"/* ]]; then
    # E2E_PG_IMAGE names someone else's image: it is used as it is, never built (a stand-in
    # under that name would pass for the real one)
    if "$DOCKER" image inspect "$PG_IMAGE" >/dev/null 2>&1 && [[ -z $(label_of "$PG_IMAGE" "$STANDIN_LABEL") ]]; then
        echo "    $PG_IMAGE is on this machine: used as it is"
    elif timeout 300 "$DOCKER" pull -q "$PG_IMAGE" >/dev/null 2>&1; then
        echo "    pulled $PG_IMAGE"
    else
        echo "E2E_PG_IMAGE=$PG_IMAGE is not on this machine and cannot be pulled; stand-ins are" \
            "built only under $OURS/ (unset E2E_PG_IMAGE for $OURS/postgres:15)" >&2
        exit 1
    fi
elif [[ $(label_of "$PG_IMAGE" "$HASH_LABEL") == "$pg_hash" ]]; then
    echo "    up to date ($pg_hash)"
else
    DOCKER_BUILDKIT=1 "$DOCKER" build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --label "$HASH_LABEL=$pg_hash" --label "$STANDIN_LABEL=debian-postgresql-15" \
        -t "$PG_IMAGE" "$pg_ctx" >/dev/null
fi
rm -rf "$pg_ctx"
trap - EXIT
done_step "stand-in postgres"

# -- 6. the product image ---------------------------------------------------------------------
step "$PRODUCT_IMAGE (Dockerfile)"
# What the build context holds that matters (.dockerignore keeps the rest out)
inputs=()
for path in Dockerfile .dockerignore pyproject.toml README.md src requirements-image.txt; do
    if [[ -e $path ]]; then inputs+=("$path"); fi
done
product_hash=$(
    {
        find "${inputs[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
        echo "$base_id"
    } | sha256sum | cut -c1-16
)
if [[ $(label_of "$PRODUCT_IMAGE" "$HASH_LABEL") == "$product_hash" ]]; then
    echo "    up to date ($product_hash)"
else
    # FROM the debootstrapped base: the Dockerfile's default (the official debian:bookworm-slim)
    # is for real builds, and no registry is needed here
    build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --label "$STANDIN_LABEL=product-on-test-base")
    if [[ -r $CA_BUNDLE ]]; then
        build_args+=(--secret "id=ca-bundle,src=$CA_BUNDLE")
    fi
    # pip's index as the host's pip sees it (env or pip config), when it is not PyPI's default
    index_url=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
    if [[ -n $index_url ]]; then
        build_args+=(--build-arg "PIP_INDEX_URL=$index_url")
    fi
    DOCKER_BUILDKIT=1 "$DOCKER" build --progress=plain \
        "${build_args[@]}" --label "$HASH_LABEL=$product_hash" \
        -t "$PRODUCT_IMAGE" . >/tmp/docker-build-e2e.log 2>&1 || {
        tail -n 40 /tmp/docker-build-e2e.log >&2
        echo "build failed; full log: /tmp/docker-build-e2e.log" >&2
        exit 1
    }
fi
"$DOCKER" image ls --format '    {{.Repository}}:{{.Tag}} {{.Size}}' "$PRODUCT_IMAGE"
done_step "product image"

# dangling layers of earlier builds
"$DOCKER" image prune -f --filter "label=$HASH_LABEL" >/dev/null 2>&1 || true
echo "==> ready in $((SECONDS - SECONDS_TOTAL_START)) s"
