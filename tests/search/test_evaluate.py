"""Post-hoc scoring against the things it stands in for.

The key test: a candidate scored from cached logits must agree with a direct forward pass
of the same trained network over the test samples, with the exit policy applied sample
by sample. The cost mixture is checked on a hand-built cost table with round numbers
(every path rule of evaluate.py's docstring), and on the real table of the trained net.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import only, spec, toy_scorer, toy_table

from dse.costmodel.costs import CostTable
from dse.nets.cache import Cache
from dse.nets.exits import confidence
from dse.search.evaluate import Scorer
from dse.search.explorer import Explorer
from dse.search.space import Candidate
from dse.search.spec import parse_spec

SPEC = spec("evaluate-tiny", objectives=only({"accuracy": "maximize", "latency_mean": "minimize"}))


@pytest.fixture(scope="module")
def explorer(shared_cache: Path) -> Explorer:
    return Explorer(parse_spec(SPEC), cache=Cache(shared_cache), progress=False)


pytestmark = pytest.mark.usefixtures("study_folder")


# --------------------------------------------------------------------------------------
# the key test: cached logits + exit policy == a direct forward pass
# --------------------------------------------------------------------------------------


def _direct(explorer: Explorer, cand: Candidate, split: str) -> dict[str, object]:
    """Run the trained network on ``split`` and apply the exit policy one sample at a time."""
    scorer = explorer.scorer(cand.method, cand.density)
    table = scorer.table
    net = scorer.trained.network()
    data = getattr(explorer.data, split)
    labels = data.y[scorer.trained.spec.task_name]
    with torch.no_grad():
        outputs = net(data.x)
    assert len(outputs) == len(table.exit_position) + 1  # every exit head, then the final
    used = sorted(cand.exits, key=lambda j: table.exit_position[j])
    conf = [confidence(outputs[j], cand.criterion) for j in used]
    k = cand.split
    counts = np.zeros(len(used) + 1)
    right = 0
    sent = 0.0
    latencies = []
    energies = []
    for i in range(len(labels)):
        path = next((p for p, c in enumerate(conf) if float(c[i]) >= cand.threshold), len(used))
        counts[path] += 1
        output = outputs[used[path]] if path < len(used) else outputs[-1]
        right += int(output[i].argmax() == labels[i])
        lat, energy, nbytes = _path_cost(table, k, used, path)
        latencies.append(lat)
        energies.append(energy)
        sent += nbytes
    n = len(labels)
    return {
        "rates": tuple(counts / n),
        "accuracy": right / n,
        "bandwidth": sent / n,
        "latency_mean": float(np.mean(latencies)),
        "latency_p95": float(np.percentile(latencies, 95, method="inverted_cdf")),
        "edge_energy": float(np.mean(energies)),
    }


def _path_cost(t: CostTable, k: int, used: list[int], path: int) -> tuple[float, float, float]:
    """Latency, edge energy and bytes of one path, written from the docstring's rules."""
    pos = t.exit_position
    edge_heads = [j for j in used if pos[j] <= k]
    server_heads = [j for j in used if pos[j] > k]
    if path < len(used) and pos[used[path]] <= k:  # an edge exit: nothing is sent
        j = used[path]
        before = edge_heads[: edge_heads.index(j) + 1]  # the edge heads run so far
        lat = t.edge_s[pos[j]] + sum(t.exit_edge_s[h] for h in before)
        energy = t.edge_compute_j[pos[j]] + sum(t.exit_edge_j[h] for h in before)
        return float(lat), float(energy), 0.0
    edge = t.edge_s[k] + sum(t.exit_edge_s[h] for h in edge_heads)
    energy = (
        t.edge_compute_j[k]
        + sum(t.exit_edge_j[h] for h in edge_heads)
        + t.radio_up_j[k]
        + t.radio_down_j[k]
        + t.radio_tail_j[k]
    )
    if path < len(used):  # a server exit: backbone k..site, server heads up to it
        j = used[path]
        heads = server_heads[: server_heads.index(j) + 1]
        server = t.server_s[k] - t.server_s[pos[j]] + sum(t.exit_server_s[h] for h in heads)
    else:
        server = t.server_s[k] + sum(t.exit_server_s[h] for h in server_heads)
    energy += t.edge.idle_power_w * (t.transfer_s[k] + server)  # waiting for the answer
    if t.cut_bytes[k] > 0:  # the radio, connected while it waits
        energy += t.link.connected_power_w * (t.link.rtt_s + server)
    return float(edge + t.transfer_s[k] + server), float(energy), float(t.cut_bytes[k])


