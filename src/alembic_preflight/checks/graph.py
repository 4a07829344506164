"""The revision graph is one Alembic can load and upgrade: one head, known parents, no clashes.

Why: Alembic stops at the first broken file (a syntax error, a missing parent, a
duplicate id) or warns and carries on; `alembic upgrade head` then fails on deploy with
"Multiple head revisions are present". This check reads the files statically
(project/history.py) and reports every problem at once, each at the line to change.

How to fix: each finding's `fix` says what to run or edit, typically
`alembic merge heads -m "..."` for several heads, or correcting `down_revision`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path

from alembic_preflight.checks.base import CheckContext
from alembic_preflight.errors import PreflightError
from alembic_preflight.findings import Finding, RuleText, Severity
from alembic_preflight.project import Project, gitrefs
from alembic_preflight.project.history import History, RevisionFile

ID = "graph"
NEEDS_DB = False


def run(ctx: CheckContext) -> Iterator[Finding]:
    history = ctx.project.history
    if not history.revisions and not history.syntax_errors:
        # zero revisions is never a silent pass (issue 15): an empty versions folder, or
        # version_locations pointing somewhere else
        locations = ", ".join(ctx.rel(p) for p in ctx.project.version_locations)
        yield Finding(
            check=ID,
            rule="no-revisions",
            severity=Severity.NOTICE,
            message=f"no revision files found in {locations}: nothing to verify",
            fix="check script_location and version_locations in alembic.ini",
        )
        return
    yield from _syntax_errors(ctx, history)
    yield from _unreadable(ctx, history)
    yield from _duplicates(ctx, history)
    yield from _label_clashes(ctx, history)
    yield from _missing(ctx, history)
    yield from _cycles(ctx, history)
    # With a parent missing or a cycle, heads and bases are artefacts of the breakage
    # (a merge would be the wrong fix): report them once the graph is whole.
    if not history.missing and not history.cycles:
        yield from _bases(ctx, history)
        yield from _heads(ctx, history)
        if ctx.settings.base_ref:
            yield from _merge_conflict(ctx, history, ctx.settings.base_ref)


def _finding(
    ctx: CheckContext,
    rule: str,
    severity: Severity,
    message: str,
    f: RevisionFile | None,
    line: int | None,
    fix: str,
) -> Finding:
    return Finding(
        check=ID,
        rule=rule,
        severity=severity,
        message=message,
        revision=f.revision if f else None,
        file=ctx.rel(f.path) if f else None,
        line=line,
        fix=fix,
    )


def _syntax_errors(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for f in h.syntax_errors:
        assert f.syntax_error is not None
        msg, line = f.syntax_error
        yield _finding(
            ctx,
            "syntax-error",
            Severity.ERROR,
            f"{ctx.rel(f.path)} is not valid Python: {msg}; Alembic cannot load any revision",
            f,
            line,
            "correct the syntax at this line",
        )


def _unreadable(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for f in h.files:
        for name, line in f.unreadable:
            yield _finding(
                ctx,
                "unreadable",
                Severity.WARNING,
                f"`{name}` is not a literal, so it cannot be read statically; "
                "the graph checks may be incomplete",
                f,
                line,
                f'write `{name}` as a string, a tuple of strings or None, e.g. {name} = "abc123"',
            )
        if f.syntax_error is None and f.revision is None and "revision" not in dict(f.unreadable):
            yield _finding(
                ctx,
                "unreadable",
                Severity.ERROR,
                f"{ctx.rel(f.path)} declares no `revision`: Alembic refuses to load it",
                f,
                1,
                'add `revision = "<id>"` at module level, or move the file out of versions/',
            )


def _duplicates(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for rev, files in h.duplicates.items():
        for f in files:
            others = ", ".join(ctx.rel(o.path) for o in files if o is not f)
            yield _finding(
                ctx,
                "duplicate-revision",
                Severity.ERROR,
                f"revision {rev} is also declared by {others}; Alembic keeps only one of them",
                f,
                f.line_of("revision"),
                "give one of the files a new id (`alembic revision` makes one) "
                "and point its children's down_revision at it",
            )


def _label_clashes(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for label, files in h.label_clashes.items():
        revs = ", ".join(f"{f.revision} ({ctx.rel(f.path)})" for f in files)
        first = files[1]
        yield _finding(
            ctx,
            "duplicate-branch-label",
            Severity.ERROR,
            f"branch label {label!r} is declared by several revisions: {revs}",
            first,
            first.line_of("branch_labels"),
            f"keep {label!r} on one revision only: the branch's first",
        )


def _missing(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for f, name in h.missing:
        kind = "down_revision" if name in f.down_revisions else "depends_on"
        yield _finding(
            ctx,
            "missing-parent",
            Severity.ERROR,
            f"{kind} names {name!r}, which no revision file declares (as id or branch label)",
            f,
            f.line_of(kind),
            f"point {kind} at an existing revision (`alembic heads` lists the current heads), "
            "or restore the missing file",
        )


def _cycles(ctx: CheckContext, h: History) -> Iterator[Finding]:
    for cycle in h.cycles:
        f = h.revisions[cycle[0]]
        loop = " -> ".join((*cycle, cycle[0]))
        yield _finding(
            ctx,
            "cycle",
            Severity.ERROR,
            f"revisions form a cycle through down_revision/depends_on: {loop}",
            f,
            f.line_of("down_revision"),
            "break the cycle: one of these revisions must not descend from the others",
        )


def _bases(ctx: CheckContext, h: History) -> Iterator[Finding]:
    if len(h.bases) < 2:
        return
    files = [h.revisions[b] for b in h.bases]
    unlabelled = [f for f in files if not f.branch_labels]
    listing = ", ".join(_describe(ctx, f) for f in files)
    # Several bases are legal when they start labelled branches (`alembic revision
    # --head=base --branch-label=x`); the trunk is commonly left unlabelled, so one
    # unlabelled base is fine. Two unlabelled bases are almost always a revision created
    # with down_revision = None by mistake.
    if len(unlabelled) > 1:
        first, severity = unlabelled[1], Severity.ERROR
        message = (
            f"{len(files)} revisions have no down_revision, {len(unlabelled)} of them without "
            f"a branch label: {listing}"
        )
        fix = (
            f"set down_revision of {first.revision} to the revision it follows, or give it "
            "a branch_labels entry if it really starts a separate branch"
        )
    else:
        first, severity = files[0], Severity.NOTICE
        message = f"{len(files)} labelled branches start from base: {listing}"
        fix = "nothing to do if intended; upgrade them all with `alembic upgrade heads`"
    line = first.line_of("down_revision")
    yield _finding(ctx, "multiple-bases", severity, message, first, line, fix)


def _heads(ctx: CheckContext, h: History) -> Iterator[Finding]:
    if len(h.heads) < 2:
        return
    files = [h.revisions[r] for r in h.heads]
    listing = ", ".join(_describe(ctx, f) for f in files)
    branches = [h.branch_of(r) for r in h.heads]
    # Heads on separate labelled branches are a design (upgrade with `heads`); two heads
    # on the same branch (or both unlabelled) mean two developers diverged.
    diverged = any(
        bool(a & b) or (not a and not b) for i, a in enumerate(branches) for b in branches[i + 1 :]
    )
    first = files[0]
    if diverged:
        yield _finding(
            ctx,
            "multiple-heads",
            Severity.ERROR,
            f"{len(files)} head revisions: {listing}; `alembic upgrade head` refuses to run",
            first,
            first.line_of("revision"),
            merge_command(ctx.project, h.heads),
        )
    else:
        yield _finding(
            ctx,
            "multiple-heads",
            Severity.NOTICE,
            f"{len(files)} heads on separately labelled branches: {listing}",
            first,
            first.line_of("revision"),
            "nothing to do if intended; upgrade them all with `alembic upgrade heads`",
        )


def _describe(ctx: CheckContext, f: RevisionFile) -> str:
    labels = f" [{', '.join(f.branch_labels)}]" if f.branch_labels else ""
    return f"{f.revision}{labels} ({ctx.rel(f.path)})"


def merge_command(project: Project, heads: Sequence[str]) -> str:
    """The exact `alembic merge` to run from the project directory; `-c`/`--name` only
    when the project does not use the defaults the bare `alembic` command assumes."""
    names = list(heads)
    joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    args = ["alembic"]
    if project.ini_path.resolve() != (project.directory / "alembic.ini").resolve():
        args += ["-c", _relative_to(project.ini_path, project)]
    if project.section != "alembic":
        args += ["--name", project.section]
    # every value quoted for a POSIX shell: a revision id is the user's text, and this
    # line is meant to be pasted into one (a hostile id must not run as code, issue 15);
    # a plain message keeps the double quotes people write
    message = f"merge {joined}"
    quoted = f'"{message}"' if _PLAIN.fullmatch(message) else shlex.quote(message)
    return " ".join(shlex.quote(a) for a in args) + f" merge heads -m {quoted}"


_PLAIN = re.compile(r"[\w .,:+@-]*")  # nothing a shell expands inside double quotes


def _relative_to(path: Path, project: Project) -> str:
    p = path.resolve()
    try:
        return p.relative_to(project.directory.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def _merge_conflict(ctx: CheckContext, h: History, ref: str) -> Iterator[Finding]:
    """Pull-request mode: this branch and `ref` each added revisions on the same parent,
    so merging the pull request leaves several heads although each side has one."""
    try:
        theirs = gitrefs.history_at(ctx.project.repo_root, ctx.project, ref)
    except PreflightError as e:
        yield _finding(ctx, "base-ref", Severity.ERROR, str(e), None, None, "fetch the ref")
        return
    ours = {f.revision for f in h.files if f.revision}
    # the union, our copy of a revision winning over theirs
    union = History.from_files([*h.files, *(f for f in theirs if f.revision not in ours)])
    new_heads = [r for r in union.heads if r not in h.heads]
    if len(union.heads) < 2 or not new_heads:
        return
    on_ref = [union.revisions[r] for r in union.heads if r not in ours]
    on_branch = [h.revisions[r] for r in union.heads if r in ours]
    if not on_ref or not on_branch:
        return
    # our first revision that is not on REF and whose parent is: the one to rebase
    theirs_ids = {f.revision for f in theirs}
    ours_new = [r for r in h.topological_order() if r not in theirs_ids]
    rebase = next(
        (h.revisions[r] for r in ours_new if any(p in theirs_ids for p in h.parents(r))),
        on_branch[0],
    )
    target = on_ref[0].revision if len(on_ref) == 1 else None
    message = (
        f"merging {ref} gives {len(union.heads)} heads: on {ref} "
        f"{', '.join(_describe(ctx, f) for f in on_ref)}; on this branch "
        f"{', '.join(_describe(ctx, f) for f in on_branch)}"
    )
    if target is not None:
        fix = (
            f'set down_revision = "{target}" in {ctx.rel(rebase.path)} (rebase onto {ref}), '
            f"or after merging run: {merge_command(ctx.project, union.heads)}"
        )
    else:
        fix = f"after merging {ref}, run: {merge_command(ctx.project, union.heads)}"
    yield _finding(
        ctx,
        "merge-conflict-heads",
        Severity.ERROR,
        message,
        rebase,
        rebase.line_of("down_revision"),
        fix,
    )


# what each rule means and how to fix it (SARIF, the job summary): said once, here
RULES: dict[str, RuleText] = {
    "multiple-heads": RuleText(
        "The revision history has more than one head",
        "Two branches of migrations were created from the same parent, so `alembic "
        "upgrade head` is ambiguous. Create a merge revision with `alembic merge heads`.",
    ),
    "multiple-bases": RuleText(
        "The revision history has more than one base",
        "More than one revision has no parent. Unless the project uses independent "
        "branches on purpose, point the stray base's `down_revision` at the revision it "
        "follows.",
    ),
    "missing-parent": RuleText(
        "A revision names a parent that does not exist",
        "`down_revision` refers to a revision id no file defines, often after a rebase or "
        "a deleted file. Point it at an existing revision.",
    ),
    "duplicate-revision": RuleText(
        "Two files define the same revision id",
        "Revision ids must be unique. Give one of the files a new id (and update "
        "revisions that name it as a parent).",
    ),
    "syntax-error": RuleText(
        "A revision file cannot be imported",
        "Alembic could not load the file. Fix the Python error shown in the detail.",
    ),
    "cycle": RuleText(
        "The revision graph contains a cycle",
        "A revision is its own ancestor. Fix the `down_revision` links that close the loop.",
    ),
    "unreadable": RuleText(
        "A revision id cannot be read from the file",
        "`revision`, `down_revision`, `branch_labels` or `depends_on` is not a literal, or "
        "the file declares no `revision` at all (Alembic refuses it). Write them as "
        "strings, tuples of strings or None.",
    ),
    "duplicate-branch-label": RuleText(
        "Several revisions declare the same branch label",
        "A branch label names one branch; `alembic upgrade label@head` cannot tell which is "
        "meant. Keep the label on the branch's first revision only.",
    ),
    "merge-conflict-heads": RuleText(
        "Merging this branch creates a second head",
        "Merged with the base ref, the history has two heads: another branch added a "
        "revision on the same parent. Rebase this branch's first revision onto the base "
        "ref's head (its `down_revision`), or add a merge revision.",
    ),
    "base-ref": RuleText(
        "The base ref for the merge preview cannot be read",
        "--base-ref names a git ref this checkout does not have. Fetch it (actions/checkout "
        "with `fetch-depth: 0`) or name another.",
    ),
    "no-revisions": RuleText(
        "The project has no revision files",
        "No revision file was found where alembic.ini says they are, so nothing could be "
        "verified. Check script_location and version_locations.",
    ),
}
