"""Target-name normalisation: alias table, generic rule, idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hstlc import targets
from hstlc.targets import _parse_aliases, load_aliases, normalize_targname, targname_key


@pytest.mark.parametrize(
    "variants, canonical",
    [
        (["GJ-436", "GJ436", "GJ 436", "gj-436", "GLIESE436", "Gliese 436", "GL-436", "ROSS-905"],
         "GJ436"),
        (["AU-MIC", "AUMIC", "au mic", "GJ-803", "HD-197481"], "AUMIC"),
        (["PROXIMA-CEN", "PROXIMA", "V645-CEN", "GJ-551", "ALF-CEN-C"], "PROXIMACEN"),
        (["EV-LAC", "EVLAC", "GJ-873", "GL 873"], "EVLAC"),
        (["AD-LEO", "ADLEO", "GJ-388"], "ADLEO"),
        (["GJ-1214", "GJ1214", "LHS-3275"], "GJ1214"),
        (["HD-189733", "HD189733", "HD 189733", "V452-VUL"], "HD189733"),
        (["WD-0308-565", "WD0308-565", "WD 0308-565"], "WD0308565"),
        (["BD+28-4211", "BD+28D4211"], "BD+28D4211"),
        (["-ALF-UMI", "POLARIS", "ALPHA-UMI"], "ALFUMI"),
    ],
)
def test_variants_of_one_object_share_a_name(variants: list[str], canonical: str) -> None:
    assert {normalize_targname(v) for v in variants} == {canonical}


def test_generic_rule_for_names_not_in_the_table() -> None:
    assert normalize_targname("  my_target-1.5 ") == "MYTARGET15"
    assert normalize_targname("SWIFTJ1357.2-0933") == "SWIFTJ135720933"
    # '+' is kept: the two hemispheres stay apart
    assert normalize_targname("J1234+5678") != normalize_targname("J1234-5678")
    # components of a system are not merged
    assert normalize_targname("GJ-667C") != normalize_targname("GJ-667")


def test_names_made_only_of_separators_are_not_emptied() -> None:
    assert normalize_targname("---") == "---"
    assert normalize_targname(" _ ") == "_"
    assert normalize_targname("") == ""


def test_alias_table_is_package_data_and_consistent() -> None:
    aliases = load_aliases()
    assert len(aliases) >= 30
    for key, canonical in aliases.items():
        assert targname_key(key) == key
        assert targname_key(canonical) == canonical
        assert canonical not in aliases  # no chains: canonical names are fixed points


def test_alias_table_rejects_conflicts_and_chains() -> None:
    header = "alias,canonical,note\n"
    with pytest.raises(ValueError, match="maps to both"):
        _parse_aliases(header + "X-1,A,\nX1,B,\n", "t.csv")
    with pytest.raises(ValueError, match="also aliases"):
        _parse_aliases(header + "X-1,Y,\nY,Z,\n", "t.csv")
    with pytest.raises(ValueError, match="compact form"):
        _parse_aliases(header + "X-1,Y-2,\n", "t.csv")
    assert _parse_aliases("# comment\n" + header + "A-B,AB,\n", "t.csv") == {}


def test_no_network_and_cached() -> None:
    assert load_aliases() is load_aliases()
    assert targets.ALIAS_RESOURCE.endswith(".csv")


_names = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789 -_.+", max_size=25),
    st.sampled_from(sorted(load_aliases())),
)


@given(_names)
def test_normalize_is_idempotent_and_deterministic(name: str) -> None:
    once = normalize_targname(name)
    assert normalize_targname(once) == once
    assert normalize_targname(name) == once


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+", min_size=1, max_size=12),
       st.lists(st.sampled_from([" ", "-", "_", "."]), max_size=4), st.randoms())
def test_separators_and_case_do_not_matter(core: str, seps: list[str], rnd) -> None:  # type: ignore[no-untyped-def]
    chars = list(core)
    for sep in seps:
        chars.insert(rnd.randint(0, len(chars)), sep)
    variant = "".join(chars).lower()
    assert normalize_targname(variant) == normalize_targname(core)
