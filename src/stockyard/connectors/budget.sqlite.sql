-- The budget's clock on SQLite (connectors.budget): every worker's process shares the
-- database file's host, so its clock. 3.40 has no unixepoch('subsec'); julianday('now')
-- counts milliseconds, and a double keeps them (about 50 µs at today's day number).

-- name: clock
-- Now, in seconds since 1970 (UTC), from the database's own clock.
SELECT (julianday('now') - 2440587.5) * 86400.0
