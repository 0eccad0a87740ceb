"""Device and link profiles as TOML text, valid as written: the files the profile tests
break one field at a time (a profile's mistakes are often in its text: a unit, a quote, a
table header, so these stay text and are edited with :func:`edited`)."""

from __future__ import annotations

#: A tiny edge device: 10 GFLOP/s, 10 GB/s, 1 GiB, 1 W idle, 3 W active, every figure cited.
DEVICE = """\
type = "device"
name = "tiny"
version = 1
kind = "edge"
description = "a test device"
source = "the test suite"

[compute]
peak_flops = { fp32 = "10 GFLOP/s" }
dtype = "fp32"
overhead = "10 us"

[compute.efficiency]
default = 0.2
conv = 0.3

[memory]
bandwidth = "10 GB/s"
capacity = "1 GiB"

[power]
idle = "1 W"
active = "3 W"

[sources]
"compute.peak_flops" = "S: spec sheet"
"compute.overhead" = "E: guess"
"compute.efficiency" = "E: guess"
"memory.bandwidth" = "S: spec sheet"
"memory.capacity" = "S: spec sheet"
"power.idle" = "M: measured with a USB meter"
"power.active" = "M: measured with a USB meter"
"""

#: A tiny link: 10 Mbit/s up, 20 down, 30 ms, radio 100 mW/(Mbit/s) + 500 mW, cited.
LINK = """\
type = "link"
name = "tiny-link"
version = 1
description = "a test link"
source = "the test suite"
uplink = "10 Mbit/s"
downlink = "20 Mbit/s"
rtt = "30 ms"

[radio]
alpha = "100 mW/Mbps"
beta = "500 mW"

[sources]
uplink = "S: x"
downlink = "S: x"
rtt = "S: x"
"radio.alpha" = "U: x"
"radio.beta" = "U: x"
"""


def edited(text: str, old: str, new: str) -> str:
    """``text`` with its first ``old`` replaced by ``new``; ``old`` must occur (a case
    that changes nothing tests nothing)."""
    assert old in text, f"{old!r} is not in the profile"
    return text.replace(old, new, 1)
