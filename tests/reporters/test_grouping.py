"""One defect, one entry; what breaks first (reporters/grouping.py, a pure function)."""

from __future__ import annotations

from reporter_samples import LEFT, UNNAMED, make_defects_report, make_report

from alembic_preflight.checks.lint.rules import DEFAULT_SEVERITY, WHOLE_HISTORY
from alembic_preflight.findings import Finding, Severity, group_by_rule
from alembic_preflight.reporters import grouping

E = Severity.ERROR


def rules(entry: grouping.Entry) -> list[str]:
    return [f"{f.check}/{f.rule}" for f in entry.findings]


def test_a_missing_enum_drop_seen_by_three_checks_is_one_entry():
    entries = grouping.entries(make_defects_report().findings)
    (enum,) = [e for e in entries if e.lead.revision == LEFT and e.severity is E]
    # the lead says where: the stepwise finding at the revision, with its file and line
    assert enum.lead.rule == "downgrade-leaves-behind" and enum.lead.line == 34
    assert rules(enum) == [
        "stepwise/downgrade-leaves-behind",
        "roundtrip/reupgrade-failed",
        "roundtrip/base-not-empty",
    ]
    assert (
        grouping.also_seen(enum) == "roundtrip/reupgrade-failed (line 25), roundtrip/base-not-empty"
    )
    # nothing of it is left as an entry of its own
    assert sum("roundtrip" in rules(e)[0] for e in entries) == 0


def test_a_lint_rule_a_failure_names_as_its_cause_joins_that_failure():
    entries = grouping.entries(make_defects_report().findings)
    (failed,) = [e for e in entries if e.lead.rule == "downgrade-failed"]
    assert rules(failed) == ["stepwise/downgrade-failed", "lint/unnamed-drop-constraint"]
    # the unnamed creation at another line of the same revision is another matter
    assert any(e.lead.rule == "unnamed-constraint" and e.lead.revision == UNNAMED for e in entries)


def test_nine_findings_five_defects():
    # the issue: "one missing enum drop in three sections: 9 errors for 5 defects"
    report = make_defects_report(conventions=0)
    errors = [f for f in report.findings if f.severity is E]
    entries = [e for e in grouping.entries(report.findings) if e.severity is E]
    assert (len(errors), len(entries)) == (5, 2)


def test_a_notice_at_the_same_revision_stays_apart():
    entries = grouping.entries(make_defects_report().findings)
    (seed,) = [e for e in entries if e.lead.rule == "seed-skipped"]
    assert seed.also == () and seed.section is grouping.NOTICES


def test_a_whole_history_finding_naming_more_stays_an_entry_too():
    extra = Finding(
        "roundtrip",
        "base-not-empty",
        E,
        "downgrade to base leaves type `order_status` (enum); leaves sequence `numbers`",
    )
    findings = [*make_defects_report().findings, extra]
    entries = grouping.entries(f for f in findings if f.rule != "base-not-empty" or f is extra)
    (enum,) = [e for e in entries if e.lead.rule == "downgrade-leaves-behind"]
    assert extra in enum.also
    assert any(e.lead is extra for e in entries)  # `numbers` is said by nothing else


def test_findings_of_one_check_at_one_revision_join_only_on_the_same_object():
    a = Finding("stepwise", "downgrade-leaves-behind", E, "leaves type `a`", revision="r1")
    b = Finding("stepwise", "downgrade-failed", E, "fails: x", revision="r1")
    c = Finding("stepwise", "reupgrade-failed", E, 'type "a" already exists', revision="r1")
    entries = grouping.entries([a, b, c])
    assert sorted(len(e.findings) for e in entries) == [1, 2]


def test_sections_deploy_and_rollback_failures_before_lint_errors():
    entries = grouping.entries(make_defects_report().findings)
    keys = [e.section.key for e in entries]
    assert keys == sorted(keys, key=[s.key for s in grouping.SECTIONS].index)
    assert keys[:2] == ["failures", "failures"]
    assert keys[2] == "lint-errors" and entries[2].lead.rule == "file-name-template"
    # inside the failures: the entry more checks saw first
    assert [e.lead.rule for e in entries[:2]] == ["downgrade-leaves-behind", "downgrade-failed"]


def test_graph_errors_are_failures_and_rarer_lint_rules_lead_the_lint_errors():
    entries = grouping.entries(make_report().findings)
    titles = [(e.section.key, e.lead.check, e.lead.rule) for e in entries]
    assert titles[0][0] == "failures"
    assert ("failures", "graph", "multiple-heads") in titles
    lint_errors = [t for t in titles if t[0] == "lint-errors"]
    assert lint_errors == [("lint-errors", "lint", "not-null-without-server-default")]


def test_rule_counts_in_section_order():
    report = make_defects_report()
    order = [
        f"{g[0].check}/{g[0].rule}" for g in grouping.rule_order(group_by_rule(report.findings))
    ]
    # the 30 naming errors no longer open the counts
    assert order.index("stepwise/downgrade-failed") < order.index("lint/file-name-template")
    assert order.index("lint/file-name-template") < order.index("lint/unnamed-constraint")
    assert order[-1] == "stepwise/seed-skipped"


def test_lint_rules_about_running_or_undoing_rank_before_conventions():
    # checks/lint/rules.py WHOLE_HISTORY: a migration that cannot run or be undone
    for rule in WHOLE_HISTORY:
        assert grouping.IMPACT.get(rule, grouping.OTHER) < grouping.OTHER, rule
    for rule in set(DEFAULT_SEVERITY) - WHOLE_HISTORY:
        assert grouping.IMPACT.get(rule, grouping.OTHER) >= grouping.LEAVES_BEHIND, rule


def test_the_cause_wording_is_the_one_failures_write():
    # checks/failures.py cause() writes it; grouping reads it back to join the lint finding
    from pathlib import Path

    import alembic_preflight.checks.failures as failures

    source = Path(failures.__file__).read_text(encoding="utf-8")
    assert 'f"the cause is lint {hit.rule} at line {hit.line}: {hit.fix}"' in source


def test_objects_named_in_messages():
    def names(message: str) -> frozenset[str]:
        return grouping.objects(Finding("x", "y", E, message))

    assert names("leaves type `order_status` (enum)") == {"order_status"}
    assert names("leaves index `ix_a` on `orders`") == {"ix_a"}
    assert names("leaves function `label_93(integer)`") == {"label_93"}
    assert names('DuplicateObject: type "order_status" already exists') == {"order_status"}
    assert names("nothing named") == frozenset()


def test_hidden_counts_per_rule():
    entries = grouping.entries(make_defects_report().findings)
    lint_errors = [e for e in entries if e.section is grouping.LINT_ERRORS]
    assert grouping.hidden(lint_errors[10:]) == "20 lint/file-name-template"


def test_a_deploy_failure_and_a_rollback_failure_at_one_revision_stay_two():
    rows = Finding("upgrade", "data-failed", E, "rows for `orders` refused", revision="r1")
    down = Finding("stepwise", "downgrade-failed", E, "fails: boom", revision="r1")
    again = Finding("roundtrip", "downgrade-failed", E, "fails: boom", revision="r1")
    entries = grouping.entries([rows, down, again])
    assert sorted(rules(e) for e in entries) == [
        ["stepwise/downgrade-failed", "roundtrip/downgrade-failed"],
        ["upgrade/data-failed"],
    ]
