"""The devices and link section: each profile's fields and sources."""

from __future__ import annotations

from dse.costmodel import DeviceProfile, LinkProfile
from dse.report import fmt
from dse.report.data import ReportData
from dse.report.doc import Bold, Code, Doc
from dse.report.text import shown_path


def deployment(data: ReportData, doc: Doc) -> None:
    """Each profile of the deployment (edge, server, link): its fields and their sources."""
    doc.h(1, "Devices and link", "deployment")
    explorer = data.explorer
    for role, profile in (
        ("edge", explorer.edge),
        ("server", explorer.server),
        ("link", explorer.link),
    ):
        doc.h(2, f"{role}: {profile.name} (v{profile.version})")
        doc.p(profile.description)
        doc.p(Bold("Source: "), profile.source)
        if profile.path is not None:
            doc.p("File: ", Code(shown_path(profile.path)))
        doc.table(["field", "value"], [[k, v] for k, v in _profile_fields(profile)])
        if profile.sources:
            doc.table(["field", "source"], [[Code(k), v] for k, v in profile.sources.items()])


def _profile_fields(p: DeviceProfile | LinkProfile) -> list[tuple[str, str]]:
    """A profile's fields in human units."""
    if isinstance(p, LinkProfile):
        return [
            ("uplink", fmt.mbps(p.uplink_bps)),
            ("downlink", fmt.mbps(p.downlink_bps)),
            ("RTT", fmt.seconds(p.rtt_s)),
            (
                "radio power, sending",
                f"{p.alpha_w_per_mbps * 1e3:.4g} mW per Mbit/s x "
                f"uplink + {p.beta_w * 1e3:.4g} mW = "
                f"{p.uplink_power_w():.3g} W",
            ),
            (
                "radio power, receiving",
                f"{p.alpha_down_w_per_mbps * 1e3:.4g} mW per Mbit/s x "
                f"downlink + {p.beta_w * 1e3:.4g} mW = "
                f"{p.downlink_power_w():.3g} W",
            ),
            ("radio power, connected and waiting", f"{p.connected_power_w:.3g} W"),
            ("tail energy", fmt.joules(p.tail_energy_j)),
        ]
    efficiency = ", ".join(f"{k} {v:g}" for k, v in p.efficiency.items())
    sparse = (
        "; ".join(
            f"{pattern}: " + ", ".join(f"{k} {v:g}" for k, v in kinds.items())
            for pattern, kinds in p.sparse_efficiency.items()
        )
        or "none"
    )
    rows = [
        ("kind", p.kind),
        (
            "peak",
            ", ".join(f"{k} {fmt.count(v)}FLOP/s" for k, v in p.peak_flops.items())
            + f" (model uses {p.dtype})",
        ),
        ("efficiency (fraction of peak)", efficiency),
        ("sparse kernels by pattern (fraction of peak)", sparse),
        ("per-layer overhead", fmt.seconds(p.overhead_s)),
        ("memory bandwidth", f"{fmt.nbytes(p.mem_bandwidth_Bps)}/s"),
        ("memory capacity", fmt.nbytes(p.mem_capacity_bytes)),
        ("power idle / active", f"{p.idle_power_w:g} W / {p.active_power_w:g} W"),
    ]
    if p.energy_per_flop_j is not None:
        rows.append(
            ("energy per FLOP / byte", f"{p.energy_per_flop_j:g} J / {p.energy_per_byte_j:g} J")
        )
    return rows
