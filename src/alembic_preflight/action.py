"""The Docker image's entrypoint: the GitHub container action, or the plain CLI.

GitHub runs the image as `docker run --workdir /github/workspace ... <image> github-action`
(action.yml's `runs.args`) with each input in an `INPUT_<NAME>` variable, the name upper-cased
and its dashes kept (`INPUT_POSTGRES-IMAGE`), which a POSIX shell cannot read but Python can:
https://docs.github.com/en/actions/sharing-automations/creating-actions/metadata-syntax-for-github-actions#inputs

Any other argv (`docker run <image> verify ...`, or nothing: the image's CMD is `verify`) goes
to the CLI unchanged. GitLab overrides the entrypoint and calls `alembic-preflight` itself.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from alembic_preflight.errors import interrupt_on_signal
from alembic_preflight.head_start import close_unused, head_start
from alembic_preflight.reporters import github
from alembic_preflight.reporters.github import escape_data

ACTION_COMMAND = "github-action"
# Under the workspace, not $RUNNER_TEMP: the runner does not mount RUNNER_TEMP into container
# actions (actions/runner#1984), so a report there would be lost with the container. The
# relative path is also what the `report` output says, valid for later steps, which run in the
# workspace on the runner (where /github/workspace is some other absolute path).
REPORT_PATH = ".alembic-preflight/report.json"
# input -> CLI option, for the inputs that map one to one
PLAIN_INPUTS = {
    "database": "--database",
    "database-url": "--database-url",
    "postgres-image": "--postgres-image",
    "driver": "--driver",
    "checks": "--checks",
    "skip": "--skip",
    "fail-on": "--fail-on",
    "changed-since": "--changed-since",
    "base-ref": "--base-ref",
}


# input -> CLI option, for the report files other actions take (github/codeql-action's
# upload-sarif, test reporters): paths relative to the workspace, each also an output of the
# same name once written
REPORT_INPUTS = {
    "sarif": "--sarif",
    "junit": "--junit",
    "gitlab-codequality": "--gitlab-codequality",
}


class ActionError(Exception):
    """A bad input: reported as a workflow error annotation, exit 2."""


def get_input(env: Mapping[str, str], name: str) -> str:
    """An input as the runner passes it (as @actions/core's getInput reads it), or with
    underscores for dashes, as the composite action passes them (a shell can set those)."""
    key = f"INPUT_{name.replace(' ', '_').upper()}"
    value = env.get(key)
    if value is None:
        value = env.get(key.replace("-", "_"), "")
    return value.strip()


def cli_args(env: Mapping[str, str], workspace: Path) -> tuple[Path, list[str]]:
    """The project directory and the `alembic-preflight verify` argv for the inputs.

    Paths stay relative to the workspace (the current directory), so that reports and
    annotations name files as the repository does; `config` is relative to
    `working-directory`, as it would be in a `run:` step with that working directory, and
    so are `baseline` and `table-stats`.
    """
    wd = get_input(env, "working-directory") or "."
    project = Path(wd)
    if project.is_absolute():
        try:
            project = project.relative_to(workspace)
        except ValueError:
            raise ActionError(f"working-directory {wd!r} is outside the workspace") from None
    if not (workspace / project).is_dir():
        raise ActionError(f"working-directory {wd!r}: no such directory in the workspace")
    args = ["verify", project.as_posix()]
    for name in ("config", "baseline", "table-stats"):  # files: relative to working-directory
        value = get_input(env, name)
        if value:
            args += [f"--{name}", (project / value).as_posix()]
    for name, option in PLAIN_INPUTS.items():
        value = get_input(env, name)
        if value:
            args += [option, value]
    for name, path in report_inputs(env, workspace).items():
        args += [REPORT_INPUTS[name], path]
    for var in _split_list(get_input(env, "url-env")):
        args += ["--url-env", var]
    if not get_input(env, "base-ref"):
        base = default_base_ref(env, workspace)
        if base:
            args += ["--base-ref", base]
    args += ["--format", "github", "--report-json", REPORT_PATH]
    return project, args


def report_inputs(env: Mapping[str, str], workspace: Path) -> dict[str, str]:
    """The report inputs given: name -> the file's path, relative to the workspace."""
    given = {name: get_input(env, name) for name in REPORT_INPUTS}
    return {name: in_workspace(name, value, workspace) for name, value in given.items() if value}


def in_workspace(name: str, value: str, workspace: Path) -> str:
    """A file the action writes, relative to the workspace: later steps run there on the
    runner, where the container's /github/workspace is another path, and a file outside the
    workspace is lost with the container."""
    path = Path(value)
    if path.is_absolute():
        try:
            path = path.relative_to(workspace)
        except ValueError:
            path = Path("..")  # refused below
    normal = Path(os.path.normpath(path))
    if normal.parts[:1] == ("..",) or normal == Path("."):
        raise ActionError(
            f"{name} {value!r}: name a file in the workspace, relative to it "
            "(e.g. reports/alembic-preflight.sarif)"
        )
    return normal.as_posix()


def default_base_ref(env: Mapping[str, str], workspace: Path) -> str | None:
    """In a pull request, the merge preview runs against the base branch when the checkout
    has it; when it does not, a notice says how to fetch it."""
    branch = env.get("GITHUB_BASE_REF")
    if not branch:
        return None
    ref = f"origin/{branch}"
    found = subprocess.run(
        ["git", "-C", str(workspace), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode == 0:
        return ref
    _emit(
        "::notice title=alembic-preflight::"
        + escape_data(
            f"the merge preview against {ref} is off: the checkout does not have it. "
            "Use actions/checkout with `fetch-depth: 0` (or fetch the base branch) to check "
            "that this pull request does not create a second head once merged."
        )
    )
    return None


def trust_workspace(env: MutableMapping[str, str], workspace: Path) -> None:
    """The workspace belongs to the runner's user and we are root in the container: git
    refuses such a repository ("dubious ownership") unless it is marked safe."""
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    env[f"GIT_CONFIG_KEY_{count}"] = "safe.directory"
    env[f"GIT_CONFIG_VALUE_{count}"] = str(workspace)
    env["GIT_CONFIG_COUNT"] = str(count + 1)


def _split_list(value: str) -> list[str]:
    return [v.strip() for line in value.splitlines() for v in line.split(",") if v.strip()]


def run_install(command: str, cwd: Path) -> int:
    """The `install` input, in the project directory, its output folded in a log group."""
    _emit(f"::group::install: {escape_data(command)}")
    try:
        return subprocess.run(["sh", "-c", command], cwd=cwd, check=False).returncode
    finally:
        _emit("::endgroup::")


def run_action(env: Mapping[str, str], *, start_early: bool = False) -> int:
    """The action's run from its inputs. `start_early`: this process is the run's own
    (main), so the workers start before the command line is read (head_start.py)."""
    from alembic_preflight.errors import EXIT_USAGE

    workspace = Path(env.get("GITHUB_WORKSPACE") or os.getcwd())
    os.chdir(workspace)
    trust_workspace(os.environ, workspace)
    try:
        project, args = cli_args(env, workspace)
    except ActionError as e:
        _emit(f"::error title=alembic-preflight::{escape_data(str(e))}")
        return EXIT_USAGE
    database_url = get_input(env, "database-url")
    if database_url:
        _emit(f"::add-mask::{escape_data(database_url)}")
    install = get_input(env, "install")
    if install:
        code = run_install(install, workspace / project)
        if code != 0:
            _emit(
                "::error title=alembic-preflight: install failed::"
                + escape_data(f"`{install}` exited with {code}")
            )
            return EXIT_USAGE
    if start_early:
        # the workers start importing while the command line is read, as the console
        # script's do; after an install, as new interpreters (its .pth files)
        head_start(args, fork=not install)
    from alembic_preflight import cli

    (workspace / REPORT_PATH).parent.mkdir(parents=True, exist_ok=True)
    reports = report_inputs(env, workspace)
    before = {name: _identity(workspace / path) for name, path in reports.items()}
    report_before = _identity(workspace / REPORT_PATH)
    _emit("alembic-preflight " + " ".join(shlex.quote(a) for a in _masked(args)), err=True)
    try:
        code = cli.main(args)
    finally:
        close_unused()
        # We run as root in the container; later steps run as the runner's user and must be
        # able to read the reports (e.g. actions/upload-artifact, upload-sarif).
        for path in (REPORT_PATH, *reports.values()):
            with suppress(OSError):
                (workspace / path).chmod(0o644)
        # an output names a file this run wrote, never one an earlier run left
        written = {
            name: path
            for name, path in reports.items()
            if _identity(workspace / path) not in (None, before[name])
        }
        github_output = env.get("GITHUB_OUTPUT")
        if written and github_output:
            github.append(
                Path(github_output),
                "".join(github.output_line(name, path) for name, path in written.items()),
            )
    # the report this run wrote (none after a usage error: the comment is left as it was)
    if _identity(workspace / REPORT_PATH) not in (None, report_before):
        comment_on_pull_request(env, workspace, project)
    return code


def comment_on_pull_request(env: Mapping[str, str], workspace: Path, project: Path) -> None:
    """With the `github-token` input, in a pull request: our comment there holds the job
    summary (created, or updated in place: found by its hidden marker), or is deleted when
    all is clean. Without a token or outside a pull request, nothing. A failure is a
    warning: the verdict and the exit code are the checks' alone."""
    token = get_input(env, "github-token")
    if not token:
        return
    from alembic_preflight.github_api import PullRequest, sync_comment

    pr = PullRequest.from_env(env)
    if pr is None:
        return
    from alembic_preflight.checks import rule_docs
    from alembic_preflight.reporters import pr_comment
    from alembic_preflight.reporters.json import read_report

    server, repo = env.get("GITHUB_SERVER_URL", "").rstrip("/"), env.get("GITHUB_REPOSITORY")
    sha, run_id = env.get("GITHUB_SHA"), env.get("GITHUB_RUN_ID")
    blob_url = f"{server}/{repo}/blob/{sha}" if server and repo and sha else None
    run_url = f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None
    # one comment per workflow, job and project: several of them comment side by side
    key = "/".join((env.get("GITHUB_WORKFLOW", ""), env.get("GITHUB_JOB", ""), project.as_posix()))
    try:
        report = replace(read_report(workspace / REPORT_PATH), rules=rule_docs())
        body = None
        if not pr_comment.is_clean(report):
            name = (workspace / project).resolve().name
            body = pr_comment.render(report, key, name, blob_url, run_url)
        done = sync_comment(pr, token, pr_comment.marker(key), body)
    # the comment is an extra: whatever goes wrong with it (the API, the network, an answer
    # we did not expect), the verdict and the exit code stand
    except Exception as e:
        _emit(
            "::warning title=alembic-preflight: pull-request comment::"
            + escape_data(f"the comment on #{pr.number} was not updated: {e}{_permission_hint(e)}")
        )
        _emit(f"alembic-preflight: warning: pull-request comment not updated: {e}", err=True)
        return
    if done != "none":
        _emit(f"alembic-preflight: pull-request comment {done} (#{pr.number})", err=True)


def _permission_hint(e: Exception) -> str:
    if " HTTP 403 " in f" {e} " or " HTTP 404 " in f" {e} ":
        return (
            "; the job needs `permissions: pull-requests: write` (or `issues: write`) for the "
            "token, which a pull request from a fork does not get"
        )
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # As PID 1 of a container, Python ignores SIGTERM unless it has a handler: `docker stop`
    # and a cancelled GitHub job would then wait for SIGKILL and leave the PostgreSQL
    # container behind. Raise instead, so every context manager cleans up (exit 130).
    signal.signal(signal.SIGTERM, interrupt_on_signal)
    if args[:1] == [ACTION_COMMAND]:
        return run_action(os.environ, start_early=True)
    head_start(args)
    from alembic_preflight import cli
    from alembic_preflight.errors import EXIT_USAGE

    try:
        code = cli.main(args)
    finally:
        close_unused()
    if code == EXIT_USAGE and started_in_root(Path.cwd()):
        _emit(f"alembic-preflight: {ROOT_HINT}", err=True)
    return code


# The image has no WORKDIR (GitHub's docs advise against one for container actions: the
# runner sets --workdir itself), so `docker run` without -w starts in /.
ROOT_HINT = (
    "the current directory is /, which holds no project: mount yours and start in it, "
    'e.g. docker run --rm -v "$PWD:/work" -w /work IMAGE verify'
)


def started_in_root(cwd: Path) -> bool:
    """Whether a failed run was started in / without a project there: `docker run` of the
    image without `-w`."""
    return cwd == Path(cwd.anchor) and not (cwd / "alembic.ini").exists()


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What tells a file apart from the one that was there before (reports are written to
    a new file and renamed over the old one), or None when there is none."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _masked(args: list[str]) -> list[str]:
    previous = ["", *args[:-1]]
    return ["***" if p == "--database-url" else a for p, a in zip(previous, args, strict=True)]


def _emit(line: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(line, file=stream, flush=True)


def run() -> NoReturn:
    """The image's entry point and the `alembic-preflight-action` script: main(), then
    out at once, as the console script (cli.run): by then every database, container and
    worker is gone and the reports are written; the interpreter's orderly teardown of
    SQLAlchemy, Alembic and friends would only add to every run (~0.2 s, measured)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
