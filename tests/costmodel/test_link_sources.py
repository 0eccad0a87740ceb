"""Every link's downlink rests on a source: an estimate alone is refused, in one line
naming the file, the field and the fix (exit 2 from the command line), and the shipped
cellular links are asymmetric as measured and specified, Wi-Fi and BLE not."""

from __future__ import annotations

from pathlib import Path

import pytest

from dse.cli import main
from dse.costmodel import list_links, load_link
from dse.costmodel.devices import PROFILES_DIR, source_status, validate_file
from dse.errors import InputError

LINKS = PROFILES_DIR / "links"
#: The 3G profile as it was: its downlink "E: assumption: equal to the uplink".
ASSUMED = 'downlink = "E: assumption: equal to the uplink, no source here"'


def _with_downlink_citation(tmp_path: Path, citation: str) -> Path:
    text = (LINKS / "3g.toml").read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("downlink = ")]
    at = lines.index("[sources]") + 1
    lines.insert(at, citation)
    lines.insert(lines.index('rtt = "100 ms"'), 'downlink = "1.1 Mbit/s"')
    path = tmp_path / "my-3g.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_downlink_assumed_without_a_source_is_refused(tmp_path: Path) -> None:
    path = _with_downlink_citation(tmp_path, ASSUMED)
    with pytest.raises(InputError) as info:
        validate_file(path)
    assert info.value.field == 'sources."downlink"'
    message = str(info.value)
    assert message.startswith(f'{path}: sources."downlink": ') and "\n" not in message
    assert "estimate" in message and "several times their uplinks" in message


def test_the_command_line_refuses_it_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _with_downlink_citation(tmp_path, ASSUMED)
    assert main(["links", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and 'sources."downlink"' in err


@pytest.mark.parametrize(
    "citation",
    [
        'downlink = "S: median downlink, Huang et al. 2012"',
        'downlink = "D/E: the estimated uplink x the standard\'s peak-rate ratio"',
        'downlink = "M: iperf3 -R, 60 s, our access point"',
        'downlink = "U: a vendor\'s figure"',
    ],
)
def test_a_downlink_with_a_source_behind_it_loads(tmp_path: Path, citation: str) -> None:
    assert validate_file(_with_downlink_citation(tmp_path, citation)).downlink_bps == 1.1e6


def test_status_letters_of_a_citation() -> None:
    assert source_status("D/U: 1.1 x 2.5") == {"D", "U"}
    assert source_status("E : a guess") == {"E"}
    assert source_status("no status here") == frozenset()


@pytest.mark.parametrize("name", list_links())
def test_every_shipped_downlink_is_sourced(name: str) -> None:
    link = load_link(name)
    assert source_status(link.sources["downlink"]) - {"E"}, link.sources["downlink"]


def test_cellular_downlinks_are_several_times_their_uplinks_wifi_and_ble_are_not() -> None:
    for name in ("3g", "lte", "5g", "5g-mmwave"):
        link = load_link(name)
        assert link.downlink_bps >= 2 * link.uplink_bps, name
    for name in ("wifi", "wifi-mcu", "ble5"):
        link = load_link(name)
        assert link.downlink_bps == link.uplink_bps, name