CANDIDATES = [
    # exit 0 (site position 3) on the edge, exit 1 (position 5) on the server
    Candidate("dense", 1.0, 4, (0, 1), 0.4),
    # both exits on the server, entropy criterion
    Candidate("dense", 1.0, 2, (0, 1), 0.2, "entropy"),
    # edge-only cut: nothing is ever sent
    Candidate("dense", 1.0, 6, (1,), 0.45),
    # an exit at exactly the cut runs on the edge
    Candidate("dense", 1.0, 3, (0,), 0.35),
    # no exit
    Candidate("dense", 1.0, 3, (), 0.5),
    # the sparse network, both exits on the edge
    Candidate("predefined", 0.5, 5, (0, 1), 0.4),
]


@pytest.mark.parametrize(
    "cand",
    CANDIDATES,
    ids=lambda c: f"d{c.density}-k{c.split}-e{c.exits}-t{c.threshold}-{c.criterion}",
)
def test_post_hoc_scoring_agrees_with_a_direct_forward_pass(
    explorer: Explorer, cand: Candidate
) -> None:
    m = explorer.evaluate(cand)
    test = _direct(explorer, cand, "test")
    assert m.test_exit_rates == pytest.approx(test["rates"], abs=1e-12)
    assert m.test_accuracy == pytest.approx(test["accuracy"], abs=1e-12)
    assert m.test_bandwidth == pytest.approx(test["bandwidth"], rel=1e-9)
    assert m.test_latency_mean == pytest.approx(test["latency_mean"], rel=1e-9)
    assert m.test_latency_p95 == pytest.approx(test["latency_p95"], rel=1e-9)
    assert m.test_edge_energy == pytest.approx(test["edge_energy"], rel=1e-9)
    val = _direct(explorer, cand, "val")  # selection uses the validation split
    assert m.exit_rates == pytest.approx(val["rates"], abs=1e-12)
    assert m.accuracy == pytest.approx(val["accuracy"], abs=1e-12)
    assert m.bandwidth == pytest.approx(val["bandwidth"], rel=1e-9)
    assert m.latency_mean == pytest.approx(val["latency_mean"], rel=1e-9)
    assert m.edge_energy == pytest.approx(val["edge_energy"], rel=1e-9)
    if cand.split == 6:
        assert m.bandwidth == m.test_bandwidth == 0.0 and m.transfer_s == 0.0


def test_the_candidates_take_every_kind_of_path(explorer: Explorer) -> None:
    """Guard for the test above: its main candidates are not degenerate (everyone at the
    final classifier would make the exit policy untested)."""
    m = explorer.evaluate(CANDIDATES[0])
    assert all(0.01 < r < 0.9 for r in m.test_exit_rates), m.test_exit_rates
    assert 0 < m.test_bandwidth < explorer.scorer("dense", 1.0).table.cut_bytes[4]
    m = explorer.evaluate(CANDIDATES[1])
    assert all(r > 0.01 for r in m.test_exit_rates), m.test_exit_rates
    m = explorer.evaluate(CANDIDATES[5])
    assert all(r > 0.01 for r in m.test_exit_rates), m.test_exit_rates


def test_cached_logits_are_the_networks_own(explorer: Explorer) -> None:
    trained = explorer.scorer("predefined", 0.5).trained
    with torch.no_grad():
        out = trained.network()(explorer.data.test.x)
    torch.testing.assert_close(torch.stack(list(out)), trained.test_logits[0])


