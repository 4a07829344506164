"""What PostgreSQL's catalog says: snapshots of a schema, their differences in words,
and synthetic rows for empty tables. Plain SQL over a query callable or a psycopg
connection; nothing here runs the user's code."""
