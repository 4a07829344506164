"""How the URL and the configuration reach a project, and pull-request focus, via the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, run_cli


def test_env_py_reading_x_dburl(project: Any) -> None:
    proj: Path = project("sync_good")
    env_py = proj / "migrations" / "env.py"
    text = env_py.read_text()
    # this env.py ignores sqlalchemy.url and DATABASE_URL: only -x dburl reaches it
    text = text.replace(
        "def run_migrations_online() -> None:",
        "config.set_main_option('sqlalchemy.url', context.get_x_argument(as_dictionary=True)"
        "['dburl'])\n\n\ndef run_migrations_online() -> None:",
    )
    env_py.write_text(text)
    (proj / "alembic.ini").write_text(
        (proj / "alembic.ini")
        .read_text()
        .replace("sqlalchemy.url = driver://user:pass@localhost/dbname", "sqlalchemy.url = nope://")
    )
    r = run_cli(
        "verify",
        ".",
        "--database",
        "embedded",
        "--checks",
        "upgrade,roundtrip",
        "--url-env",
        "UNUSED_URL",
        cwd=proj,
    )
    assert r.code == 0, r.stdout + r.stderr


def test_config_elsewhere_and_another_section(project: Any) -> None:
    proj: Path = project("sync_good")
    ini = (proj / "alembic.ini").read_text()
    (proj / "alembic.ini").unlink()
    (proj / "deploy").mkdir()
    (proj / "deploy" / "migrations.ini").write_text(
        ini.replace("[alembic]", "[tenant_db]").replace(
            "script_location = %(here)s/migrations", "script_location = %(here)s/../migrations"
        )
    )
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "graph,upgrade", cwd=proj)
    assert r.code == 2 and "alembic.ini" in r.stderr
    r = run_cli(
        "verify",
        ".",
        "-c",
        "deploy/migrations.ini",
        "--database",
        "embedded",
        "--checks",
        "graph,upgrade",
        cwd=proj,
    )
    assert r.code == 2 and "[alembic]" in r.stderr and "--name" in r.stderr
    r = run_cli(
        "verify",
        ".",
        "-c",
        "deploy/migrations.ini",
        "--name",
        "tenant_db",
        "--database",
        "embedded",
        "--checks",
        "graph,upgrade",
        cwd=proj,
    )
    assert r.code == 0, r.stdout + r.stderr
    assert r.report["project"]["config"] == "deploy/migrations.ini"


NEW_REVISION = '''"""fix"""
from alembic import op
import sqlalchemy as sa

revision = "4d5e6f708192"
down_revision = "3c4d5e6f7081"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("note", sa.Text(), nullable=False))


def downgrade() -> None:
    pass
'''


def test_pull_request_scope_narrows_conventions_only(project: Any) -> None:
    # issue 17: a team adopting the tool cannot rename deployed revisions, but a downgrade
    # that cannot run breaks a rollback whichever change wrote it
    proj: Path = project("sync_good")
    old = proj / "migrations" / "versions" / "1a2b3c4d5e6f_create_customers.py"
    text = old.read_text().replace('    op.drop_table("customers")', "    pass")
    old.write_text(text.replace('"""create customers', '"""wip', 1))
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "history")
    git(proj, "checkout", "-q", "-b", "feature")
    (proj / "migrations" / "versions" / "4d5e6f708192_fix.py").write_text(NEW_REVISION)
    r = run_cli("verify", ".", "--checks", "lint", cwd=proj)
    assert {(f["revision"], f["rule"]) for f in r.findings()} >= {
        ("1a2b3c4d5e6f", "vague-message"),
        ("1a2b3c4d5e6f", "empty-downgrade"),
        ("4d5e6f708192", "vague-message"),
    }
    for scope in (["--changed-since", "main"], ["--base-ref", "main"]):
        r = run_cli(
            "verify", ".", "--database", "embedded", "--checks", "lint,stepwise", *scope, cwd=proj
        )
        assert r.code == 1
        found = {(f["check"], f["revision"], f["rule"]) for f in r.findings()}
        # the old revision: its convention is not this change's to fix; its downgrade is
        assert ("lint", "1a2b3c4d5e6f", "vague-message") not in found
        assert ("lint", "1a2b3c4d5e6f", "empty-downgrade") in found
        assert ("stepwise", "1a2b3c4d5e6f", "downgrade-leaves-behind") in found
        new = {rule for check, rev, rule in found if rev == "4d5e6f708192" and check == "lint"}
        assert {"empty-downgrade", "not-null-without-server-default", "vague-message"} <= new
    r = run_cli("verify", ".", "--checks", "lint", "--changed-since", "nosuchref", cwd=proj)
    assert r.code == 2, r.stderr
    assert "--changed-since: git ref 'nosuchref' is not in this clone" in r.stderr


def test_broken_graph_is_reported_at_the_line_and_database_checks_skip(project: Any) -> None:
    proj: Path = project("syntax_error")
    r = run_cli("verify", ".", "--database", "embedded", cwd=proj)
    assert r.code == 1
    (f,) = r.findings("syntax-error")
    assert (f["file"], f["line"]) == ("migrations/versions/f8091a2b3c4d_add_email_to_users.py", 23)
    assert "never closed" in f["message"]
    for check in ("upgrade", "drift", "roundtrip", "stepwise"):
        assert r.check(check)["status"] == "skipped"
    assert "Traceback" not in r.stderr

    proj = project("missing_parent")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "graph,upgrade", cwd=proj)
    assert r.code == 1
    missing = {(f["file"], f["line"], f["message"].split(" names ")[1][:14]) for f in r.findings()}
    assert missing == {
        ("migrations/versions/a3b4c5d6e7f8_add_email_to_users.py", 16, "'ffffffffffff'"),
        ("migrations/versions/b4c5d6e7f809_create_orders.py", 18, "'0000deadbeef'"),
    }


def revision_on_head(rev: str, slug: str) -> str:
    return (
        f'"""{slug.replace("_", " ")}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f'revision = "{rev}"\ndown_revision = "3c4d5e6f7081"\nbranch_labels = None\n'
        "depends_on = None\n\n\ndef upgrade() -> None:\n"
        f'    op.add_column("customers", sa.Column("{slug}", sa.Text()))\n\n\n'
        "def downgrade() -> None:\n"
        f'    op.drop_column("customers", "{slug}")\n'
    )


