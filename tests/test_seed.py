"""catalog/seed.py's rows on a real PostgreSQL: valid for every column's type and
constraints, and close enough to real data that later migrations do not fail on them
where real rows would pass (a false alarm)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from alembic_preflight.catalog.seed import SeedOutcome, psycopg_query, seed_empty_tables
from tests.conftest import FIXTURES, run_cli


def seed(db: psycopg.Connection[Any], rows: int = 3) -> SeedOutcome:
    return seed_empty_tables(
        psycopg_query(db), savepoint=db.transaction, failed=(psycopg.Error,), rows=rows
    )


def one(db: psycopg.Connection[Any], query: str) -> Any:
    row = db.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_each_column_gets_values_of_its_own_valid_for_its_type(db: Any) -> None:
    # twelve rows: past the single digits that dates, times and scales used to assume
    db.execute("""
        CREATE TABLE t (
            id int PRIMARY KEY, a int NOT NULL, b bigint NOT NULL, s smallint NOT NULL UNIQUE,
            f real NOT NULL, n numeric(2, 2) NOT NULL UNIQUE, m numeric(3, 1) NOT NULL UNIQUE,
            d1 date NOT NULL UNIQUE, d2 date NOT NULL, at1 timestamptz NOT NULL UNIQUE,
            at2 timestamp NOT NULL, t1 time NOT NULL UNIQUE, t2 timetz NOT NULL,
            span interval NOT NULL UNIQUE, c "char" NOT NULL UNIQUE, v varchar(2) NOT NULL UNIQUE,
            bits bit(4) NOT NULL UNIQUE, vbits varbit NOT NULL UNIQUE, raw bytea NOT NULL UNIQUE,
            j1 jsonb NOT NULL UNIQUE, j2 json NOT NULL, u1 uuid NOT NULL UNIQUE, u2 uuid NOT NULL,
            ip inet NOT NULL UNIQUE, net cidr NOT NULL UNIQUE, mac macaddr NOT NULL UNIQUE,
            doc xml NOT NULL, words tsvector NOT NULL
        )""")
    assert seed(db, rows=12).filled == ("t",)
    assert one(db, "SELECT count(*) FROM t") == 12
    # a later CHECK or unique index over two columns meets values that differ, as real
    # columns' values do (two dates of one row are rarely the same day)
    assert (
        one(
            db,
            """SELECT count(*) FROM t WHERE a = b OR b = s OR a = s OR d1 = d2
               OR at1 = at2 OR t1 = t2::time OR j1::text = j2::text OR u1 = u2""",
        )
        == 0
    )


def test_arrays_hold_one_element_of_their_element_type(db: Any) -> None:
    db.execute("""
        CREATE TYPE mood AS ENUM ('ok', 'meh', 'bad');
        CREATE DOMAIN mood_d AS mood;
        CREATE DOMAIN code AS varchar(2);
        CREATE DOMAIN tag_list AS text[];
        CREATE TABLE arr (
            id int PRIMARY KEY, tags text[] NOT NULL UNIQUE, nums int[] NOT NULL,
            codes varchar(2)[] NOT NULL UNIQUE, dcodes code[] NOT NULL UNIQUE,
            moods mood[] NOT NULL UNIQUE, dmoods mood_d[] NOT NULL, mood mood_d NOT NULL,
            ids uuid[] NOT NULL UNIQUE, docs jsonb[] NOT NULL UNIQUE, grid int[][] NOT NULL,
            listed tag_list NOT NULL UNIQUE, at timestamptz[] NOT NULL UNIQUE
        );
        CREATE UNIQUE INDEX ON arr (nums);
    """)
    assert seed(db).filled == ("arr",)
    lengths = """SELECT DISTINCT cardinality(tags), cardinality(nums), cardinality(codes),
                 cardinality(dcodes), cardinality(moods), cardinality(dmoods), cardinality(ids),
                 cardinality(docs), cardinality(grid), cardinality(listed), cardinality(at)
                 FROM arr"""
    assert db.execute(lengths).fetchall() == [(1,) * 11]
    labels = "SELECT DISTINCT unnest(moods || dmoods || ARRAY[mood::mood])::text FROM arr"
    assert {r[0] for r in db.execute(labels)} <= {"ok", "meh", "bad"}
    assert one(db, "SELECT count(*) FROM arr WHERE tags[1] = listed[1]") == 0


def test_text_columns_named_for_a_kind_of_value_hold_such_values(db: Any) -> None:
    db.execute("""
        CREATE TABLE people (
            id int PRIMARY KEY, tz text NOT NULL, time_zone varchar(40), "homeTz" text,
            timezone varchar(3) UNIQUE, currency char(3) NOT NULL, country_code varchar(2),
            billing_country text, language text, locale varchar(10), website_url text,
            avatar_uri text, external_uuid text UNIQUE, guid varchar(36), last_ip varchar(45),
            ip_address text, email text, phone text, mobile_phone varchar(20), slug text UNIQUE,
            settings_json text, views_count text, amount varchar(12), unit_price text,
            quantity text
        )""")
    assert seed(db).filled == ("people",)
    # what later migrations do with such columns: AT TIME ZONE, a cast, a regex CHECK
    uses = [
        "now() AT TIME ZONE tz",
        "now() AT TIME ZONE time_zone",
        'now() AT TIME ZONE "homeTz"',
        "now() AT TIME ZONE timezone",
        "external_uuid::uuid",
        "guid::uuid",
        "last_ip::inet",
        "ip_address::inet",
        "settings_json::jsonb",
        "views_count::int",
        "amount::numeric",
        "unit_price::numeric",
        "quantity::int",
    ]
    for use in uses:
        assert one(db, f"SELECT count({use}) FROM people") == 3, use
    patterns = {
        "currency": "^[A-Z]{3}$",
        "country_code": "^[A-Z]{2}$",
        "billing_country": "^[A-Z]{2}$",
        "language": "^[a-z]{2}$",
        "locale": "^[a-z]{2}([-_][A-Z]{2})?$",
        "website_url": "^https://[a-z.]+/",
        "avatar_uri": "^https://[a-z.]+/",
        "email": "^[^@ ]+@[a-z.]+$",
        "phone": "^\\+[0-9]{7,15}$",
        "mobile_phone": "^\\+[0-9]{7,15}$",
        "slug": "^[a-z0-9]+(-[a-z0-9]+)*$",
    }
    for column, pattern in patterns.items():
        query = f"SELECT count(*) FROM people WHERE {column} !~ %s"
        assert db.execute(query, (pattern,)).fetchone() == (0,), column
    zones = """SELECT count(*) FROM people WHERE NOT ARRAY[tz, time_zone, "homeTz", timezone]
               <@ ARRAY(SELECT name FROM pg_timezone_names)"""
    assert one(db, zones) == 0  # names, not what PostgreSQL reads as POSIX rules ("tz-1")
    # two columns of one kind differ, as the zones of a user and of their office would
    assert one(db, "SELECT count(*) FROM people WHERE tz = time_zone") == 0


@pytest.mark.parametrize(
    "columns",
    [
        "a int NOT NULL UNIQUE CHECK (a > 1000000)",
        "a smallint NOT NULL UNIQUE CHECK (a < -5)",
        "a int NOT NULL UNIQUE CHECK (a >= 7 AND a <= 9)",
        "a int NOT NULL UNIQUE CHECK (a BETWEEN 2 AND 4)",
        "a int NOT NULL UNIQUE CHECK (a BETWEEN SYMMETRIC 40 AND 38)",
        "a int NOT NULL UNIQUE CHECK (0 > a)",
        "a int NOT NULL UNIQUE CHECK (a >= -1) CHECK (a <> 1) CHECK (a != 2)",
        "a numeric NOT NULL UNIQUE CHECK (a BETWEEN 0.5 AND 0.7)",
        "a real NOT NULL UNIQUE CHECK (a > 2.5 AND a < 2.9)",
        "a numeric(6, 2) NOT NULL UNIQUE CHECK (a > 9999)",
        "a date NOT NULL UNIQUE CHECK (a > '2031-05-01')",
        "a date NOT NULL UNIQUE CHECK (a < '1999-12-31'::date)",
        "a timestamptz NOT NULL UNIQUE CHECK (a >= '2030-01-01 00:00:00+00')",
        "a timestamp NOT NULL UNIQUE CHECK (a BETWEEN '2001-01-01' AND '2001-01-02')",
        "a varchar(20) NOT NULL UNIQUE CHECK (length(a) <= 3)",
        "a text NOT NULL UNIQUE CHECK (char_length(a) >= 12)",
        "a text NOT NULL UNIQUE CHECK (length(a) BETWEEN 20 AND 22)",
        "a text NOT NULL CHECK (a <> '') CHECK (octet_length(a) < 4)",
        "a int NOT NULL CHECK (a IN (7, 8))",
        "a int NOT NULL CHECK (a > 0), b int NOT NULL CHECK (b < 0), CHECK (a <> b)",
        "p int NOT NULL, CONSTRAINT positive CHECK (p IS NULL OR p > 100)",
        "tz varchar(20) NOT NULL CHECK (length(tz) < 10)",
        "b big NOT NULL UNIQUE",
        "b big[] NOT NULL UNIQUE",
        "a varchar(8) NOT NULL CHECK (a IN ('x', 'y'))",
        "m mood NOT NULL CHECK (m <> 'meh') CHECK (m::text <> 'ok')",
        "m mood NOT NULL CHECK (m NOT IN ('ok', 'meh'))",
        "a numeric NOT NULL UNIQUE CHECK (a <= -5.5::numeric)",
    ],
)
def test_simple_checks_are_met(db: Any, columns: str) -> None:
    db.execute(f"""
        CREATE DOMAIN big AS int CHECK (VALUE > 100);
        CREATE TYPE mood AS ENUM ('ok', 'meh', 'bad');
        CREATE TABLE t (id int PRIMARY KEY, {columns})""")
    assert seed(db).filled == ("t",)
    assert one(db, "SELECT count(*) FROM t") == 3


def test_a_column_said_to_come_after_another_gets_the_later_value(db: Any) -> None:
    db.execute("""
        CREATE TABLE spans (
            id int PRIMARY KEY,
            ends_at timestamptz NOT NULL, starts_at timestamptz NOT NULL,
            last_day date NOT NULL, first_day date NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
            low int NOT NULL, mid int NOT NULL, high int NOT NULL,
            CHECK (starts_at < ends_at), CHECK (first_day <= last_day),
            CHECK (first_day::timestamptz >= starts_at), CHECK (expires_at > created_at),
            CHECK (high > mid), CHECK (mid >= low), CHECK (low > 0)
        )""")
    assert seed(db).filled == ("spans",)
    assert one(db, "SELECT count(*) FROM spans") == 3


def test_foreign_keys_take_parent_rows_composite_self_and_missing(db: Any) -> None:
    db.execute("""
        CREATE TABLE account (id int PRIMARY KEY, region text NOT NULL, UNIQUE (id, region));
        CREATE TABLE transfer (
            id int PRIMARY KEY,
            from_id int NOT NULL, from_region text NOT NULL,
            to_id int NOT NULL REFERENCES account(id),
            FOREIGN KEY (from_id, from_region) REFERENCES account(id, region)
        );
        CREATE TABLE node (id int PRIMARY KEY, parent_id int REFERENCES node(id));
        CREATE TABLE root (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES root(id));
        CREATE TABLE serial_node (id serial PRIMARY KEY,
                                  parent_id int REFERENCES serial_node(id));
        CREATE TABLE unfillable (id int PRIMARY KEY, q tsquery NOT NULL);
        CREATE TABLE orphan (id int PRIMARY KEY, other_id int REFERENCES unfillable(id));
    """)
    out = seed(db)
    assert sorted(out.filled) == ["account", "node", "orphan", "root", "serial_node", "transfer"]
    assert one(db, "SELECT count(*) FROM transfer WHERE from_id = to_id") == 0
    # a tree: one root, the other rows its children
    assert db.execute("SELECT count(*), count(parent_id) FROM node").fetchone() == (3, 2)
    assert one(db, "SELECT count(*) FROM root WHERE id = parent_id") >= 1
    assert db.execute("SELECT count(*), count(parent_id) FROM serial_node").fetchone() == (3, 0)
    assert db.execute("SELECT count(*), count(other_id) FROM orphan").fetchone() == (3, 0)


def test_a_history_that_real_rows_pass_passes_with_synthetic_rows() -> None:
    # Each revision after the first failed on the rows the seeder used to make, or could
    # not be tried with rows: "tz-1" is no zone name and "c-1" no currency code (b2), the
    # two JSON documents of a row were equal and a transfer went from an account to
    # itself (c3), ends_at was starts_at so bookings got no rows, and tags were empty (d4),
    # "external_uuid-1" is no UUID (e5).
    r = run_cli(
        "verify", FIXTURES / "realistic_rows", "--database", "embedded", "--checks", "stepwise"
    )
    assert r.findings() == [], r.stdout
    cases = {c["revision"]: c["status"] for c in r.check("stepwise")["cases"]}
    assert cases == dict.fromkeys(
        ["a1a1a1a1a1a1", "b2b2b2b2b2b2", "c3c3c3c3c3c3", "d4d4d4d4d4d4", "e5e5e5e5e5e5"], "passed"
    )
    assert r.code == 0


def test_ranges_do_not_overlap_and_multiranges_hold_one(db: Any) -> None:
    # an exclusion constraint against overlaps, as bookings of one room have
    db.execute("""
        CREATE TABLE stays (
            id int PRIMARY KEY, during tstzrange NOT NULL, nights daterange NOT NULL,
            local tsrange NOT NULL, seats int4range NOT NULL, big int8range NOT NULL,
            price numrange NOT NULL, gaps int4multirange NOT NULL,
            EXCLUDE USING gist (during WITH &&), EXCLUDE USING gist (nights WITH &&),
            EXCLUDE USING gist (seats WITH &&), EXCLUDE USING gist (price WITH &&)
        )""")
    assert seed(db).filled == ("stays",)
    empty = "SELECT count(*) FROM stays WHERE isempty(during) OR isempty(range_merge(gaps))"
    assert one(db, empty) == 0


def test_dates_kept_as_text_are_iso_dates_in_order(db: Any) -> None:
    # a legacy schema's dates as text, later cast to date and timestamptz
    db.execute("""
        CREATE TABLE legacy (
            id int PRIMARY KEY, birth_date text NOT NULL, shipped_on varchar(10) NOT NULL,
            created_at varchar(32) NOT NULL, "lastSeenAt" text, start_date text NOT NULL,
            end_date text NOT NULL, CHECK (start_date < end_date)
        )""")
    assert seed(db).filled == ("legacy",)
    casts = """SELECT count(birth_date::date), count(shipped_on::date),
               count(created_at::timestamptz), count("lastSeenAt"::timestamptz),
               count(*) FILTER (WHERE start_date::date < end_date::date) FROM legacy"""
    assert db.execute(casts).fetchone() == (3, 3, 3, 3, 3)


def test_tables_already_looked_at_are_not_looked_at_again(db: Any) -> None:
    # `known` (the fast walk's tables seen before) leaves them out of the catalog read,
    # as many as a long history has
    db.execute("CREATE TABLE a (id int)")
    db.execute("CREATE TABLE b (id int)")
    first = seed(db)
    assert set(first.filled) == {"a", "b"}
    db.execute("CREATE TABLE c (id int)")
    known = {*first.seen, *range(1, 2000)}  # the seen ones among unrelated oids
    again = seed_empty_tables(
        psycopg_query(db), savepoint=db.transaction, failed=(psycopg.Error,), known=known
    )
    assert again.filled == ("c",)
    assert again.seen == frozenset({one(db, "SELECT 'c'::regclass::oid")})
