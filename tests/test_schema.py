"""schema.py against a real PostgreSQL: equal snapshots for equal schemas, and every kind
of object a downgrade can leave behind named in words."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import psycopg
import pytest

from alembic_preflight.catalog.describe import DOWNGRADE, REUPGRADE, describe, detail
from alembic_preflight.catalog.diff import SchemaDiff, diff_snapshots
from alembic_preflight.catalog.snapshot import Snapshot, Snapshotter, take_snapshot
from alembic_preflight.catalog.statements import Session
from alembic_preflight.database.base import Server

_names = itertools.count()


@pytest.fixture
def make_db(pg_server: Server) -> Iterator[Callable[..., psycopg.Connection]]:
    """Create fresh databases on the shared server; each comes as an autocommit connection."""
    admin = psycopg.connect(pg_server.conninfo(), autocommit=True)
    conns: list[psycopg.Connection] = []

    def make(*ddl: str) -> psycopg.Connection:
        name = f"schema_{os.getpid()}_{next(_names)}"
        admin.execute(f"CREATE DATABASE {name}")
        conn = psycopg.connect(pg_server.conninfo(name), autocommit=True)
        conns.append(conn)
        for statement in ddl:
            conn.execute(statement)
        return conn

    yield make
    for c in conns:
        name = c.info.dbname
        c.close()
        admin.execute(f"DROP DATABASE {name}")
    admin.close()


# A schema using most of what the snapshot reads, as a list of statements that can run
# in a different order (each depends only on statements before it in BOTH orders below).
BASE = [
    "CREATE TYPE status AS ENUM ('new', 'paid', 'shipped')",
    "CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE)",
    """CREATE TABLE orders (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         customer_id integer NOT NULL
           REFERENCES customers (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
         amount numeric(10,2) NOT NULL DEFAULT 0 CONSTRAINT ck_amount CHECK (amount >= 0),
         status status NOT NULL DEFAULT 'new',
         note text COLLATE "C",
         total numeric GENERATED ALWAYS AS (amount * 2) STORED
       )""",
    "CREATE INDEX ix_orders_status ON orders (status) WHERE note IS NOT NULL",
    "CREATE SCHEMA app",
    "CREATE DOMAIN app.posint AS integer DEFAULT 1 NOT NULL CONSTRAINT positive CHECK (VALUE > 0)",
    "CREATE TYPE app.pair AS (a integer, b text)",
    "CREATE SEQUENCE app.counter AS integer START 10 INCREMENT 5 CYCLE",
    "CREATE TABLE events (id integer, at date NOT NULL, note text) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE VIEW paid_orders AS SELECT id, amount FROM orders WHERE status = 'paid'",
    "CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(amount) AS total "
    "FROM orders GROUP BY customer_id",
    """CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
       AS $$ BEGIN NEW.note := coalesce(NEW.note, ''); RETURN NEW; END $$""",
    "CREATE TRIGGER trg_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
    "COMMENT ON TABLE orders IS 'what customers bought'",
    "COMMENT ON COLUMN orders.note IS 'free text'",
    "CREATE EXTENSION citext",
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    "ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY own_orders ON orders USING (customer_id > 0)",
    "CREATE RULE no_delete AS ON DELETE TO customers DO INSTEAD NOTHING",
    "CREATE STATISTICS st_orders (dependencies) ON customer_id, status FROM orders",
    "CREATE TABLE bookings (room integer, during tsrange, EXCLUDE USING gist (during WITH &&))",
    "CREATE INDEX ix_events_note ON events (note)",
]

# the same statements, independent ones in another order
SHUFFLED = [
    "CREATE EXTENSION citext",
    "CREATE SCHEMA app",
    "CREATE SEQUENCE app.counter AS integer START 10 INCREMENT 5 CYCLE",
    "CREATE TYPE app.pair AS (a integer, b text)",
    "CREATE DOMAIN app.posint AS integer DEFAULT 1 NOT NULL CONSTRAINT positive CHECK (VALUE > 0)",
    BASE[8],  # events
    BASE[9],
    "CREATE INDEX ix_events_note ON events (note)",
    "CREATE TABLE bookings (room integer, during tsrange, EXCLUDE USING gist (during WITH &&))",
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql"
    "\n       AS $$ BEGIN NEW.note := coalesce(NEW.note, ''); RETURN NEW; END $$",
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    BASE[1],  # customers
    "CREATE RULE no_delete AS ON DELETE TO customers DO INSTEAD NOTHING",
    BASE[0],  # status
    BASE[2],  # orders
    "COMMENT ON COLUMN orders.note IS 'free text'",
    "COMMENT ON TABLE orders IS 'what customers bought'",
    "CREATE STATISTICS st_orders (dependencies) ON customer_id, status FROM orders",
    "CREATE POLICY own_orders ON orders USING (customer_id > 0)",
    "ALTER TABLE orders ENABLE ROW LEVEL SECURITY",
    BASE[13],  # trigger
    BASE[11],  # matview
    BASE[10],  # view
    BASE[3],  # index
]


def _diff(before: psycopg.Connection, after: psycopg.Connection) -> SchemaDiff:
    return diff_snapshots(take_snapshot(before), take_snapshot(after))


def test_same_ddl_in_another_order_gives_equal_snapshots(make_db):
    assert sorted(BASE) == sorted(SHUFFLED)
    a, b = make_db(*BASE), make_db(*SHUFFLED)
    first, second = take_snapshot(a), take_snapshot(b)
    assert len(first) > 40  # it did read the schema
    assert first == second, detail(diff_snapshots(first, second))


def test_snapshot_covers_every_kind_and_leaves_out_extension_members(make_db):
    snap = take_snapshot(make_db(*BASE))
    kinds = {k for k, _ in snap.objects}
    assert kinds >= {
        "schema",
        "extension",
        "type",
        "sequence",
        "table",
        "column",
        "constraint",
        "index",
        "view",
        "materialized view",
        "function",
        "trigger",
        "rule",
        "policy",
        "statistics",
        "comment",
    }
    assert ("extension", "citext") in snap.objects
    # citext's type and functions come with the extension
    assert ("type", "citext") not in snap.objects
    assert not [k for k in snap.objects if k[0] == "function" and "citext" in k[1]]
    # the version table and everything on it are left out
    assert not [k for k in snap.objects if "alembic_version" in k[1]]
    assert snap.objects[("type", "status")].definition == "labels: 'new', 'paid', 'shipped'"
    assert ("sequence", "customers_id_seq") in snap.objects
    # an identity column's sequence is part of the column
    assert not [k for k in snap.objects if k == ("sequence", "orders_id_seq")]
    assert "owned by: customers.id" in snap.objects[("sequence", "customers_id_seq")].definition


def test_excluded_table_can_be_schema_qualified(make_db):
    conn = make_db(
        "CREATE SCHEMA meta",
        "CREATE TABLE meta.alembic_version (version_num varchar(32) PRIMARY KEY)",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    )
    snap = take_snapshot(conn, exclude_tables=("meta.alembic_version",))
    assert ("table", "alembic_version") in snap.objects
    assert ("table", "meta.alembic_version") not in snap.objects
    assert ("column", "meta.alembic_version.version_num") not in snap.objects


LEFT_BEHIND = [
    ("CREATE TYPE status_0028 AS ENUM ('a', 'b')", "leaves type `status_0028` (enum)"),
    ("CREATE SEQUENCE seq_0028", "leaves sequence `seq_0028`"),
    (
        "CREATE FUNCTION f_0028(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + 1'",
        "leaves function `f_0028(integer)`",
    ),
    (
        "CREATE TRIGGER trg_0028 AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()",
        "leaves trigger `trg_0028` on `orders`",
    ),
    ("CREATE EXTENSION pg_trgm", "leaves extension `pg_trgm`"),
    ("CREATE INDEX ix_orders_note ON orders (note)", "leaves index `ix_orders_note` on `orders`"),
    (
        "ALTER TABLE orders ADD CONSTRAINT ck_note CHECK (length(note) < 100)",
        "leaves check constraint `ck_note` on `orders`",
    ),
    ("CREATE VIEW v_0028 AS SELECT id FROM orders", "leaves view `v_0028`"),
    (
        "CREATE MATERIALIZED VIEW mv_0028 AS SELECT id FROM orders",
        "leaves materialized view `mv_0028`",
    ),
    (
        "CREATE DOMAIN app.email AS text CHECK (VALUE LIKE '%@%')",
        "leaves type `app.email` (domain)",
    ),
    ("COMMENT ON COLUMN orders.amount IS 'in euros'", "leaves comment on column `orders.amount`"),
    ("CREATE SCHEMA reports", "leaves schema `reports`"),
    (
        "CREATE TABLE audit (id integer PRIMARY KEY, at timestamptz)",
        "leaves table `audit`",
    ),
    ("ALTER TABLE orders ADD COLUMN extra integer", "leaves column `orders.extra`"),
    (
        "CREATE TABLE events_2025 PARTITION OF events "
        "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "leaves table `events_2025`",
    ),
]


@pytest.mark.parametrize(("ddl", "said"), LEFT_BEHIND, ids=[s for _, s in LEFT_BEHIND])
def test_each_kind_left_behind_is_named(make_db, ddl, said):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute(ddl)
    diff = diff_snapshots(before, take_snapshot(conn))
    # one line: a table's columns and a comment's... are not named again
    assert describe(diff) == [said]
    assert not diff.removed and not diff.changed
    assert "+ " in detail(diff)


def test_dropped_column_is_said_to_be_dropped(make_db):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute("ALTER TABLE orders DROP COLUMN note CASCADE")
    lines = describe(diff_snapshots(before, take_snapshot(conn)))
    assert lines[0] == "does not restore column `orders.note` (it was there before the upgrade)"
    # the index that used it and its comment went with it, said once
    assert (
        "does not restore comment on column `orders.note` (it was there before the upgrade)"
        not in lines
    )


@pytest.mark.parametrize(
    ("ddl", "said"),
    [
        (
            "ALTER TABLE customers ALTER COLUMN email TYPE varchar(200)",
            "does not restore column `customers.email` as it was: "
            "type text → character varying(200)",
        ),
        (
            "ALTER TABLE orders ALTER COLUMN amount DROP DEFAULT",
            "does not restore column `orders.amount` as it was: default 0 → none",
        ),
        (
            "ALTER TABLE orders ALTER COLUMN note SET NOT NULL",
            "does not restore column `orders.note` as it was: NULL → NOT NULL",
        ),
        (
            "ALTER TYPE status ADD VALUE 'refunded' BEFORE 'shipped'",
            "does not restore type `status` (enum) as it was: labels 'new', 'paid', 'shipped' → "
            "'new', 'paid', 'refunded', 'shipped'",
        ),
        (
            "COMMENT ON TABLE orders IS 'purchases'",
            "does not restore comment on table `orders` as it was: "
            "what customers bought → purchases",
        ),
        (
            "ALTER SEQUENCE app.counter INCREMENT 1",
            "does not restore sequence `app.counter` as it was: increment 5 → 1",
        ),
    ],
)
def test_changed_object_names_what_changed(make_db, ddl, said):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute(ddl)
    diff = diff_snapshots(before, take_snapshot(conn))
    assert describe(diff) == [said]


def test_changed_function_body(make_db):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute(
        """CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN RETURN NEW; END $$"""
    )
    diff = diff_snapshots(before, take_snapshot(conn))
    assert describe(diff) == ["does not restore function `touch()` as it was: definition differs"]
    assert "-" in detail(diff) and "coalesce" in detail(diff)


def test_column_order_does_not_matter(make_db):
    a = make_db("CREATE TABLE t (a integer NOT NULL, b text DEFAULT 'x', c date)")
    b = make_db("CREATE TABLE t (c date, b text DEFAULT 'x', a integer NOT NULL)")
    # and a column dropped and added back, as a downgrade then upgrade would
    c = make_db(
        "CREATE TABLE t (a integer NOT NULL, b text DEFAULT 'x', c date)",
        "ALTER TABLE t DROP COLUMN a",
        "ALTER TABLE t ADD COLUMN a integer NOT NULL",
    )
    assert take_snapshot(a) == take_snapshot(b) == take_snapshot(c)


def test_composite_attribute_order_matters(make_db):
    a = make_db("CREATE TYPE p AS (x integer, y text)")
    b = make_db("CREATE TYPE p AS (y text, x integer)")
    diff = _diff(a, b)
    assert describe(diff) == [
        "does not restore type `p` (composite) as it was: "
        "attributes x integer, y text → y text, x integer"
    ]


def test_roundtrip_wording(make_db):
    first = make_db("CREATE TABLE t (a integer)", "CREATE INDEX ix_a ON t (a)")
    second = make_db("CREATE TABLE t (a bigint)", "CREATE SEQUENCE s")
    assert describe(_diff(first, second), REUPGRADE) == [
        "creates sequence `s` that the first upgrade did not",
        "does not create index `ix_a` on `t` that the first upgrade did",
        "creates column `t.a` differently: type integer → bigint",
    ]


def test_empty_diff_is_false_and_says_nothing(make_db):
    conn = make_db(*BASE)
    diff = diff_snapshots(take_snapshot(conn), take_snapshot(conn))
    assert not diff
    assert describe(diff, DOWNGRADE) == []
    assert detail(diff) == ""


def test_downgrade_to_base_leaves_nothing_but_the_version_table(make_db):
    empty = take_snapshot(make_db())
    conn = make_db(*BASE)
    for statement in (
        "DROP SCHEMA app CASCADE",
        "DROP TABLE orders, customers, events, bookings CASCADE",
        "DROP VIEW IF EXISTS paid_orders",
        "DROP FUNCTION touch",
        "DROP TYPE status",
        "DROP EXTENSION citext",
    ):
        conn.execute(statement)
    after = take_snapshot(conn)
    diff = diff_snapshots(empty, after)
    assert not diff, describe(diff)
    assert isinstance(after, Snapshot)


MORE_LEFT_BEHIND = [
    ("CREATE TYPE floatrange AS RANGE (subtype = float8)", "leaves type `floatrange` (range)"),
    (
        "CREATE AGGREGATE total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0')",
        "leaves aggregate `total(integer)`",
    ),
    (
        "CREATE PROCEDURE p_0028(n integer) LANGUAGE sql AS 'SELECT 1'",
        "leaves procedure `p_0028(integer)`",
    ),
    (
        "ALTER DOMAIN app.posint ADD CONSTRAINT small CHECK (VALUE < 1000)",
        "leaves check constraint `small` on `app.posint`",
    ),
    (
        "ALTER TABLE customers ADD CONSTRAINT uq_email_id UNIQUE (email, id)",
        "leaves unique constraint `uq_email_id` on `customers`",
    ),
    (
        "ALTER TABLE orders ADD CONSTRAINT fk_self FOREIGN KEY (customer_id) "
        "REFERENCES customers (id) ON UPDATE SET NULL",
        "leaves foreign key `fk_self` on `orders`",
    ),
    (
        "CREATE POLICY p2 ON orders FOR SELECT TO postgres USING (true)",
        "leaves policy `p2` on `orders`",
    ),
    # a partitioned index is named once, not once more for each partition's index
    ("CREATE INDEX ix_events_at ON events (at)", "leaves index `ix_events_at` on `events`"),
    # a schema left behind with things in it is one line
    (
        "CREATE SCHEMA audit; CREATE TABLE audit.log (id serial PRIMARY KEY, msg text)",
        "leaves schema `audit`",
    ),
    (
        "COMMENT ON CONSTRAINT ck_amount ON orders IS 'no refunds here'",
        "leaves comment on constraint `orders.ck_amount`",
    ),
]


@pytest.mark.parametrize(("ddl", "said"), MORE_LEFT_BEHIND, ids=[s for _, s in MORE_LEFT_BEHIND])
def test_more_kinds_left_behind_are_named(make_db, ddl, said):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute(ddl)
    assert describe(diff_snapshots(before, take_snapshot(conn))) == [said]


def test_changed_constraint_and_index_show_both_definitions(make_db):
    conn = make_db(*BASE)
    before = take_snapshot(conn)
    conn.execute("ALTER TABLE orders DROP CONSTRAINT ck_amount")
    conn.execute("ALTER TABLE orders ADD CONSTRAINT ck_amount CHECK (amount > 0)")
    conn.execute("DROP INDEX ix_orders_status")
    conn.execute("CREATE INDEX ix_orders_status ON orders (status)")
    diff = diff_snapshots(before, take_snapshot(conn))
    assert describe(diff) == [
        "does not restore check constraint `ck_amount` on `orders` as it was: "
        "CHECK ((amount >= (0)::numeric)) → CHECK ((amount > (0)::numeric))",
        "does not restore index `ix_orders_status` on `orders` as it was: definition differs",
    ]
    text = detail(diff, labels=("before upgrade", "after downgrade"))
    assert "~ constraint orders.ck_amount" in text
    assert "    --- before upgrade" in text
    assert "    -CHECK ((amount >= (0)::numeric))" in text
    assert "    +CHECK ((amount > (0)::numeric))" in text


def test_detail_lists_every_object_even_those_not_named_again(make_db):
    conn = make_db()
    before = take_snapshot(conn)
    conn.execute("CREATE TABLE audit (id integer NOT NULL, msg text)")
    diff = diff_snapshots(before, take_snapshot(conn))
    assert describe(diff) == ["leaves table `audit`"]
    assert detail(diff).splitlines() == [
        "+ table audit",
        "+ column audit.id",
        "+     type: integer",
        "+     null: NOT NULL",
        "+ column audit.msg",
        "+     type: text",
        "+     null: NULL",
    ]


def test_enum_labels_in_another_order_differ(make_db):
    a = make_db("CREATE TYPE s AS ENUM ('a', 'b')")
    b = make_db("CREATE TYPE s AS ENUM ('b', 'a')")
    assert describe(_diff(a, b)) == [
        "does not restore type `s` (enum) as it was: labels 'a', 'b' → 'b', 'a'"
    ]


def test_extension_objects_are_the_extension_only(make_db):
    conn = make_db()
    before = take_snapshot(conn)
    conn.execute("CREATE EXTENSION hstore")
    conn.execute("CREATE EXTENSION pg_trgm")
    diff = diff_snapshots(before, take_snapshot(conn))
    assert [o.key for o in diff.added] == [
        ("extension", "hstore"),
        ("extension", "pg_trgm"),
        ("comment", "extension hstore"),
        ("comment", "extension pg_trgm"),
    ]


# -- incremental snapshots ------------------------------------------------------------------

# DDL a history goes through, in order: every change of a kind the snapshot reads, and the
# renames whose new name other objects' definitions print (a view's table, a default's
# sequence, an index's table, a column's type, an enum's label in a default).
STEPS = [
    # what others depend on, changed but for its name: nothing else is read again, and
    # nothing else needs to be (the unique index is rebuilt: a new object)
    "ALTER TABLE customers ADD COLUMN phone text",
    "ALTER TABLE customers ALTER COLUMN email TYPE varchar(200)",
    "CREATE TABLE extra (id serial PRIMARY KEY, label text DEFAULT 'x', st status)",
    "ALTER TABLE extra ADD COLUMN amount numeric(8,2) NOT NULL DEFAULT 1",
    "CREATE INDEX ix_extra_label ON extra (lower(label)) WHERE st <> 'new'",
    "CREATE VIEW v_extra AS SELECT id, label, st FROM extra WHERE st = 'paid'",
    "ALTER TABLE extra RENAME TO extra2",
    "ALTER TABLE extra2 RENAME COLUMN label TO title",
    "ALTER SEQUENCE extra_id_seq RENAME TO extra2_id_seq",
    "ALTER TYPE status ADD VALUE 'refunded' BEFORE 'shipped'",
    "ALTER TYPE status RENAME VALUE 'paid' TO 'settled'",
    "ALTER TYPE status RENAME TO order_status",
    "ALTER TABLE extra2 ALTER COLUMN amount TYPE numeric(12,2)",
    "ALTER TABLE extra2 ALTER COLUMN amount DROP DEFAULT",
    "ALTER TABLE extra2 ADD CONSTRAINT ck_extra_amount CHECK (amount > 0)",
    "ALTER TABLE extra2 ADD CONSTRAINT fk_extra_customer FOREIGN KEY (id) "
    "REFERENCES customers (id) ON DELETE SET NULL",
    # a foreign key's internal triggers are no object of the snapshot, and are not listed:
    # the constraint's own row says what changed, and enabling them changes nothing read
    "ALTER TABLE extra2 ALTER CONSTRAINT fk_extra_customer DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE extra2 DISABLE TRIGGER ALL",
    "ALTER TABLE extra2 ENABLE TRIGGER ALL",
    # a dropped column's row stays, rewritten as dropped: it leaves the listing
    "ALTER TABLE extra2 ADD COLUMN spare integer",
    "ALTER TABLE extra2 DROP COLUMN spare",
    "ALTER TABLE customers RENAME TO clients",
    "ALTER TABLE clients RENAME COLUMN id TO client_id",
    "COMMENT ON TABLE extra2 IS 'more'",
    "COMMENT ON COLUMN extra2.title IS 'a title'",
    "COMMENT ON TABLE extra2 IS 'still more'",
    "COMMENT ON TABLE extra2 IS NULL",
    "CREATE FUNCTION bump(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x + 1'",
    "ALTER TABLE extra2 ADD CONSTRAINT ck_bump CHECK (bump(id) > 0)",
    "ALTER FUNCTION bump(integer) RENAME TO bump2",
    "CREATE TRIGGER trg_extra BEFORE INSERT ON extra2 FOR EACH ROW EXECUTE FUNCTION touch()",
    "ALTER FUNCTION touch() RENAME TO touch2",
    "ALTER TRIGGER trg_extra ON extra2 RENAME TO trg_extra2",
    "CREATE SCHEMA side",
    "ALTER TABLE extra2 SET SCHEMA side",
    "ALTER SCHEMA side RENAME TO side2",
    "ALTER TYPE app.pair ADD ATTRIBUTE c date",
    # a view prints the names of another view's columns and of a type's attributes
    "CREATE VIEW v_pair AS SELECT (ROW(1, 'x', NULL)::app.pair).a AS a",
    "ALTER TYPE app.pair RENAME ATTRIBUTE a TO a1",
    "CREATE VIEW v_paid_ids AS SELECT id FROM paid_orders",
    "ALTER VIEW paid_orders RENAME COLUMN id TO order_id",
    "ALTER VIEW paid_orders RENAME COLUMN order_id TO id",
    "DROP VIEW v_paid_ids",
    "ALTER DOMAIN app.posint SET DEFAULT 2",
    "CREATE TABLE app.owner (n integer)",
    "ALTER SEQUENCE app.counter OWNED BY app.owner.n",
    "ALTER TABLE app.owner RENAME COLUMN n TO m",
    "ALTER SEQUENCE app.counter OWNED BY NONE",
    "CREATE SEQUENCE app.counter2",
    "ALTER TABLE orders ALTER COLUMN note SET DEFAULT nextval('app.counter2')::text",
    "ALTER SEQUENCE app.counter2 RENAME TO counter3",
    "ALTER SCHEMA app RENAME TO app2",
    "CREATE UNIQUE INDEX uq_clients_email ON clients (email, client_id)",
    "ALTER TABLE clients ADD CONSTRAINT uq_clients_email UNIQUE USING INDEX uq_clients_email",
    "ALTER TABLE clients DROP CONSTRAINT uq_clients_email",
    "CREATE OR REPLACE VIEW paid_orders AS SELECT id, amount, note FROM orders "
    "WHERE status = 'settled'",
    "ALTER VIEW paid_orders RENAME TO settled_orders",
    "REFRESH MATERIALIZED VIEW order_totals",
    "ALTER MATERIALIZED VIEW order_totals RENAME COLUMN total TO sum_total",
    "CREATE EXTENSION pg_trgm",
    "CREATE INDEX ix_clients_trgm ON clients USING gin (email gin_trgm_ops)",
    "ALTER EXTENSION pg_trgm UPDATE",
    "DROP INDEX ix_clients_trgm",
    "DROP EXTENSION pg_trgm",
    "ALTER TABLE orders DISABLE ROW LEVEL SECURITY",
    "ALTER POLICY own_orders ON orders USING (customer_id > 1)",
    "ALTER TABLE orders RENAME COLUMN customer_id TO client_id",
    "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "ALTER TABLE events DETACH PARTITION events_2024",
    "ALTER TABLE events RENAME TO happenings",
    "ALTER TABLE happenings ATTACH PARTITION events_2024 "
    "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "ALTER STATISTICS st_orders RENAME TO st_orders2",
    "ALTER TABLE orders ALTER COLUMN note SET STORAGE EXTERNAL",
    "DROP VIEW settled_orders",
    "DROP TABLE side2.extra2 CASCADE",
    "DROP TYPE order_status CASCADE",
    "DROP SCHEMA side2",
    # a table in public that shadows nothing, then one in a schema on the search path
    "CREATE TABLE app2.dup (id integer)",
    "CREATE TABLE dup (id integer)",
    "DROP TABLE dup",
    "DROP FUNCTION touch2() CASCADE",
    "DROP EXTENSION citext",
]


def _full(conn: psycopg.Connection, *, by_listing: bool = False) -> Snapshot:
    """A full snapshot: a fresh Snapshotter reads everything, with the statement `every`
    (or `by_listing`: as `changed` reads the roots the listing names, as a Snapshotter's
    first snapshot of a small schema does)."""
    with conn.transaction():
        conn.execute("SET LOCAL search_path = pg_catalog, public")
        first = 10**9 if by_listing else 0
        taker = Snapshotter(first_by_listing=first)
        return taker.take(lambda sql: conn.execute(sql).fetchall())


def test_incremental_snapshots_equal_full_ones_after_every_step(make_db):
    conn = make_db(*BASE)
    # the same database, read through another connection
    reader = psycopg.connect(conn.info.dsn, autocommit=True)
    try:
        snapshotter = Snapshotter()
        closures = []  # the statements that find what to read again

        def query(sql: str) -> list:
            if sql.startswith("WITH RECURSIVE"):
                closures.append(sql)
            return reader.execute(sql).fetchall()

        def incremental() -> Snapshot:
            with reader.transaction():
                reader.execute("SET LOCAL search_path = pg_catalog, public")
                return snapshotter.take(query)

        assert incremental() == _full(conn) == _full(conn, by_listing=True)
        for step in STEPS:
            conn.execute(step)
            got, want = incremental(), _full(conn)
            assert got == want, f"after {step!r}:\n{detail(diff_snapshots(want, got))}"
            listed = _full(conn, by_listing=True)
            assert listed == want, f"after {step!r}:\n{detail(diff_snapshots(want, listed))}"
            assert got == take_snapshot(conn)  # the per-connection snapshotter agrees
        # incremental but for steps that change which names shadow others (an extension
        # in public with functions named like pg_catalog's) and three that change nothing
        # read (REFRESH, and the foreign key's triggers disabled and enabled)
        assert len(closures) >= len(STEPS) - 7
    finally:
        reader.close()


def test_a_diff_of_a_snapshot_and_the_next_looks_at_what_changed_only(make_db):
    """Two snapshots in a row of one Snapshotter: their diff compares the keys the
    second changed, and says what a comparison of every object says."""
    conn = make_db(*BASE)
    snapshot = _on_path(conn, "pg_catalog, public")
    before = snapshot(fresh=False)
    on_top = 0
    for step in STEPS:
        conn.execute(step)
        after = snapshot(fresh=False)
        if after is not before and after.base is not None:  # (not read anew, nor unchanged)
            assert after.base == before.generation, step
            assert len(after.changed) < len(after.objects), step
            on_top += 1
        whole = diff_snapshots(Snapshot(dict(before.objects)), Snapshot(dict(after.objects)))
        assert diff_snapshots(before, after) == whole, step
        before = after
    # all but the steps that read everything again (see the test above) and those that
    # change nothing read (the same snapshot again)
    assert on_top >= len(STEPS) - 7


def test_a_snapshot_after_commits_that_changed_nothing_reads_nothing_again(make_db):
    """Only the listing runs: rows initdb wrote (the system schemas' comments, xmin 1)
    keep their version from one transaction to the next, as every other row does."""
    conn = make_db(*BASE)
    conn.execute("COMMENT ON SCHEMA public IS 'ours now'")  # a row of ours among initdb's
    sent: list[str] = []
    snapshot = _on_path(conn, "pg_catalog, public", sent)
    first = snapshot(fresh=False)
    for _ in range(3):
        conn.execute("SELECT txid_current()")  # a transaction of its own (autocommit)
        sent.clear()
        assert snapshot(fresh=False) == first
        assert len(sent) == 1, sent  # the listing, and nothing read again


def _on_path(
    conn: psycopg.Connection, path: str, sent: list[str] | None = None
) -> Callable[..., Snapshot]:
    """Snapshots of `conn` with this search path: one Snapshotter's again and again, or
    (fresh=True) a new one's, which reads everything; each statement it runs goes in
    `sent`, when given."""
    snapshotter = Snapshotter()

    def query(sql: str) -> list:
        if sent is not None:
            sent.append(sql)
        return conn.execute(sql).fetchall()

    def snapshot(fresh: bool) -> Snapshot:
        with conn.transaction():
            conn.execute(f"SET LOCAL search_path = {path}")
            taker = Snapshotter() if fresh else snapshotter
            return taker.take(query)

    return snapshot


def test_incremental_snapshot_sees_a_new_name_shadow_an_old_one(make_db):
    """A table made in a schema earlier on the search path than another of its name: a
    view of the old one, changed in nothing, now prints that one's schema."""
    conn = make_db(
        "CREATE SCHEMA a",
        "CREATE SCHEMA b",
        "CREATE TABLE a.t (id integer)",
        "CREATE VIEW a.v AS SELECT id FROM a.t",
    )
    snapshot = _on_path(conn, "pg_catalog, b, a")
    before = snapshot(fresh=False)
    assert "FROM t" in before.objects[("view", "a.v")].definition
    conn.execute("CREATE TABLE b.t (id integer)")
    got, want = snapshot(fresh=False), snapshot(fresh=True)
    assert "FROM a.t" in want.objects[("view", "a.v")].definition
    assert got == want
    # and back, and again, each way a name can stop or start shadowing (a.v, changed in
    # nothing, prints `t` or `a.t` as b.t is there or not): only the objects read again
    # are looked at for shadowed names, and that must be enough
    for ddl, printed in (
        ("ALTER TABLE b.t RENAME TO t2", "FROM t"),
        ("ALTER TABLE b.t2 RENAME TO t", "FROM a.t"),
        ("CREATE SCHEMA c", "FROM a.t"),
        ("ALTER TABLE b.t SET SCHEMA c", "FROM t"),
        ("ALTER TABLE c.t SET SCHEMA b", "FROM a.t"),
        ("DROP TABLE b.t", "FROM t"),
        ("CREATE VIEW b.t AS SELECT 1 AS id", "FROM a.t"),
        ("DROP VIEW b.t", "FROM t"),
        ("CREATE TYPE b.t AS (id integer)", "FROM a.t"),  # a composite type is a relation
        ("DROP TYPE b.t", "FROM t"),
    ):
        conn.execute(ddl)
        got, want = snapshot(fresh=False), snapshot(fresh=True)
        assert printed in want.objects[("view", "a.v")].definition, ddl
        assert got == want, ddl


def test_incremental_snapshot_sees_a_function_shadow_come_and_go(make_db):
    """The same for a function a default prints, overloaded within its schema: one of
    its name in a schema earlier on the path makes the default print its schema."""
    conn = make_db(
        "CREATE SCHEMA a",
        "CREATE SCHEMA b",
        "CREATE FUNCTION a.f(integer) RETURNS integer LANGUAGE sql AS 'SELECT $1'",
        "CREATE FUNCTION a.f(text) RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE TABLE a.t (id integer DEFAULT a.f(1))",
    )
    snapshot = _on_path(conn, "pg_catalog, b, a")
    snapshot(fresh=False)
    for ddl in (
        "CREATE FUNCTION b.f(integer) RETURNS integer LANGUAGE sql AS 'SELECT 2'",
        "ALTER FUNCTION a.f(text) SET SCHEMA b",
        "ALTER FUNCTION b.f(integer) RENAME TO g",
        "ALTER FUNCTION b.f(text) SET SCHEMA a",
        "ALTER FUNCTION b.g(integer) RENAME TO f",
        "DROP FUNCTION b.f(integer)",
    ):
        conn.execute(ddl)
        got, want = snapshot(fresh=False), snapshot(fresh=True)
        assert got == want, ddl


@pytest.mark.parametrize("prepared", [False, True])
def test_incremental_snapshots_within_one_transaction(make_db, prepared):
    """Changes inside one open transaction share an xmin: the row's place tells them apart.
    Through a statements.Session the same queries run prepared, and a DEALLOCATE ALL
    between two snapshots (a driver or a migration may send one) only costs a PREPARE."""
    conn = make_db(*BASE)
    snapshotter = Snapshotter()
    sent: list[str] = []  # the first two words of each statement

    def plain(sql: str) -> list:
        sent.append(" ".join(sql.split(" ", 2)[:2]))
        cur = conn.execute(sql, prepare=False)
        return cur.fetchall() if cur.description else []

    session = Session(plain)
    query = session if prepared else plain
    with conn.transaction():
        snapshotter.take(query)
        for i, step in enumerate(STEPS[:12]):
            conn.execute(step)
            if i == 6:
                conn.execute("DEALLOCATE ALL")
            session.others_ran()
            got, want = snapshotter.take(query), Snapshotter().take(plain)
            assert got == want, f"after {step!r}:\n{detail(diff_snapshots(want, got))}"
    if prepared:
        # each statement prepared once, and once more if it ran after the DEALLOCATE ALL
        prepares = [s for s in sent if s.startswith("PREPARE ")]
        assert prepares and all(prepares.count(p) <= 2 for p in prepares)
        assert max(prepares.count(p) for p in prepares) == 2
        executes = [s for s in sent if s.startswith("EXECUTE ")]
        assert len(executes) > 2 * len(prepares)
        names = {r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements")}
        assert names and all(n.startswith("alembic_preflight_") for n in names)


def _rows(result) -> list:
    return [tuple(r) for r in result] if result.returns_rows else []


def test_snapshot_sets_nothing_and_is_the_same_through_every_driver(make_db, pg_server):
    import asyncio

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    conn = make_db(*BASE)
    want = take_snapshot(conn)
    dbname = conn.info.dbname
    host, port = conn.info.host, conn.info.port
    user = conn.info.user

    def url(driver: str) -> str:
        return f"postgresql+{driver}://{user}@/{dbname}?host={host}&port={port}"

    for driver in ("psycopg", "psycopg2"):
        engine = sa.create_engine(url(driver))
        try:
            with engine.begin() as sconn:  # inside a transaction, as a migration runs
                sconn.exec_driver_sql("CREATE TABLE in_tx (id integer)")
                sconn.exec_driver_sql("SET LOCAL search_path = app, public")
                query = lambda sql: _rows(sconn.exec_driver_sql(sql))  # noqa: E731
                snapshotter = Snapshotter()
                first = snapshotter.take(query)
                sconn.exec_driver_sql("DROP TABLE in_tx")
                # search_path is the migration's own, and the transaction still usable
                path = sconn.exec_driver_sql("SHOW search_path").scalar()
                assert path == "app, public"
                sconn.exec_driver_sql("SET LOCAL search_path = pg_catalog, public")
                assert ("table", "in_tx") in first.objects
                got = snapshotter.take(query)
                assert got == want, f"{driver}: {detail(diff_snapshots(want, got))}"
                prepared = Snapshotter().take(Session(query))
                assert prepared == want, f"{driver}, prepared: {detail(diff_snapshots(want, got))}"
        finally:
            engine.dispose()

    async def through_asyncpg() -> Snapshot:
        engine = create_async_engine(url("asyncpg"))
        try:
            async with engine.begin() as aconn:

                def take(sync_conn: sa.Connection) -> Snapshot:
                    query = lambda sql: _rows(sync_conn.exec_driver_sql(sql))  # noqa: E731
                    snapshotter = Snapshotter()
                    snapshotter.take(Session(query))  # asyncpg prepares, and so do we
                    return snapshotter.take(query)

                return await aconn.run_sync(take)
        finally:
            await engine.dispose()

    got = asyncio.run(through_asyncpg())
    assert got == want, f"asyncpg: {detail(diff_snapshots(want, got))}"