def test_base_ref_merge_preview_catches_a_second_head(project: Any) -> None:
    proj: Path = project("sync_good")
    versions = proj / "migrations" / "versions"
    git(proj, "init", "-q", "-b", "main")
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "history")
    git(proj, "checkout", "-q", "-b", "feature")
    (versions / "aaaa00000001_add_phone.py").write_text(revision_on_head("aaaa00000001", "phone"))
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "feature: phone")
    git(proj, "checkout", "-q", "main")
    (versions / "bbbb00000002_add_vat.py").write_text(revision_on_head("bbbb00000002", "vat_id"))
    git(proj, "add", ".")
    git(proj, "commit", "-qm", "main: vat")
    git(proj, "checkout", "-q", "feature")
    # alone the branch is fine
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 0, r.stdout + r.stderr
    # merged with main it would have two heads
    r = run_cli("verify", ".", "--checks", "graph", "--base-ref", "main", cwd=proj)
    assert r.code == 1
    (f,) = r.findings("merge-conflict-heads")
    assert "aaaa00000001" in f["message"] and "bbbb00000002" in f["message"]
    assert f["file"] == "migrations/versions/aaaa00000001_add_phone.py"
    assert 'down_revision = "bbbb00000002"' in f["fix"] or "alembic merge" in f["fix"]


