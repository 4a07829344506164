"""The revision graph read statically, checked against what Alembic itself loads."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic_preflight.project.history import History, load_history, parse_revision_file

FIXTURES = Path(__file__).parent / "fixtures"


def versions(name: str) -> Path:
    return FIXTURES / name / "migrations" / "versions"


def history(name: str, recursive: bool = False) -> History:
    return load_history([versions(name)], recursive=recursive)


def alembic_map(name: str) -> ScriptDirectory:
    """Alembic's own view (imports the fixture revisions; fine for our own fixtures)."""
    cwd = Path.cwd()
    os.chdir(FIXTURES / name)
    try:
        script = ScriptDirectory.from_config(Config("alembic.ini"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            script.revision_map.heads  # noqa: B018 - forces the load
        return script
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(
    "name", ["several_heads", "several_bases", "labelled_bases", "branches_merges", "irreversible"]
)
def test_heads_and_bases_match_alembic(name: str) -> None:
    ours = history(name)
    script = alembic_map(name)
    assert set(ours.heads) == set(script.get_heads())
    assert set(ours.bases) == set(script.get_bases())
    assert set(ours.revisions) == {s.revision for s in script.walk_revisions()}
    for s in script.walk_revisions():
        assert set(ours.parents(s.revision)) == set(s._versioned_down_revisions)
    assert ours.loadable


def test_files_alembic_skips_are_skipped() -> None:
    h = history("branches_merges")
    names = sorted(f.path.name for f in h.files)
    # no __init__.py, no emacs lock file, no README, no subfolder (not recursive)
    assert names == [
        "0a0a0a0a0a0a_create_users.py",
        "1b1b1b1b1b1b_create_orders.py",
        "3d3d3d3d3d3d_create_shipments.py",
        "4e4e4e4e4e4e_merge_invoices_and_shipments.py",
        "5f5f5f5f5f5f_add_paid_at_to_invoices.py",
        "9c9c9c9c9c9c_create_invoices.py",
    ]


def test_recursive_reads_subfolders() -> None:
    h = history("branches_merges", recursive=True)
    assert "6a6a6a6a6a6a" in h.revisions
    assert h.heads == ("6a6a6a6a6a6a",)


def test_topological_order_puts_depends_on_first() -> None:
    h = history("branches_merges")
    # 3d3d depends_on the `billing` label (9c9c), which comes later in file order
    assert h.topological_order() == (
        "0a0a0a0a0a0a",
        "1b1b1b1b1b1b",
        "9c9c9c9c9c9c",
        "3d3d3d3d3d3d",
        "4e4e4e4e4e4e",
        "5f5f5f5f5f5f",
    )
    assert h.dependencies("3d3d3d3d3d3d") == ("9c9c9c9c9c9c",)
    assert h.children("1b1b1b1b1b1b") == ("3d3d3d3d3d3d", "9c9c9c9c9c9c")
    assert h.parents("4e4e4e4e4e4e") == ("3d3d3d3d3d3d", "9c9c9c9c9c9c")
    assert h.branch_of("5f5f5f5f5f5f") == {"billing"}
    assert h.branch_of("3d3d3d3d3d3d") == frozenset()


def test_topological_order_with_two_heads_is_file_order_on_ties() -> None:
    assert history("several_heads").topological_order() == (
        "1a2b3c4d5e6f",
        "2b3c4d5e6f70",
        "3c4d5e6f7081",
    )


def test_revision_file_fields() -> None:
    f = history("branches_merges").revisions["4e4e4e4e4e4e"]
    assert f.message == "merge invoices and shipments"
    assert f.down_revisions == ("3d3d3d3d3d3d", "9c9c9c9c9c9c")
    assert f.depends_on == ()
    assert f.line_of("revision") == 15
    assert f.line_of("down_revision") == 16
    assert f.upgrade_line == 21
    assert f.downgrade_line == 26
    assert f.docstring_line == 1
    assert f.syntax_error is None
    shipments = history("branches_merges").revisions["3d3d3d3d3d3d"]
    assert shipments.depends_on == ("billing",)
    invoices = history("branches_merges").revisions["9c9c9c9c9c9c"]
    assert invoices.branch_labels == ("billing",)


def test_irreversible_by_design() -> None:
    h = history("irreversible")
    assert sorted(f.revision or "" for f in h.irreversible) == [
        "2b2b2b2b2b2b",  # raise NotImplementedError(), no docstring
        "3c3c3c3c3c3c",  # raise RuntimeError("Cannot undelete data!") after a docstring
        "4d4d4d4d4d4d",  # bare raise ValueError
    ]
    # a conditional raise is not irreversible by design
    assert not h.revisions["5e5e5e5e5e5e"].irreversible


def test_missing_parents_and_depends_on() -> None:
    h = history("missing_parent")
    assert [(f.revision, name) for f, name in h.missing] == [
        ("a3b4c5d6e7f8", "ffffffffffff"),
        ("b4c5d6e7f809", "0000deadbeef"),
    ]
    assert not h.loadable


def test_duplicates() -> None:
    h = history("duplicate_ids")
    dup = h.duplicates["d6e7f8091a2b"]
    assert [f.path.name for f in dup] == [
        "d6e7f8091a2b_add_email_to_users.py",
        "d6e7f8091a2b_add_phone_to_users.py",
    ]
    assert h.revisions["d6e7f8091a2b"].path.name == "d6e7f8091a2b_add_email_to_users.py"
    assert not h.loadable


def test_syntax_error_keeps_ids_so_children_are_not_orphans() -> None:
    h = history("syntax_error")
    (broken,) = h.syntax_errors
    assert broken.path.name == "f8091a2b3c4d_add_email_to_users.py"
    assert broken.syntax_error == ("'(' was never closed", 23)
    assert broken.revision == "f8091a2b3c4d"
    assert broken.down_revisions == ("e7f8091a2b3c",)
    assert h.missing == ()
    assert h.heads == ("091a2b3c4d5e",)
    assert not h.loadable


def revision_source(body: str) -> bytes:
    return ('"""a message\n\nRevision ID: x\n"""\n' + body).encode()


def test_annotated_list_and_none_values() -> None:
    f = parse_revision_file(
        Path("x.py"),
        revision_source(
            "from typing import Union\n"
            "revision: str = 'aaa'\n"
            "down_revision: Union[str, None] = ['bbb', 'ccc']\n"
            "branch_labels = 'lbl'\n"
            "depends_on = None\n"
        ),
    )
    assert f.revision == "aaa"
    assert f.down_revisions == ("bbb", "ccc")
    assert f.branch_labels == ("lbl",)
    assert f.depends_on == ()
    assert f.message == "a message"
    assert f.unreadable == ()


def test_non_literal_values_are_recorded_not_guessed() -> None:
    f = parse_revision_file(
        Path("x.py"),
        revision_source("PARENT = 'bbb'\nrevision = 'aaa'\ndown_revision = PARENT\n"),
    )
    assert f.down_revisions == ()
    assert f.unreadable == (("down_revision", 7),)


def test_legacy_revision_from_file_name() -> None:
    f = parse_revision_file(Path("abc123.py"), b"down_revision = None\n")
    assert f.revision == "abc123"
    g = parse_revision_file(Path("not_hex.py"), b"down_revision = None\n")
    assert g.revision is None
    assert not History.from_files([g]).loadable


def test_cycle(tmp_path: Path) -> None:
    d = tmp_path / "versions"
    d.mkdir()
    (d / "a.py").write_text("revision = 'a'\ndown_revision = 'b'\n")
    (d / "b.py").write_text("revision = 'b'\ndown_revision = 'a'\n")
    (d / "c.py").write_text("revision = 'c'\ndown_revision = None\n")
    h = load_history([d], recursive=False)
    assert h.cycles == (("a", "b"),)
    assert not h.loadable
    # the cycle cannot be ordered: it comes last instead of hanging
    assert h.topological_order() == ("c", "a", "b")


def test_self_parent_is_a_cycle(tmp_path: Path) -> None:
    d = tmp_path / "versions"
    d.mkdir()
    (d / "a.py").write_text("revision = 'a'\ndown_revision = 'a'\n")
    assert load_history([d], recursive=False).cycles == (("a",),)


def test_overlapping_version_locations_read_once(tmp_path: Path) -> None:
    shutil.copytree(versions("several_heads"), tmp_path / "v")
    h = load_history([tmp_path / "v", tmp_path / "v", tmp_path / "absent"], recursive=False)
    assert len(h.files) == 3
    assert h.duplicates == {}


@pytest.mark.parametrize("name", ["branches_merges", "several_heads", "merge_two_parents"])
def test_the_workers_downgrade_step_lands_where_alembics_does(name: str) -> None:
    """runner.step skips Alembic's walk over every ancestor for a one-parent downgrade:
    for every revision and every set of heads it may be at, the answer is Alembic's."""
    from alembic.runtime.migration import RevisionStep

    from alembic_preflight.worker.steps import step

    script = alembic_map(name)
    revisions = list(script.walk_revisions())
    all_heads = set(script.get_heads())
    for r in revisions:
        theirs = RevisionStep(script.revision_map, r, False)
        ours = step(script.revision_map, r, False)
        for heads in ({r.revision}, {r.revision} | all_heads, {r.revision, *r._all_down_revisions}):
            assert ours._unmerge_to_revisions(heads) == theirs._unmerge_to_revisions(heads)
            assert ours.should_delete_branch(heads) == theirs.should_delete_branch(heads)


def test_reading_a_history_leaves_the_garbage_collector_as_it_was(tmp_path: Path) -> None:
    """The collector is off while the files are parsed (collector.paused), then as before:
    on, or off when the caller had it off, also when reading fails."""
    import gc

    from alembic_preflight import collector
    from alembic_preflight.project.history import load_history

    (tmp_path / "a1_first.py").write_text('revision = "a1"\ndown_revision = None\n')
    assert gc.isenabled()
    assert load_history([tmp_path], False).revisions.keys() == {"a1"}
    assert gc.isenabled()
    gc.disable()
    try:
        load_history([tmp_path], False)
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError("while parsing")
    assert gc.isenabled()
