-- The budget's clock on SQLite (connectors.budget): every worker's process shares the
-- database file's host, so its clock. 3.40 has no unixepoch('subsec'); julianday('now')
-- counts whole milliseconds, and a double keeps them (about 50 µs at today's day number).
-- Truncated: an interval may read up to 1 ms short, which a refusal's at-least-a-point
-- retry-after (10 ms at 100 points/s) covers.

-- name: clock
-- Now, in seconds since 1970 (UTC), from the database's own clock.
SELECT (julianday('now') - 2440587.5) * 86400.0