def test_memory_and_storage_count_the_heads_where_they_run(explorer: Explorer) -> None:
    scorer = explorer.scorer("dense", 1.0)
    t = scorer.table
    m = explorer.evaluate(Candidate("dense", 1.0, 4, (0, 1), 0.4))
    # exit 0 runs on the edge (its weights count), exit 1 on the server (they do not)
    assert (
        m.edge_memory
        == t.edge_weight_bytes[4] + t.edge_peak_activation_bytes[4] + t.exit_weight_bytes[0]
    )
    assert m.storage == scorer.storage_backbone + scorer.storage_exits.sum()
    m = explorer.evaluate(Candidate("dense", 1.0, 4, (), 0.4))
    assert m.edge_memory == t.edge_memory_bytes[4] and m.storage == scorer.storage_backbone
    # The sparse network stores fewer bytes. The edge (no sparse kernels) holds them
    # compressed and expands one layer at a time before running it, so its memory also
    # holds the largest expanded layer: here more than it saves (it used to count only
    # the compressed weights while latency read dense ones).
    sparse_scorer = explorer.scorer("predefined", 0.5)
    st = sparse_scorer.table
    sparse = explorer.evaluate(Candidate("predefined", 0.5, 4, (), 0.4))
    assert sparse.storage < m.storage
    assert st.edge_weight_bytes[4] < t.edge_weight_bytes[4]
    largest = max(n.weight_bytes for n in sparse_scorer.graph.backbone_nodes()[:4] if n.density < 1)
    assert st.edge_expand_bytes[4] == largest > 0
    assert sparse.edge_memory == (
        st.edge_weight_bytes[4] + largest + st.edge_peak_activation_bytes[4]
    )


# --------------------------------------------------------------------------------------
# the cost mixture on a hand-built table with round numbers
# --------------------------------------------------------------------------------------


def _scorer(
    val_conf: np.ndarray,
    test_conf: np.ndarray,
    correct: np.ndarray,
    idle_w: float = 0.0,
    connected_w: float = 0.0,
) -> Scorer:
    """A scorer on the toy table (exits at positions 1 and 3)."""
    table = toy_table(idle_w=idle_w, connected_w=connected_w)
    return toy_scorer(table, val_conf, correct, test_conf=test_conf)


def _ten_samples(idle_w: float = 0.0, connected_w: float = 0.0) -> Scorer:
    """Validation: samples 0-2 pass exit 0, 3-6 pass exit 1 only, 7-9 pass neither.
    Right answers: exit 0 on 0, 1; exit 1 on 3, 4, 5; the final on 7, 8.
    Test: every sample passes exit 0 (so test numbers differ from validation ones)."""
    conf = np.full((3, 10), 0.1)
    conf[0, :3] = 0.9
    conf[1, 3:7] = 0.85
    conf[1, :3] = 0.2
    test = np.full((3, 10), 0.95)
    correct = np.zeros((3, 10), dtype=bool)
    correct[0, [0, 1]] = True
    correct[1, [3, 4, 5]] = True
    correct[2, [7, 8]] = True
    return _scorer(conf, test, correct, idle_w, connected_w)


def test_the_edge_idles_while_the_link_and_the_server_work() -> None:
    busy = _ten_samples(0.0).score(Candidate("dense", 1.0, 2, (0, 1), 0.8))
    m = _ten_samples(0.5).score(Candidate("dense", 1.0, 2, (0, 1), 0.8))
    # exit 0 stays on the edge (no wait); exit 1 waits transfer 30 + server 0.325 s,
    # the final transfer 30 + server 0.725 s; each at 0.5 W
    idle = 0.4 * 0.5 * (30.0 + 0.325) + 0.3 * 0.5 * (30.0 + 0.725)
    assert m.idle_energy == pytest.approx(idle)
    assert m.edge_energy == pytest.approx(busy.edge_energy + idle)
    assert m.compute_energy == busy.compute_energy and m.radio_energy == busy.radio_energy
    assert m.latency_mean == busy.latency_mean


def test_the_radio_stays_connected_through_the_rtt_and_the_server() -> None:
    quiet = _ten_samples().score(Candidate("dense", 1.0, 2, (0, 1), 0.8))
    m = _ten_samples(connected_w=2.0).score(Candidate("dense", 1.0, 2, (0, 1), 0.8))
    # exit 1 waits the 5 s RTT + its server path 0.325 s, the final 5 + 0.725 s, at 2 W;
    # exit 0 stays on the edge and its radio does nothing
    wait = 0.4 * 2.0 * (5.0 + 0.325) + 0.3 * 2.0 * (5.0 + 0.725)
    assert m.radio_wait_energy == pytest.approx(wait)
    assert quiet.radio_wait_energy == 0.0
    assert m.radio_energy == pytest.approx(quiet.radio_energy + wait)
    assert m.edge_energy == pytest.approx(quiet.edge_energy + wait)
    # the parts: 7 of 10 samples send at cut 2 (up 3.0, down 0.5, tail 1.0)
    assert (m.radio_up_energy, m.radio_down_energy, m.radio_tail_energy) == pytest.approx(
        (0.7 * 3.0, 0.7 * 0.5, 0.7 * 1.0)
    )
    assert m.radio_energy == pytest.approx(
        m.radio_up_energy + m.radio_down_energy + m.radio_wait_energy + m.radio_tail_energy
    )


