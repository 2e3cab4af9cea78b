"""The measurement-protocol options every measuring verb shares."""

import argparse

from hwprof.commands._common import add_protocol_arguments, protocol_of
from hwprof.latency.backends.agent.protocol import DEFAULTS, QUICK, settings


def _parse(*argv, what="op"):
    p = argparse.ArgumentParser()
    add_protocol_arguments(p, what)
    return protocol_of(p.parse_args(list(argv)))


def test_no_options_leave_the_agents_defaults():
    assert _parse() == {}
    assert settings(_parse()) == DEFAULTS


def test_quick_is_a_shorter_protocol_that_explicit_options_still_override():
    quick = _parse("--quick")
    assert quick == QUICK
    for key in ("min_span_s", "time_cap_s", "max_samples"):
        assert settings(quick)[key] < DEFAULTS[key]
    assert _parse("--quick", "--min-span", "10")["min_span_s"] == 10.0
    assert _parse("--quick", "--min-span", "10")["time_cap_s"] == QUICK["time_cap_s"]


def test_the_reference_op_can_be_named_and_an_unknown_one_is_refused(capsys):
    import pytest
    assert _parse("--reference", "mbconv") == {"reference": "mbconv"}
    assert settings(_parse("--reference", "basket"))["reference"] == "basket"
    assert _parse("--reference", "mbconv", what="network") == {"reference": "mbconv"}
    with pytest.raises(SystemExit) as e:
        _parse("--reference", "resnet")
    assert e.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err


def test_networks_have_no_quick_preset():
    p = argparse.ArgumentParser()
    add_protocol_arguments(p, "network")
    assert not any("--quick" in a.option_strings for a in p._actions)


def test_instances_is_passed_on_and_a_nonpositive_count_is_refused():
    import pytest

    from hwprof.errors import UserError
    assert _parse("--instances", "1") == {"instances": 1}
    assert _parse("--instances", "3", what="network") == {"instances": 3}
    with pytest.raises(UserError, match="--instances"):
        _parse("--instances", "0")


def test_table_show_names_a_quick_tables_protocol():
    from hwprof.commands.table_show import protocol_line
    quick = protocol_line(settings(QUICK))
    assert "1 instance of each" in quick and "16 samples at most" in quick
    assert "reference after every 10 ms of op sampling" in quick
    assert "samples carried with elasticity 1" in quick
    default = protocol_line(DEFAULTS)
    assert "2 instances of each" in default and "samples carried with elasticity 0.5" in default
    # a table whose level carries its own (fitted) elasticity says the protocol's is not used;
    # the quick protocol's 1 is its own either way
    assert "with the level's elasticity (above), not the protocol's 0.5" in protocol_line(
        DEFAULTS, own_elasticity=True)
    assert "samples carried with elasticity 1" in protocol_line(settings(QUICK), True)
    # tables of agents before 11 fitted each op's elasticity (their settings say None)
    assert "elasticity fitted per op" in protocol_line(settings({"elasticity": None}))
    assert default.endswith("; reference: a basket of 3 blocks")
    assert protocol_line(settings({"reference": "mbconv"})).endswith("; reference: one MBConv block")
    older = {k: v for k, v in DEFAULTS.items() if k != "reference"}  # an agent-11 table's
    assert protocol_line(older).endswith("; reference: one MBConv block")
    assert "reference after every" not in default


def test_build_table_pass_defaults_depend_on_what_is_built():
    from hwprof.cli import build_parser
    from hwprof.commands.build_table import _default_passes
    from hwprof.latency.backends.agent.protocol import BUILD_EXTRA_PASSES, BUILD_PASSES

    def resolved(*argv):
        args = build_parser().parse_args(["build-table", *argv])
        _default_passes(args)
        return args.passes, args.extra_passes

    assert resolved("--space", "mbv2-mini") == (BUILD_PASSES, BUILD_EXTRA_PASSES)
    assert BUILD_EXTRA_PASSES > 0
    for one in (["--sample", "20"], ["--space", "tiny", "--quick"], ["--real-layers"]):
        assert resolved(*one) == (1, 0)
    assert resolved("--space", "tiny", "--passes", "2", "--extra-passes", "0") == (2, 0)
    assert resolved("--sample", "20", "--passes", "2", "--extra-passes", "3") == (2, 3)
    # several passes of sampled or real layers are meant to settle rows: extra passes too
    assert resolved("--sample", "20", "--passes", "3") == (3, BUILD_EXTRA_PASSES)
    assert resolved("--real-layers", "--passes", "2") == (2, BUILD_EXTRA_PASSES)
    assert resolved("--space", "tiny", "--passes", "1") == (1, 0)  # nothing to compare
    assert resolved("--space", "tiny", "--quick", "--passes", "3") == (3, 0)


def test_the_searchs_sessions_span_less_unless_asked_and_measure_arch_keeps_its_span():
    from hwprof.cli import build_parser
    from hwprof.latency.backends.agent.protocol import NETWORK_MIN_SPAN_S, SEARCH_MIN_SPAN_S
    parser = build_parser()
    search = ["search", "--table", "t.parquet", "--latency-budget", "1ms"]
    assert protocol_of(parser.parse_args(search))["min_span_s"] == SEARCH_MIN_SPAN_S
    assert protocol_of(parser.parse_args(search + ["--min-span", "20"]))["min_span_s"] == 20.0
    assert "min_span_s" not in protocol_of(parser.parse_args(["measure-arch", "--arch", "a.json"]))
    assert SEARCH_MIN_SPAN_S < NETWORK_MIN_SPAN_S
