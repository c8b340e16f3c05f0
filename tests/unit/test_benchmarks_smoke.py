"""The benchmark code keeps working: a small generated policy loads and one quick run completes.

No timing is asserted: benchmarks are not tests. This only keeps `python -m benchmarks` from
rotting when the engine, the cache or the bundle format change, and pins the arithmetic that
turns noisy rounds into the reported numbers (on synthetic rounds, where it is exact).
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from cachetools import FIFOCache, LRUCache

from benchmarks import inprocess
from benchmarks.budgets import targets_table
from benchmarks.generate import generate_bundle
from benchmarks.inprocess import MISS_ROWS, Settings, run_size, run_sizes
from benchmarks.mix import MIX, DistinctStream, request_mix
from benchmarks.payloads import batch_payload, check_payload, miss_batches, miss_checks
from benchmarks.report import engine_tables, sidecar_tables
from benchmarks.rounds import Cursor, Server, Timing, Workload, measure_cells, round_order
from benchmarks.servers import echo_server
from benchmarks.sidecar import SidecarReport, SidecarSettings
from benchmarks.summary import CellResult, Sample, summarize_pair
from benchmarks.timing import Measurement
from cnm_policy import Engine, load_snapshot
from cnm_policy.v1 import policy_pb2 as pb


def test_generated_bundle_is_valid_and_has_the_requested_size(tmp_path: Path) -> None:
    """100 rules are written, load without problems, and serve the whole request mix."""
    policy = generate_bundle(tmp_path / "bundle", 100)
    snapshot = load_snapshot(policy.path)
    assert (policy.rule_count, snapshot.rule_count) == (100, 100)
    assert policy.role_count == len(snapshot.bundle.roles)
    engine = Engine(snapshot)
    outcomes = Counter(engine.check(*request).allowed for request in request_mix(policy, 200))
    assert outcomes[True] > 0
    assert outcomes[False] > 0


def test_request_mix_shares_add_up() -> None:
    """The mix covers the four kinds of request of the issue, in shares summing to one."""
    assert abs(sum(share for share, _ in MIX) - 1.0) < 1e-9
    assert len(MIX) == 4


def test_one_quick_engine_run_produces_every_row(tmp_path: Path) -> None:
    """A tiny run measures every variant, casbin agrees with the engine, and tables render."""
    settings = Settings(
        requests=40, repeat=1, casbin_budget_s=0.5, casbin_max_calls=10, miss_cache=20
    )
    result = run_size(100, settings, workdir=tmp_path)
    expected = {"uncached", "cached hit", "cachetools hit", *MISS_ROWS, "raw pycasbin"}
    assert expected == set(result.rows_by_name)
    assert (result.casbin_disagreements, result.miss_hits) == (0, 0)
    assert result.rows_by_name["cached miss"].calls == 40  # one round of fresh requests
    assert "miss - uncached (same stream)" in engine_tables([result])
    assert "cached miss - uncached @100 rules" in targets_table([result], None)


def test_the_distinct_stream_never_repeats_a_request(tmp_path: Path) -> None:
    """Successive takes from one stream name resources no earlier request named."""
    policy = generate_bundle(tmp_path / "bundle", 100)
    stream = DistinctStream(policy)
    requests = stream.take(300) + stream.take(300)
    assert len({(r[2].kind, r[2].id, r[0].id, r[1]) for r in requests}) == 600
    assert len({r[2].tenant for r in requests}) > 1


@pytest.mark.parametrize("cache", [FIFOCache, LRUCache])
def test_going_round_a_pool_larger_than_a_cache_never_hits(
    cache: type[FIFOCache[int, int]],
) -> None:
    """The miss streams' guarantee: in-order reuse of a pool larger than a FIFO/LRU cache."""
    store = cache(maxsize=50)
    cursor = Cursor(tuple(bytes([n]) for n in range(60)))
    hits = 0
    for _ in range(500):
        key = cursor.take()[0]
        hits += key in store
        store[key] = key
    assert hits == 0


def test_miss_pools_are_distinct_and_larger_than_cache_and_memo(tmp_path: Path) -> None:
    """Every Check and every batch item of the miss pools differs; the pools outsize both."""
    settings = SidecarSettings(cache_size=30, memo_bound=40, batch_items=7)
    assert settings.miss_pool > max(settings.cache_size, settings.memo_bound)
    policy = generate_bundle(tmp_path / "bundle", 100)
    checks = miss_checks(policy, settings.miss_pool)
    assert len(set(checks)) == len(checks) == settings.miss_pool
    batches = [
        pb.CheckBatchRequest.FromString(b) for b in miss_batches(policy, settings.miss_pool, 7)
    ]
    items = [item.SerializeToString() for batch in batches for item in batch.items]
    assert len(set(items)) == len(items) >= settings.miss_pool