def test_threshold_zero_deploys_only_up_to_the_first_used_exit() -> None:
    """Every sample leaves at exit 0 (position 1): layers after it never run, so neither
    they nor exit 1's head are stored or held on the edge, at any cut past the exit."""
    for cut in (1, 2, 4):
        m = _ten_samples().score(Candidate("dense", 1.0, cut, (0, 1), 0.0))
        assert m.exit_rates == pytest.approx((1.0, 0.0, 0.0))
        # backbone [:1] (10 B) + head 0 (7 B); activations: max(backbone 8, head alone 3)
        assert m.storage == pytest.approx(10.0 + 7.0)
        assert m.edge_memory == pytest.approx(10.0 + 7.0 + 8.0)
        assert m.bandwidth == 0.0
    # the exit after the cut: the edge part is the plain cut; the server stops at the exit
    m = _ten_samples().score(Candidate("dense", 1.0, 0, (0, 1), 0.0))
    assert m.storage == pytest.approx(17.0) and m.edge_memory == 0.0
    # any threshold above 0 may send a sample on: the whole network is deployed
    m = _ten_samples().score(Candidate("dense", 1.0, 2, (0, 1), 0.05))
    assert m.storage == pytest.approx(1000.0 + 30.0 + 20.0)


def test_a_threshold_every_output_passes_deploys_like_threshold_zero() -> None:
    """The max softmax probability of 10 classes is never below 0.1: at threshold 0.05 every
    sample leaves at the first exit, as at 0, and only that much is deployed. At 0.1 a
    uniform output could round below it (not certain), and the entropy criterion can be 0."""
    ten = replace(_ten_samples(), classes=10)
    zero = ten.score(Candidate("dense", 1.0, 2, (0, 1), 0.0))
    low = ten.score(Candidate("dense", 1.0, 2, (0, 1), 0.05))
    assert (low.storage, low.edge_memory) == (zero.storage, zero.edge_memory) == (17.0, 25.0)
    for cand in (
        Candidate("dense", 1.0, 2, (0, 1), 0.1),
        Candidate("dense", 1.0, 2, (0, 1), 0.05, "entropy"),
    ):
        assert not ten.always_exits(cand)
    assert ten.score(Candidate("dense", 1.0, 2, (0, 1), 0.1)).storage == 1050.0
    # with the class count unknown, only threshold 0 is certain
    assert not _ten_samples().always_exits(Candidate("dense", 1.0, 2, (0, 1), 0.05))


def test_a_heads_activations_count_when_they_exceed_the_backbones() -> None:
    t = toy_table()
    big = replace(t, exit_activation_bytes=np.array([40.0, 6.0]))
    sc = toy_scorer(big, np.full((3, 10), 0.1), np.ones((3, 10), bool))
    # weights [:2] 30 + head 0's 7, activations max(backbone 8, head 0 running 40)
    assert sc.score(Candidate("dense", 1.0, 2, (0,), 0.8)).edge_memory == pytest.approx(77.0)
    assert sc.score(Candidate("dense", 1.0, 2, (), 0.8)).edge_memory == pytest.approx(38.0)