def test_rules_setting_regrades_or_switches_off_any_checks_rule(project: Any) -> None:
    # issue 16: not only lint's rules can be re-graded (`multiple-heads: warning`)
    heads: Path = project("several_heads")
    settings = heads / ".alembic-preflight.yml"
    r = run_cli("verify", ".", "--checks", "graph", cwd=heads)
    assert r.code == 1 and {f["severity"] for f in r.findings("multiple-heads")} == {"error"}
    settings.write_text("rules:\n  multiple-heads: warning\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=heads)
    assert r.code == 0, r.stdout
    assert {f["severity"] for f in r.findings("multiple-heads")} == {"warning"}
    # a check's own name narrows it; `off` drops it (YAML reads a bare off as false)
    rows: Path = project("not_null_no_default")
    (rows / ".alembic-preflight.yml").write_text("rules:\n  stepwise/fails-with-rows: off\n")
    r = run_cli("verify", ".", "--database", "embedded", "--checks", "stepwise", cwd=rows)
    assert (r.code, r.findings()) == (0, [])


def test_rules_setting_refuses_unknown_names_and_hiding_unverified_runs(project: Any) -> None:
    proj: Path = project("several_heads")
    settings = proj / ".alembic-preflight.yml"
    settings.write_text("rules:\n  multiple-head: warning\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 2
    assert ".alembic-preflight.yml:2: `rules.multiple-head` names no rule" in r.stderr
    assert "did you mean multiple-heads" in r.stderr
    # each at its entry's line, not at `rules:`'s
    settings.write_text("rules:\n  lint/x: off\n  env-failed: off\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 2
    assert ".alembic-preflight.yml:3: `rules.env-failed` cannot be changed" in r.stderr
    settings.write_text("rules:\n  multiple-heads: warning\n  graph/multiple-heads: loud\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 2
    assert (
        ".alembic-preflight.yml:3: `rules.graph/multiple-heads` must be error, warning, notice"
        " or off (got 'loud')" in r.stderr
    )
    settings.write_text("table-rows:\n  orders: 10\n  users: many\n")
    r = run_cli("verify", ".", "--checks", "graph", cwd=proj)
    assert r.code == 2
    assert ".alembic-preflight.yml:3: `table-rows.users`: not a number of rows" in r.stderr
    assert "Traceback" not in r.stderr


def test_skip_revisions_stamps_them_in_every_check(project: Any) -> None:
    # issue 16: upgrade and roundtrip ran a revision stepwise stamped
    proj: Path = project("needs_extension")
    r = run_cli("verify", ".", "--database", "embedded", cwd=proj)
    assert r.code == 1
    # one root cause, seen by each check that upgrades the revision (one entry)
    assert {f["check"] for f in r.findings()} == {"upgrade", "stepwise", "locks"}
    assert all('extension "vendor_audit"' in f["message"] for f in r.findings())
    # by a unique prefix, from the settings file
    (proj / ".alembic-preflight.yml").write_text("skip-revisions: [b2b2]\n")
    r = run_cli("verify", ".", "--database", "embedded", cwd=proj)
    assert r.code == 0, r.stdout
    # locks says only that the stamped history's ALTERs set no lock_timeout
    assert [f["rule"] for f in r.findings()] == ["lock-timeout-missing"]
    statuses = {c["id"]: c["status"] for c in r.report["checks"]}
    assert statuses["upgrade"] == statuses["roundtrip"] == statuses["stepwise"] == "passed"
    assert statuses["locks"] == "passed"
    assert "1 stamped, not run (skip-revisions)" in r.check("stepwise")["note"]
    (proj / ".alembic-preflight.yml").write_text("skip-revisions: [nope]\n")
    r = run_cli("verify", ".", "--database", "embedded", cwd=proj)
    assert r.code == 2
    assert ".alembic-preflight.yml:1: `skip-revisions`: no revision `nope`" in r.stderr


@pytest.mark.parametrize(
    ("name", "text", "flags", "said"),
    [
        (
            ".alembic-preflight.yml",
            "checks: [graph]\n\nskip-revisions: [nope]\n",
            (),
            ".alembic-preflight.yml:3: `skip-revisions`: no revision `nope` in this history",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\n",
            ("--skip-revisions", "nope"),
            "--skip-revisions: no revision `nope` in this history",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\ndowngrade-floor: zzz\n",
            (),
            ".alembic-preflight.yml:2: `downgrade-floor`: no revision `zzz` in this history",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\ndata:\n  1a2b:\n    customers: [{id: 1}]\n  qqq:\n"
            "    customers: [{id: 2}]\n",
            (),
            ".alembic-preflight.yml:5: `data`: no revision `qqq` in this history",
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\n\n[tool.alembic-preflight]\nchecks = ["graph"]\n'
            'skip_revisions = ["nope"]\n',
            (),
            "pyproject.toml:6: `skip-revisions`: no revision `nope` in this history",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\nbogus: 1\n",
            (),
            ".alembic-preflight.yml:2: unknown setting `bogus`",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\njobs: 2\nstep-timeout: 0\n",
            (),
            ".alembic-preflight.yml:3: `step-timeout` must be more than 0",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\nstep-timeout: 0\n",
            ("--step-timeout", "-1"),
            "--step-timeout / step-timeout must be more than 0 and at most 86400 seconds "
            "(got -1.0)",
        ),
        (
            "pyproject.toml",
            '[tool.alembic-preflight]\n# ours\nfail-on = "sometimes"\n',
            (),
            "pyproject.toml:3: `fail-on` must be error, warning or never",
        ),
        (
            "pyproject.toml",
            '[tool.alembic-preflight]\nchecks = ["graph"]\n\n'
            '[tool.alembic-preflight.rules]\nother = "off"\n"multiple-heads" = "loud"\n',
            (),
            "pyproject.toml:6: `rules.multiple-heads` must be error, warning, notice or off",
        ),
        (
            "pyproject.toml",
            '[tool.alembic-preflight]\nchecks = [\n  "graph",\n]\n'
            'rules."multiple-heads" = "loud"\n',
            (),
            "pyproject.toml:5: `rules.multiple-heads` must be error, warning, notice or off",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\ndata:\n  1a2b:\n    customers: [{id: 1}]\n    orders: [3]\n",
            (),
            ".alembic-preflight.yml:5: `data.1a2b.orders` must be a list of rows",
        ),
        (
            ".alembic-preflight.yml",
            "jobs: 1\nchecks: [graph, lnit]\n",
            (),
            ".alembic-preflight.yml:2: `checks`: unknown check `lnit` (known: graph, lint,",
        ),
        (
            "pyproject.toml",
            '[tool.alembic-preflight]\nchecks = ["graph"]\nskip = ["drift", "lnt"]\n',
            (),
            "pyproject.toml:3: `skip`: unknown check `lnt`",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\n",
            ("--skip", "lnt"),
            "--skip: unknown check `lnt`",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\nbaseline: old/baseline.json\n",
            (),
            ".alembic-preflight.yml:2: `baseline`: old/baseline.json: baseline file not found",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\nlint:\n  severity:\n    irreversible: warning\n"
            "    destructive-upgrade: loud\n",
            (),
            ".alembic-preflight.yml:5: `lint.severity.destructive-upgrade` must be error or "
            "warning",
        ),
        (
            ".alembic-preflight.yml",
            "checks: [graph]\nlint:\n  prefixes:\n    fk: fk_\n    zz: z_\n",
            (),
            ".alembic-preflight.yml:5: `lint.prefixes.zz`: no such kind of name (known: ck, "
            "fk, ix, pk, uq)",
        ),
        (
            "pyproject.toml",
            '[tool.alembic-preflight]\nchecks = ["graph"]\n\n[tool.alembic-preflight.lint]\n'
            'disable = ["vague-message"]\n\n[tool.alembic-preflight.lint.prefixes]\n'
            'fk = "fk_"\npk = 1\n',
            (),
            "pyproject.toml:9: `lint.prefixes.pk` must be text, the start of every such name "
            "(got 1)",
        ),
        (
            "pyproject.toml",
            '[tool]\nalembic-preflight.checks = ["graph"]\n\n[tool.alembic-preflight.data.1a2b]\n'
            "customers = [{id = 1}]\n\n[tool.alembic-preflight.data.qqq]\ncustomers = [{id = 2}]\n",
            (),
            "pyproject.toml:7: `data`: no revision `qqq` in this history",
        ),
    ],
)
def test_a_setting_that_is_wrong_is_named_where_it_was_given(
    project: Any, name: str, text: str, flags: tuple[str, ...], said: str
) -> None:
    """Before any check runs (exit 2), at the line of the settings file that gives it, or
    as the flag when a flag gave it."""
    proj: Path = project("sync_good")
    (proj / name).write_text(text)
    r = run_cli("verify", ".", *flags, cwd=proj)
    assert r.code == 2, r.stdout + r.stderr
    assert said in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
