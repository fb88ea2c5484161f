"""bench/local_dev_decoder.py's bookkeeping (no recognition here): every variant is a valid
pocketsphinx configuration, and gains and losses are counted against ``base``."""

from __future__ import annotations

from typing import Any

import pocketsphinx

from bench import local_dev_decoder
from bench.local_eval_set import Command


def test_every_variant_is_a_pocketsphinx_configuration() -> None:
    config = pocketsphinx.Config()
    for name, options in local_dev_decoder.VARIANTS.items():
        for key, value in options.items():
            if key not in local_dev_decoder._NOT_DECODER:
                config[key] = value  # KeyError / ValueError: not a pocketsphinx option
        assert name


def _answer(said: str, heard: str, right: bool) -> dict[str, Any]:
    return {"set": "dev", "voice": "v", "said": said, "heard": heard, "answered": heard,
            "right": right}  # fmt: skip


def test_gains_and_losses_are_counted_against_base() -> None:
    base = [_answer("a", "a", True), _answer("b", "x", False), _answer("c", "c", True)]
    other = [_answer("a", "a", True), _answer("b", "b", True), _answer("c", "y", False)]
    report = {"variants": {"base": {"answers": base}, "lw8": {"answers": other}}}
    compared = local_dev_decoder._compared(report)["variants"]
    assert compared["lw8"]["gained"] == ["v: 'b' -> 'b'"]
    assert compared["lw8"]["lost"] == ["v: 'c' -> 'y'"]
    assert compared["lw8"]["readings_changed"] == 2
    assert "answers" not in compared["lw8"] and compared["base"]["answers"] == base


def test_tally_counts_sets_and_the_development_split() -> None:
    inside = Command("what time is it", "get_date_time", {}, "dev")
    outside = Command("open the door", "unknown", None, "dev")
    rows = [("dev", inside, True), ("more", outside, True), ("order_numbers", inside, False)]
    tally = local_dev_decoder._tally(rows)
    assert tally == {"dev": 1, "more": 1, "order_numbers": 0, "development_in_domain": 1,
                     "development_out_of_domain_rejected": 1, "all": 2}  # fmt: skip


def test_the_variant_used_is_the_engines_setting_and_base_is_pocketsphinxs() -> None:
    from sonicwire.server.backends.local import stt

    used = dict(local_dev_decoder.VARIANTS[local_dev_decoder.USED])
    assert bool(used.pop(local_dev_decoder.ACCENTS, False)) is stt.ACCENT_VARIANTS
    kinds = used.pop(local_dev_decoder.ACCENT_SLOTS, ())
    assert tuple(kinds) == stt.ACCENT_SLOT_KINDS
    assert used == stt.DECODER_OPTIONS
    assert local_dev_decoder.VARIANTS["base"] == {local_dev_decoder.ACCENTS: False}
    # the word beam that won on the development set is wider than pocketsphinx's own default
    # (it was withdrawn after the full evaluation, but stays measured as a variant)
    assert local_dev_decoder.VARIANTS["wbeam_wide"]["wbeam"] < pocketsphinx.Config()["wbeam"]