def test_fast_variants_keep_their_best_pass_of_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every size's fast variants are timed `fast_passes` times; the best pass is reported."""
    scripted = [[5.0, 1.0, 3.0], [4.0, 6.0, 2.0]]  # the median of each pass, per size
    sizes: list[int] = []  # rule counts, in the order first timed
    timed: list[int] = []  # which size each call timed

    def fake_fast_rows(bench: inprocess._Bench, settings: Settings) -> dict[str, Measurement]:
        if bench.policy.rule_count not in sizes:
            sizes.append(bench.policy.rule_count)
        size = sizes.index(bench.policy.rule_count)
        median = scripted[size][timed.count(size)]
        timed.append(size)
        return {"cached hit": Measurement("cached hit", median, median, 1.0, 1)}

    monkeypatch.setattr(inprocess, "_fast_rows", fake_fast_rows)
    settings = Settings(
        requests=10, repeat=1, casbin_budget_s=0.1, casbin_max_calls=2, fast_passes=3, miss_cache=5
    )
    results = run_sizes((100, 200), settings, workdir=tmp_path)
    assert timed == [0, 1, 0, 1, 0, 1]  # the later passes take the sizes in turn
    assert [r.rows_by_name["cached hit"].median_us for r in results] == [1.0, 2.0]


def test_sidecar_payloads_are_valid_messages(tmp_path: Path) -> None:
    """The pre-serialized Check and CheckBatch requests parse back into full messages."""
    policy = generate_bundle(tmp_path / "bundle", 100)
    request = request_mix(policy, 1)[0]
    check = pb.CheckRequest.FromString(check_payload(request))
    batch = pb.CheckBatchRequest.FromString(batch_payload(request, 5))
    assert check.principal.id == request[0].id
    assert len(batch.items) == 5


def _sample(per_second: float, cpu_s: float = 0.0, latencies: tuple[float, ...] = (1.0,)) -> Sample:
    """A one-second round with `per_second` calls."""
    return Sample(
        calls=int(per_second),
        elapsed_s=1.0,
        server_cpu_s=cpu_s,
        latencies_us=latencies,
        measured_first=False,
    )


def test_share_of_echo_is_the_median_of_back_to_back_ratios() -> None:
    """Not the ratio of the medians: round 2 is slow on both sides and must not skew it."""
    echo = [_sample(1000), _sample(400), _sample(1000)]
    sidecar = [_sample(900), _sample(200), _sample(500)]
    floor, side = summarize_pair("Check", 16, 1, echo, sidecar)
    assert side.of_echo_rounds == (0.9, 0.5, 0.5)
    assert side.of_echo == 0.5
    assert (floor.of_echo, floor.of_echo_rounds) == (None, ())
    assert (floor.per_second, side.per_second) == (1000, 500)  # the median round of each
    assert (floor.calls, side.calls) == (2400, 1600)


def test_a_disturbed_round_moves_the_median_ratio_little() -> None:
    """One round where only the echo cell was hit: the outlier ratio is outvoted."""
    echo = [_sample(1000), _sample(1000), _sample(250), _sample(1000), _sample(1000)]
    sidecar = [_sample(800), _sample(820), _sample(800), _sample(790), _sample(810)]
    side = summarize_pair("Check", 64, 1, echo, sidecar)[1]
    assert side.of_echo == pytest.approx(0.81)  # of 0.80, 0.82, 3.2, 0.79, 0.81
    assert max(side.of_echo_rounds) == pytest.approx(3.2)  # still shown in the spread


def test_latencies_are_pooled_and_cpu_is_spread_over_every_item() -> None:
    """Median and p99 over all rounds' calls; CPU per item = total CPU / total items."""
    echo = [_sample(100, cpu_s=0.1), _sample(100, cpu_s=0.3)]
    slow = tuple(float(n) for n in range(1, 101))
    fast = tuple(float(n) for n in range(101, 201))
    sidecar = [_sample(100, cpu_s=0.5, latencies=slow), _sample(100, cpu_s=1.5, latencies=fast)]
    floor, side = summarize_pair("CheckBatch", 1, 10, echo, sidecar)
    assert (side.median_us, side.p99_us) == (100.0, 198.0)
    assert side.server_cpu_us == pytest.approx(2.0 / 2000 * 1e6)
    assert floor.server_cpu_us == pytest.approx(0.4 / 2000 * 1e6)
    assert [r.p99_us for r in side.rounds] == [99.0, 199.0]  # each round's own


