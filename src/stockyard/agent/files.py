"""The CSV-folder variant: an ERP that exports products.csv, prices.csv, stock.csv and
customers.csv (the names a profile's [files] gives) into a folder. Same column names as
the SQL queries return; no cursors: every row is compared by hash each poll. A file that
is missing reads as no rows, except products.csv (an export that did not run must not
look like an empty catalog).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stockyard.agent import AgentError
from stockyard.agent.profile import Files
from stockyard.agent.records import normalise_columns


class FolderSource:
    def __init__(self, folder: Path, files: Files) -> None:
        if not folder.is_dir():
            raise AgentError(f"[erp] folder {folder} does not exist or is not a folder")
        self.folder = folder
        self.files = files

    def close(self) -> None:
        pass

    def uses_cursor(self, section: str) -> bool:
        return False

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        yield  # files are read whole, one at a time

    def rows(self, section: str, cursor: Any = None) -> list[dict[str, Any]]:
        name: str | None = getattr(self.files, section)
        if name is None:
            return []
        path = self.folder / name
        if not path.exists():
            if section == "products":
                raise AgentError(f"{path}: missing (the ERP's export did not run?)")
            return []
        try:
            with path.open(encoding=self.files.encoding, newline="") as f:
                reader = csv.DictReader(f, delimiter=self.files.delimiter)
                mapping = normalise_columns(section, reader.fieldnames or [], None)
                out = []
                for row in reader:
                    if None in row:
                        raise AgentError(f"{path}: line {reader.line_num} has too many fields")
                    # An empty cell is no value (CSV cannot tell "" from NULL).
                    out.append({mapping[k]: (v if v != "" else None) for k, v in row.items()})
                return out
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise AgentError(f"{path}: cannot read it: {exc}") from None
        except AgentError as exc:
            raise AgentError(f"{path}: {exc}") from None
