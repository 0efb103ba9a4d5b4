"""The workers' metrics: counts and latency buckets as Prometheus reads them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from stockyard.engine import Job, Outcome, Queue
from stockyard.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def job(instruction: str, started: float, due: float) -> Job:
    return Job(1, 1, instruction, None, None, "{}", 1, 0, None, started, due)


def test_worker_outcomes_become_counters_and_histograms(queue: Queue) -> None:
    metrics = Metrics(queue)
    metrics.observe(
        [
            Outcome(job("send_email", 100.0, 99.0), "done", 100.004),  # ran 4 ms, waited 1 s
            Outcome(job("send_email", 100.0, 100.0), "transient", 100.3, "503"),
            Outcome(job("add_order", 100.0, 40.0), "done", 112.0),  # ran 12 s, waited 60 s
        ]
    )
    found = samples(metrics)
    done = ("stockyard_items_processed_total", (("instruction", "send_email"), ("outcome", "done")))
    assert found[done] == 1
    run = "stockyard_item_run_seconds_bucket"
    assert found[(run, (("instruction", "send_email"), ("le", "0.005")))] == 1
    assert found[(run, (("instruction", "send_email"), ("le", "0.25")))] == 1
    assert found[(run, (("instruction", "send_email"), ("le", "0.5")))] == 2
    assert found[(run, (("instruction", "add_order"), ("le", "10")))] == 0
    assert found[(run, (("instruction", "add_order"), ("le", "30")))] == 1
    wait = "stockyard_item_wait_seconds_bucket"
    assert found[(wait, (("le", "0.005"),))] == 1  # the item that was due when claimed
    assert found[(wait, (("le", "60"),))] == 3
    assert found[("stockyard_item_wait_seconds_count", ())] == 3
    run_sum = found[("stockyard_item_run_seconds_sum", (("instruction", "add_order"),))]
    assert abs(run_sum - 12) < 1e-6
