"""Coalescing (stale updates): a newer item with the same key in the same lane
supersedes the queued older ones, on both backends."""

from __future__ import annotations

from stockyard.engine import Queue, Request
from tests.support.lanes import Recorder, channel, status
from tests.support.queues import drain


def _update(lane: int, sku: str, n: int) -> Request:
    return Request("update_variant", {"n": n}, lane, (sku,), coalesce_key=f"variant:{sku}")


def test_newer_update_supersedes_queued_older_ones(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    other = channel(queue, client_id, "Other shop")
    first = queue.enqueue(client_id, [_update(lane, "A", n) for n in range(5)])
    # One batch holding several updates keeps only its last; another lane is untouched.
    second = queue.enqueue(client_id, [_update(lane, "A", 5), _update(lane, "B", 0)])
    elsewhere = queue.enqueue(client_id, [_update(other, "A", 0)])
    # Within the first batch the last update replaced the others; the second batch then
    # replaced it: each points to the item that replaced it.
    for item_id in first:
        item = queue.get(client_id, item_id)
        assert item.status == "superseded" and item.finished_at is not None
        assert item.superseded_by == (first[-1] if item_id != first[-1] else second[0])
    assert status(queue, client_id, second[0]) == "queued"
    assert status(queue, client_id, second[1]) == "queued"
    assert status(queue, client_id, elsewhere[0]) == "queued"
    view = {lane_view.lane_id: lane_view for lane_view in queue.lanes(client_id)}
    assert (view[lane].pending, view[lane].head_id) == (2, second[0])

    rec = Recorder()
    drain(queue, rec.registry())
    assert rec.order(lane) == second
    assert [status(queue, client_id, i) for i in second] == ["done", "done"]


def test_running_and_failed_items_are_never_superseded(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    failing = Request(
        "update_variant", {"fail": "permanent"}, lane, ("A",), coalesce_key="variant:A"
    )
    (failed,) = queue.enqueue(client_id, [failing])
    drain(queue, Recorder().registry())
    assert status(queue, client_id, failed) == "failed"

    newer = queue.enqueue(client_id, [_update(lane, "A", 1)])
    newest = queue.enqueue(client_id, [_update(lane, "A", 2)])
    # The failed head still blocks the lane (an operator decides), and a retry keeps its place.
    assert status(queue, client_id, failed) == "failed"
    assert status(queue, client_id, newer[0]) == "superseded"
    lane_view = next(v for v in queue.lanes(client_id) if v.lane_id == lane)
    assert (lane_view.state, lane_view.head_id, lane_view.pending) == ("blocked", failed, 2)

    queue.skip(client_id, [failed], "tester")
    rec = Recorder()
    drain(queue, rec.registry())
    assert rec.order(lane) == newest


def test_items_without_a_key_or_lane_are_not_coalesced(queue: Queue, client_id: int) -> None:
    lane = channel(queue, client_id)
    plain = queue.enqueue(client_id, [Request("update_variant", {}, lane) for _ in range(3)])
    free = queue.enqueue(
        client_id, [Request("sync_order", {}, coalesce_key="mail") for _ in range(3)]
    )
    assert all(status(queue, client_id, i) == "queued" for i in plain + free)