def test_hand_built_table_exit_on_edge_and_exit_after_the_cut() -> None:
    m = _ten_samples().score(Candidate("dense", 1.0, 2, (0, 1), 0.8))
    # rates: 3 leave at exit 0, 4 at exit 1, 3 reach the final classifier
    assert m.exit_rates == pytest.approx((0.3, 0.4, 0.3))
    assert m.accuracy == pytest.approx(0.7)  # (2 + 3 + 2) / 10
    # exit 0 (position 1 <= cut 2) on the edge: edge_s[1] + head 0 on the edge
    fast = 1.0 + 0.5
    # exit 1 (position 3 > cut 2) on the server: edge_s[2] + edge head 0, transfer at cut 2,
    # server backbone from cut 2 to position 3 (0.7 - 0.4), server head 1
    mid = (3.0 + 0.5) + 30.0 + (0.7 - 0.4) + 0.025
    # final: the same edge part and transfer, server_s[2], server head 1
    slow = (3.0 + 0.5) + 30.0 + 0.7 + 0.025
    assert m.latency_mean == pytest.approx(0.3 * fast + 0.4 * mid + 0.3 * slow)
    assert m.latency_mean == pytest.approx(24.2475)
    assert m.latency_p95 == pytest.approx(slow)
    assert m.edge_s == pytest.approx(0.3 * 1.5 + 0.7 * 3.5)
    assert m.transfer_s == pytest.approx(0.7 * 30.0)
    assert m.server_s == pytest.approx(0.4 * (0.3 + 0.025) + 0.3 * (0.7 + 0.025))
    # only the 7 samples that pass the cut send its 60 bytes
    assert m.bandwidth == pytest.approx(0.7 * 60.0)
    # energy: exit 0 path 2 + 1; the others 6 + 1 (edge head) + 4.5 radio
    assert m.compute_energy == pytest.approx(0.3 * 3.0 + 0.7 * 7.0)
    assert m.radio_energy == pytest.approx(0.7 * 4.5)
    assert m.edge_energy == pytest.approx(0.3 * 3.0 + 0.7 * 11.5)
    # memory: backbone [:2] weights + peak activations + the edge head's weights only
    assert m.edge_memory == pytest.approx(30.0 + 8.0 + 7.0)
    assert m.storage == pytest.approx(1000.0 + 30.0 + 20.0)
    # the test split is scored on its own confidences: everyone leaves at exit 0
    assert m.test_exit_rates == pytest.approx((1.0, 0.0, 0.0))
    assert m.test_accuracy == pytest.approx(0.2)
    assert m.test_latency_mean == pytest.approx(fast) and m.test_latency_p95 == fast
    assert m.test_bandwidth == 0.0 and m.test_edge_energy == pytest.approx(3.0)


def test_hand_built_table_edge_only_cut_sends_nothing() -> None:
    m = _ten_samples().score(Candidate("dense", 1.0, 4, (0, 1), 0.8))
    paths = [1.0 + 0.5, 6.0 + 0.5 + 0.25, 10.0 + 0.5 + 0.25]
    assert m.latency_mean == pytest.approx(0.3 * paths[0] + 0.4 * paths[1] + 0.3 * paths[2])
    assert m.latency_p95 == pytest.approx(paths[2])
    assert m.bandwidth == 0.0 and m.transfer_s == 0.0 and m.server_s == 0.0
    assert m.radio_energy == 0.0
    assert m.edge_energy == pytest.approx(0.3 * 3.0 + 0.4 * (12.0 + 1.5) + 0.3 * (20.0 + 1.5))
    assert m.edge_memory == pytest.approx(100.0 + 16.0 + 7.0 + 3.0)


def test_hand_built_table_exit_at_the_cut_runs_on_the_edge() -> None:
    m = _ten_samples().score(Candidate("dense", 1.0, 3, (0, 1), 0.8))
    # exit 1 sits at position 3 == cut 3: on the edge, sends nothing
    exit1 = 6.0 + 0.5 + 0.25
    final = 6.0 + 0.5 + 0.25 + 10.0 + 0.4  # no server head left
    assert m.latency_mean == pytest.approx(0.3 * 1.5 + 0.4 * exit1 + 0.3 * final)
    assert m.bandwidth == pytest.approx(0.3 * 20.0)
    assert m.edge_memory == pytest.approx(60.0 + 16.0 + 7.0 + 3.0)


def test_hand_built_table_server_only_cut_with_a_server_exit() -> None:
    m = _ten_samples().score(Candidate("dense", 1.0, 0, (0,), 0.8))
    exit0 = 0.0 + 50.0 + (1.0 - 0.9) + 0.05
    final = 0.0 + 50.0 + 1.0 + 0.05
    assert m.exit_rates == pytest.approx((0.3, 0.7))
    assert m.latency_mean == pytest.approx(0.3 * exit0 + 0.7 * final)
    assert m.latency_p95 == pytest.approx(final)
    assert m.bandwidth == pytest.approx(100.0)  # every sample sends the input
    assert m.edge_energy == pytest.approx(5.0) and m.compute_energy == 0.0
    assert m.edge_memory == 0.0  # nothing runs on the edge


