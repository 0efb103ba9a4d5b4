"""The Stockyard agent (`stockyard agent`): a small program next to an ERP behind a
firewall. It reads the ERP's database (or its CSV exports) through a declarative profile,
keeps what changed in a local SQLite outbox and pushes it, signed, to its Stockyard
connection; it long-polls Stockyard for the connection's orders and writes them into the
ERP. Only outgoing connections: Stockyard never reaches in.

Modules: config (the agent's TOML file), profile (the profile loader), records (rows ->
Product / Customer, hashes), read / files (the SQL and CSV-folder sources), outbox (the
state database), client (signed HTTP), send (delivering the outbox), orders (the write
step and the claim/settle loop), run (the loop, logs, `check`).
"""

from stockyard.errors import StockyardError


class AgentError(StockyardError):
    """What the agent reports as one line: a bad config or profile, an unreadable ERP, a
    Stockyard that refuses the credential. Never holds a secret or a password."""


__all__ = ["AgentError"]
