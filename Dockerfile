# alembic-preflight: the GitHub container action, and an image for `docker run` and GitLab CI.
#
#   docker run --rm -v "$PWD:/work" -w /work -v /var/run/docker.sock:/var/run/docker.sock \
#       alembic-preflight verify
#
# Behind a TLS-intercepting proxy, hand the build its CA bundle (optional; trusted by apt and pip):
#   DOCKER_BUILDKIT=1 docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt .
# Another package index: --build-arg PIP_INDEX_URL=...; one that needs credentials:
#   --secret id=pip-conf,src=$HOME/.config/pip/pip.conf   (kept out of the image and its history)
#
# No `# syntax=` line on purpose: it makes BuildKit pull a frontend image from a registry; the
# frontend built into Docker >= 20.10 understands RUN --mount.
#
# BASE_IMAGE is for this repository's end-to-end tests only, which build FROM a debootstrapped
# stand-in of their own name on machines without a registry (scripts/docker-e2e-setup.sh).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG PIP_INDEX_URL=https://pypi.org/simple
ARG PG_MAJOR=15

ENV VIRTUAL_ENV=/opt/alembic-preflight \
    PATH=/opt/alembic-preflight/bin:/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    # the workspace is the user's checkout: leave no root-owned __pycache__ in it
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LANG=C.UTF-8

# System layer: Python 3.11 from Debian, iproute2 (testcontainers reads the gateway with
# `ip route`), git (--changed-since, --base-ref) and PostgreSQL's server binaries for
# `--database embedded`.
#
# PostgreSQL: the postgresql-15 package hard-depends on libllvm14 (for JIT; ~130 MB with libz3)
# and postgresql-common (perl, ssl-cert, and a cluster created at install). We take the binaries
# out of Debian's own .debs instead and install only the libraries they link against; JIT is
# then unavailable, which PostgreSQL handles by itself (jit_provider fails to load -> no JIT).
# The ldd check fails the build if a library is missing.
RUN --mount=type=secret,id=ca-bundle \
    set -eux; \
    apt_opts=""; \
    if [ -s /run/secrets/ca-bundle ]; then apt_opts="-o Acquire::https::CAInfo=/run/secrets/ca-bundle"; fi; \
    apt-get $apt_opts update; \
    DEBIAN_FRONTEND=noninteractive apt-get $apt_opts install -y --no-install-recommends \
        python3 python3-venv iproute2 ca-certificates tzdata libpcre2-8-0 \
        libgssapi-krb5-2 libicu72 libldap-2.5-0 liblz4-1 libpam0g libpq5 libreadline8 \
        libselinux1 libssl3 libstdc++6 libsystemd0 libuuid1 libxml2 libxslt1.1 libzstd1 zlib1g; \
    cd /tmp; \
    apt-get $apt_opts download postgresql-${PG_MAJOR} git; \
    # the server programs the embedded backend runs (initdb, postgres; pg_ctl to stop a
    # server by hand), its libraries (extensions' modules) and share/ (initdb's postgres.bki,
    # timezonesets, tsearch_data, extensions' scripts). No clients (psql, pg_dump...): the
    # tool talks to PostgreSQL through psycopg
    dpkg-deb --fsys-tarfile postgresql-${PG_MAJOR}_*.deb | tar -x -C / --wildcards \
        "./usr/lib/postgresql/${PG_MAJOR}/bin/initdb" "./usr/lib/postgresql/${PG_MAJOR}/bin/postgres" \
        "./usr/lib/postgresql/${PG_MAJOR}/bin/pg_ctl" './usr/lib/postgresql/*/lib/*' \
        './usr/share/postgresql/*' \
        --exclude '*/llvmjit*' --exclude '*/bitcode*' --exclude '*/man/*'; \
    # git's own binary only (its builtins: rev-parse, diff, log, show...): the package would
    # bring perl and curl, ~90 MB, for commands the tool never runs
    dpkg-deb --fsys-tarfile git_*.deb | tar -x -C / ./usr/bin/git; \
    rm -f /tmp/*.deb; \
    missing=$(ldd /usr/bin/git /usr/lib/postgresql/${PG_MAJOR}/bin/* /usr/lib/postgresql/${PG_MAJOR}/lib/*.so 2>/dev/null | grep 'not found' || true); \
    if [ -n "$missing" ]; then echo "PostgreSQL needs libraries not installed: $missing" >&2; exit 1; fi; \
    # PostgreSQL will not run as root: the embedded backend runs it as this user
    useradd --system --home-dir /var/lib/postgresql --create-home --shell /bin/sh postgres; \
    install -d -o postgres -g postgres /var/run/postgresql; \
    # --changed-since/--base-ref read the checkout, which belongs to the runner's user, not root
    git config --system --add safe.directory '*'; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    postgres --version; python3 --version; git --version

# Dependencies layer: every package pinned in requirements-image.txt (`make lock-image` writes
# it from pyproject.toml's dependencies), installed with --no-deps: the image gets exactly those
# versions, and the layer is rebuilt only when that file changes. `pip check` below fails the
# build if the file lacks one the tool needs.
#
# Size: no setuptools in the virtualenv (nothing runs it; pip builds an sdist in an isolated
# environment with its own, and Python 3.12's venv has none either), and pip without its .pyc
# (8 MB): only the `install` input runs pip. Everything else is compiled once here
# (PYTHONDONTWRITEBYTECODE is set). greenlet's test suite, shipped in its wheel, goes too.
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=secret,id=pip-conf \
    --mount=type=bind,source=requirements-image.txt,target=/tmp/requirements.txt \
    set -eu; \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    if [ -s /run/secrets/pip-conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip-conf; fi; \
    python3 -m venv "$VIRTUAL_ENV"; \
    pip install --no-deps --no-compile -r /tmp/requirements.txt; \
    pip uninstall --yes --quiet setuptools; \
    site=$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
    rm -rf "$site/greenlet/tests"; \
    find "$site/pip" -name __pycache__ -prune -exec rm -rf {} +; \
    python -m compileall -q -j 0 -x '/site-packages/pip/' "$VIRTUAL_ENV/lib" >/dev/null || true

# The tool itself, from the source (a read-write bind: build files are not kept in the image)
RUN --mount=type=secret,id=ca-bundle \
    --mount=type=secret,id=pip-conf \
    --mount=type=bind,source=.,target=/tmp/src,rw \
    set -eu; \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi; \
    if [ -s /run/secrets/pip-conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip-conf; fi; \
    pip install --no-deps /tmp/src; \
    pip check; \
    test -x "$VIRTUAL_ENV/bin/alembic-preflight"; \
    python -c 'import alembic_preflight'

# No WORKDIR: GitHub runs container actions with --workdir /github/workspace and advises against
# one (https://docs.github.com/en/actions/sharing-automations/creating-actions/dockerfile-support-for-github-actions#workdir);
# GitLab overrides the entrypoint (entrypoint: [""]) and runs its script in the checkout. With
# `docker run`, mount the project and name it: -v "$PWD:/work" -w /work (the entrypoint says so
# when the directory is left at /).
ENTRYPOINT ["/opt/alembic-preflight/bin/python", "-m", "alembic_preflight.action"]
CMD ["verify"]
