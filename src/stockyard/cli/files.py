"""Item files for `enqueue --file`: a JSON array or JSON Lines, read and checked whole
(JSON, fields, instruction, connection and lane) before any item is enqueued; an error
names the file's line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockyard import strict_json
from stockyard.cli import output
from stockyard.cli.errors import is_database_error
from stockyard.engine import Request
from stockyard.errors import InvalidInput, StockyardError

if TYPE_CHECKING:
    from stockyard.accounts import Principal
    from stockyard.service import Stockyard

_WHITESPACE = re.compile(r"\s*")
_FIELDS = {"instruction", "payload", "connection", "refs", "key", "parent"}


class _FileError(InvalidInput):
    """A line of an item file that cannot be enqueued; nothing of the file was."""

    def __init__(self, name: str, line: int, problem: str) -> None:
        super().__init__(f"{name} line {line}: {problem}; nothing was enqueued")


def _records(path: Path) -> tuple[str, list[tuple[int, Any]]]:
    """The file's name for messages, and its records with the line each starts on: a JSON
    array, or JSON Lines (one object per line)."""
    name = "stdin" if str(path) == "-" else str(path)
    if name != "stdin" and not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    try:
        text = sys.stdin.read() if name == "stdin" else path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name} is not UTF-8 text: {exc.reason}") from None
    if text.lstrip().startswith("["):
        return name, _json_array(text, name)
    return name, _json_lines(text, name)


def _parse(text: str, name: str, line: int) -> Any:
    try:
        return strict_json.loads(text)
    except strict_json.Refused as exc:
        raise _FileError(name, line, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise _FileError(name, line + exc.lineno - 1, _json_problem(exc)) from None


def _json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def _json_lines(text: str, name: str) -> list[tuple[int, Any]]:
    # Split on newlines only, as editors and `wc -l` count lines (str.splitlines also
    # breaks at form feeds and U+2028, which JSON strings may hold).
    return [
        (n, _parse(line, name, n)) for n, line in enumerate(text.split("\n"), 1) if line.strip()
    ]


def _json_array(text: str, name: str) -> list[tuple[int, Any]]:
    """Element by element, to know the line each starts on."""
    decoder = json.JSONDecoder()
    records: list[tuple[int, Any]] = []
    line, counted = 1, 0

    def line_at(pos: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return line

    def skip(pos: int) -> int:
        match = _WHITESPACE.match(text, pos)
        return match.end() if match else pos

    pos = skip(text.index("[") + 1)
    while not text.startswith("]", pos):
        start = pos
        try:
            record, pos = decoder.raw_decode(text, start)
            strict_json.check(text[start:pos])
        except strict_json.Refused as exc:
            raise _FileError(name, line_at(start), str(exc)) from None
        except json.JSONDecodeError as exc:
            raise _FileError(name, exc.lineno, _json_problem(exc)) from None
        records.append((line_at(start), record))
        pos = skip(pos)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif not text.startswith("]", pos):
            raise _FileError(name, line_at(pos), "not valid JSON: expected ',' or ']'")
    if text[pos + 1 :].strip():
        raise _FileError(name, line_at(skip(pos + 1)), "not valid JSON: text after the ']'")
    return records


def _request(record: Any) -> Request:
    if not isinstance(record, dict) or "instruction" not in record:
        raise InvalidInput("an item must be an object with an 'instruction'")
    unknown = set(record) - _FIELDS
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}")
    refs = record.get("refs", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InvalidInput("refs must be a list of strings")
    payload = record.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object")
    for field in ("connection", "parent"):
        value = record.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidInput(f"{field} must be a number")
    if record.get("key") is not None and not isinstance(record["key"], str):
        raise InvalidInput("key must be a string")
    return Request(
        instruction=str(record["instruction"]),
        payload=payload,
        connection_id=record.get("connection"),
        refs=tuple(refs),
        idempotency_key=record.get("key"),
        parent_id=record.get("parent"),
    )


def _file_requests(
    path: Path, service: Stockyard, who: Principal, client_id: int
) -> tuple[str, list[tuple[int, Request]]]:
    """Every item of the file, read and checked whole before any is enqueued."""
    name, records = _records(path)
    requests: list[tuple[int, Request]] = []
    checked: set[tuple[str, int | None]] = set()
    for line, record in records:
        try:
            req = _request(record)
            if (req.instruction, req.connection_id) not in checked:
                service.check_request(who, client_id, req)
                checked.add((req.instruction, req.connection_id))
        except StockyardError as exc:
            raise _FileError(name, line, str(exc)) from None
        requests.append((line, req))
    return name, requests


def enqueue_file(path: Path, batch: int, service: Stockyard, who: Principal, client_id: int) -> int:
    """Checked whole first; then enqueued `batch` items per transaction. Should a batch
    still fail (the database went away, a connection was disabled meanwhile), the error
    says which lines were committed, so that a rerun does not repeat them."""
    name, requests = _file_requests(path, service, who, client_id)
    total, last = 0, 0
    from rich.progress import Progress

    with Progress(console=output.out, transient=True) as progress:
        task = progress.add_task("enqueueing", total=len(requests))
        for start in range(0, len(requests), batch):
            chunk = requests[start : start + batch]
            try:
                total += len(service.enqueue(who, client_id, [r for _, r in chunk]))
            except StockyardError as exc:
                raise _stopped(name, chunk[0][0], last, total, exc) from None
            except Exception as exc:
                if not is_database_error(exc):
                    raise
                raise _stopped(name, chunk[0][0], last, total, exc) from None
            last = chunk[-1][0]
            progress.advance(task, len(chunk))
    return total


def _stopped(name: str, line: int, last: int, total: int, exc: Exception) -> InvalidInput:
    done = (
        f"lines 1 to {last} were enqueued ({total} items), none after: rerun with the lines"
        f" after {last} only"
        if last
        else "nothing was enqueued"
    )
    return InvalidInput(f"{name} line {line} and after: {exc}; {done}")