def test_cpu_of_echo_is_the_median_of_per_round_cpu_per_call_ratios() -> None:
    """Per round: (sidecar CPU / its calls) / (echo CPU / its calls); the median is reported."""
    echo = [_sample(100, cpu_s=0.1), _sample(200, cpu_s=0.1), _sample(100, cpu_s=0.1)]
    sidecar = [_sample(100, cpu_s=0.15), _sample(100, cpu_s=0.2), _sample(50, cpu_s=0.1)]
    side = summarize_pair("Check", 16, 1, echo, sidecar, "misses")[1]
    assert side.cpu_of_echo_rounds == pytest.approx((1.5, 4.0, 2.0))
    assert side.cpu_of_echo == pytest.approx(2.0)
    assert side.stream == "misses"


def test_rounds_must_pair_up() -> None:
    """A ratio is only meaningful between two cells of the same round."""
    with pytest.raises(ValueError, match="zip"):
        summarize_pair("Check", 1, 1, [_sample(1), _sample(1)], [_sample(1)])


def test_the_order_alternates_between_rounds() -> None:
    """Echo then sidecar, sidecar then echo: whichever goes second changes each round."""
    echo, sidecar = Server("echo", 1, "a"), Server("sidecar", 2, "b")
    assert [round_order(i, echo, sidecar)[0].name for i in range(4)] == [
        "echo",
        "sidecar",
        "echo",
        "sidecar",
    ]


@pytest.fixture
def two_echo_servers() -> Iterator[tuple[Server, Server]]:
    """Two in-process echo servers standing in for the echo server and the sidecar."""
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    servers = [echo_server(port, workers=2) for port in ports]
    try:
        yield (
            Server("echo", os.getpid(), f"127.0.0.1:{ports[0]}"),
            Server("sidecar", os.getpid(), f"127.0.0.1:{ports[1]}"),
        )
    finally:
        for server in servers:
            server.stop(0)


def test_measured_rounds_render_in_the_tables_and_json(
    two_echo_servers: tuple[Server, Server],
) -> None:
    """Two tiny rounds over real gRPC: every cell has both rounds, in alternating order."""
    echo, sidecar = two_echo_servers
    settings = SidecarSettings(seconds=0.05, warmup_s=0.02, rounds=2, in_flight=(1, 16))
    workloads = (
        Workload("Check", (b"check",)),
        Workload("CheckBatch", (b"batch",), 3),
        Workload("Check", tuple(b"miss%d" % n for n in range(50)), stream="misses"),
    )
    rounds_started: list[int] = []
    cells = measure_cells(
        echo, sidecar, workloads, settings.timing, lambda: rounds_started.append(1)
    )
    assert len(rounds_started) == 2
    assert [(c.stream, c.rpc, c.in_flight, c.server) for c in cells] == [
        (stream, rpc, in_flight, server)
        for stream, rpc in (("hits", "Check"), ("hits", "CheckBatch"), ("misses", "Check"))
        for in_flight in (1, 16)
        for server in ("echo", "sidecar")
    ]
    for cell in cells:
        assert [r.measured_first for r in cell.rounds] == (
            [True, False] if cell.server == "echo" else [False, True]
        )
        assert cell.calls == sum(r.calls for r in cell.rounds) > 0
    report = _report(cells, settings)
    sidecar_rows = [c for c in cells if c.server == "sidecar"]
    assert all(c.of_echo is not None and len(c.of_echo_rounds) == 2 for c in sidecar_rows)
    assert "CPU of echo, rounds" in sidecar_tables(report)
    assert "sidecar Check misses, server CPU of echo, 16 in flight" in targets_table([], report)
    raw = json.loads(json.dumps(asdict(report)))
    assert len(raw["cells"][1]["rounds"]) == 2
    assert "latencies_us" not in raw["cells"][1]["rounds"][0]


def test_the_cursor_goes_round_in_order_across_cells() -> None:
    """A cell continues where the last one stopped, so no payload repeats before the pool ends."""
    cursor = Cursor((b"a", b"b", b"c"))
    first, second = [cursor.take() for _ in range(2)], [cursor.take() for _ in range(3)]
    assert first + second == [b"a", b"b", b"c", b"a", b"b"]


def test_the_timing_comes_from_the_settings() -> None:
    """Quick settings keep every in-flight level and a smaller cache."""
    quick = SidecarSettings.quick()
    assert quick.timing == Timing(quick.warmup_s, quick.seconds, quick.rounds, (1, 16, 64))
    assert quick.cache_size < SidecarSettings().cache_size


def _report(cells: tuple[CellResult, ...], settings: SidecarSettings) -> SidecarReport:
    return SidecarReport(
        rules=100,
        settings=settings,
        cells=cells,
        startup_s=1.0,
        rss_loaded_mb=50.0,
        rss_full_mb=60.0,
        cache_size=10,
        cache_hits=5,
        cache_misses=5,
        payloads_s=0.1,
    )