def test_hand_built_table_no_exit_is_the_plain_partition() -> None:
    m = _ten_samples().score(Candidate("dense", 1.0, 2, (), 0.8))
    t = toy_table()
    assert m.exit_rates == (1.0,)
    assert m.latency_mean == m.latency_p95 == pytest.approx(t.total_s[2]) == 33.7
    assert m.bandwidth == 60.0 and m.accuracy == pytest.approx(0.2)
    assert m.edge_memory == pytest.approx(t.edge_memory_bytes[2])


@pytest.mark.parametrize(
    ("fast_share", "p95_is_fast"), [(18, False), (19, True), (20, True), (0, False)]
)
def test_p95_of_a_two_path_mixture(fast_share: int, p95_is_fast: bool) -> None:
    """Of 20 samples, ``fast_share`` leave at the edge exit (1.5 s), the rest take the
    final path (34.2 s). 90% fast: the 95th percentile falls in the slow mass; 95% fast:
    the fast path already covers 95% of the samples."""
    conf = np.full((3, 20), 0.1)
    conf[0, :fast_share] = 0.9
    correct = np.ones((3, 20), dtype=bool)
    m = _scorer(conf, conf, correct).score(Candidate("dense", 1.0, 2, (0,), 0.8))
    fast, slow = 1.0 + 0.5, 3.0 + 0.5 + 30.0 + 0.7
    assert m.exit_rates == pytest.approx((fast_share / 20, 1 - fast_share / 20))
    assert m.latency_p95 == pytest.approx(fast if p95_is_fast else slow)
    assert m.latency_mean == pytest.approx((fast_share * fast + (20 - fast_share) * slow) / 20)


def test_a_confidence_equal_to_the_threshold_leaves() -> None:
    """The rule is confidence >= threshold (a threshold of 1.0 still lets certain samples
    out)."""
    conf = np.full((3, 4), 0.5)
    conf[0, :2] = [0.75, 1.0]
    correct = np.ones((3, 4), dtype=bool)
    scorer = _scorer(conf, conf, correct)
    assert scorer.score(Candidate("dense", 1.0, 2, (0,), 0.75)).exit_rates == (0.5, 0.5)
    assert scorer.score(Candidate("dense", 1.0, 2, (0,), 1.0)).exit_rates == (0.25, 0.75)


def test_real_table_hand_computed_latency(explorer: Explorer) -> None:
    """One candidate's expected latency written out from the real table's arrays."""
    scorer = explorer.scorer("dense", 1.0)
    t = scorer.table
    assert list(t.exit_position) == [3, 5] and t.n_cuts == 7
    cand = Candidate("dense", 1.0, 4, (0, 1), 0.4)
    m = scorer.score(cand)
    r0, r1, rf = m.test_exit_rates
    lat0 = t.edge_s[3] + t.exit_edge_s[0]
    lat1 = (
        t.edge_s[4]
        + t.exit_edge_s[0]
        + t.transfer_s[4]
        + t.server_s[4]
        - t.server_s[5]
        + t.exit_server_s[1]
    )
    latf = t.edge_s[4] + t.exit_edge_s[0] + t.transfer_s[4] + t.server_s[4] + t.exit_server_s[1]
    assert m.test_latency_mean == pytest.approx(r0 * lat0 + r1 * lat1 + rf * latf, rel=1e-12)
    assert m.test_bandwidth == pytest.approx((r1 + rf) * t.cut_bytes[4], rel=1e-12)
    edge_only = scorer.score(Candidate("dense", 1.0, 6, (0, 1), 0.4))
    e0, e1, ef = edge_only.test_exit_rates
    expected = (
        e0 * (t.edge_s[3] + t.exit_edge_s[0])
        + e1 * (t.edge_s[5] + t.exit_edge_s[0] + t.exit_edge_s[1])
        + ef * (t.edge_s[6] + t.exit_edge_s[0] + t.exit_edge_s[1])
    )
    assert edge_only.test_latency_mean == pytest.approx(expected, rel=1e-12)
    assert edge_only.test_bandwidth == 0.0
