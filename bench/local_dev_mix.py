"""The session's command model interpolated with pocketsphinx's general en-US model, for the
development-set measurement of `bench.local_dev_decoder` (variants ``mix*``): a lever of
issue 16 item 3 that had not been tried (docs/LOCAL_ENGINE.md).

pocketsphinx searches one language model, so mixing means one ARPA file whose probabilities
are ``(1 - weight) * P_command(w | u v) + weight * P_general(w | v)``:

- the general model (72,547 words, 2,051,547 bigrams) restricted to the command model's
  vocabulary (its commands and the 1,000 common words of the background) and renormalised
  over it, so the decoder's vocabulary, and with it the search, stays the command model's;
  its bigrams only (pocketsphinx cannot write the bundled binary model's trigram section as
  ARPA: `NGramModel.write` crashes after the bigrams, see `general_bigram_arpa`);
- the mixture's explicit n-grams are the command model's unigrams, bigrams and trigrams and
  the general model's bigrams between vocabulary words; each gets the interpolated
  probability, and the back-off weights are recomputed so that every history's distribution
  sums to one (static interpolation, as SRILM's ``-mix-lm`` does; an unseen n-gram backs off
  to the mixture's lower order, not to each model's, which is the usual approximation).

Bench only: the engine does not use it (measured on the development set: see
docs/LOCAL_ENGINE.md "The decoder's own settings").
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

__all__ = ["common_words", "general_bigram_arpa", "mix", "restricted_general"]

_PLAIN = re.compile(r"[a-z][a-z']*")
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sonicwire"
_FLOOR = -99.0  # log10 of an impossible event, as ARPA files write it
_WRITE = """
import os, sys, pocketsphinx
path = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin")
model = pocketsphinx.NGramModel.readfile(path)
model.write(sys.argv[1], pocketsphinx.NGramModel.str_to_type("arpa"))
"""

Bigrams = dict[tuple[str, str], float]  # (v, w) -> log10 p(w | v)
General = tuple[dict[str, float], Bigrams, Bigrams]  # `restricted_general`'s answer


def general_bigram_arpa() -> Path:
    """pocketsphinx's bundled en-US model written as ARPA text (once; cached), up to its
    bigrams: `NGramModel.write` crashes while writing the trigrams, after the unigram and
    bigram sections, so the write runs in a child process and the sections it finished are
    checked (unigrams all there, bigrams all but a few dozen at the end of the alphabet)."""
    out = _CACHE / "en-us-general.arpa"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    subprocess.run([sys.executable, "-c", _WRITE, str(partial)], check=False)
    text = partial.read_text(encoding="utf-8", errors="replace")
    if "\\2-grams:" not in text or len(text.splitlines()) < 2_000_000:
        raise RuntimeError(f"the general model's ARPA write stopped too early: {partial}")
    partial.rename(out)
    return out


def common_words(count: int) -> list[str]:
    """The general model's ``count`` likeliest words (by unigram probability; plain words:
    no sentence marks, no "'em", no "s."): its first 1,000 are the engine's common-word
    background (`phrases.background_sentences`), so a longer list is that background grown."""
    words: list[tuple[float, str]] = []
    section = ""
    with general_bigram_arpa().open(encoding="utf-8", errors="replace") as source:
        for line in source:
            if line.startswith("\\"):
                section = line.strip()
                if section == "\\2-grams:":
                    break
                continue
            parts = line.split()
            if section == "\\1-grams:" and len(parts) >= 2 and _PLAIN.fullmatch(parts[1]):
                words.append((float(parts[0]), parts[1]))
    words.sort(key=lambda entry: -entry[0])
    return [word for _, word in words[:count]]


def restricted_general(vocabulary: Collection[str]) -> General:
    """The general model over ``vocabulary``: unigram log10 p and back-off per word, and its
    bigrams (log10 p) between vocabulary words; the back-offs as (word, "") keys of the
    second map. Words it does not know are left out (the mixture gives them the command
    model's probability alone)."""
    wanted = set(vocabulary)
    unigram: dict[str, float] = {}
    backoff: Bigrams = {}
    bigrams: Bigrams = {}
    section = ""
    with general_bigram_arpa().open(encoding="utf-8", errors="replace") as source:
        for line in source:
            if line.startswith("\\"):
                section = line.strip()
                continue
            parts = line.split()
            if section == "\\1-grams:" and len(parts) >= 2 and parts[1] in wanted:
                unigram[parts[1]] = float(parts[0])
                backoff[(parts[1], "")] = float(parts[2]) if len(parts) > 2 else 0.0
            elif section == "\\2-grams:" and len(parts) >= 3:
                if parts[1] in wanted and parts[2] in wanted:
                    bigrams[(parts[1], parts[2])] = float(parts[0])
            elif section == "\\3-grams:":
                break
    return unigram, backoff, bigrams


def mix(command_arpa: str, weight: float, general: General | None = None) -> str:
    """``command_arpa`` (the session's trigram model, ARPA text) interpolated with the
    general model's bigrams at ``weight`` (module docstring); ARPA text. ``general``: the
    general model over the command model's vocabulary (default: `restricted_general`)."""
    uni, bi, tri = _parse(command_arpa)
    vocabulary = list(uni)
    g_uni, g_backoff, g_bi = general or restricted_general(vocabulary)
    words = [w for w in vocabulary if w != "<s>"]  # what the general model may predict

    # The general model renormalised over the vocabulary: unigrams, then bigrams per history.
    g1_total = sum(10 ** g_uni[w] for w in words if w in g_uni)
    g1 = {w: 10 ** g_uni[w] / g1_total if w in g_uni else 0.0 for w in words}
    g_next: dict[str, dict[str, float]] = defaultdict(dict)
    for (v, w), logp in g_bi.items():
        if w != "<s>":
            g_next[v][w] = 10**logp
    g2_norm: dict[str, tuple[float, float]] = {}  # v -> (back-off, normaliser)
    for v in vocabulary:
        if v not in g_uni:
            continue
        explicit = g_next.get(v, {})
        bo = 10 ** g_backoff.get((v, ""), 0.0)
        rest = sum(10 ** g_uni[w] for w in words if w in g_uni and w not in explicit)
        g2_norm[v] = (bo, sum(explicit.values()) + bo * rest)

    def g2(w: str, v: str) -> float:
        if v not in g2_norm:
            return g1[w]
        bo, total = g2_norm[v]
        p = g_next.get(v, {}).get(w)
        raw = p if p is not None else bo * 10 ** g_uni.get(w, -math.inf)
        return raw / total if total > 0 else g1[w]

    # The command model's own probabilities, backing off as its file says.
    def d1(w: str) -> float:
        return 10 ** uni[w][0]

    def d2(w: str, v: str) -> float:
        if (v, w) in bi:
            return 10 ** bi[(v, w)][0]
        return 10 ** uni[v][1] * d1(w)

    def d3(w: str, u: str, v: str) -> float:
        if (u, v, w) in tri:
            return 10 ** tri[(u, v, w)]
        return 10 ** (bi[(u, v)][1] if (u, v) in bi else 0.0) * d2(w, v)

    # pocketsphinx's ArpaBoLM writes a deficient model (its unigrams sum to about a quarter:
    # the discount mass is not given back), and the decoder's scores are tuned to that. So the
    # general model's share of a history is scaled to the command model's mass there, and
    # the back-offs keep each history's total the command model's: weight 0 writes the
    # command model again, with its own back-offs.
    mass1 = sum(d1(w) for w in words)  # "<s>" is never predicted: no mass of any history
    mass2 = {v: 0.0 for v in vocabulary}
    explicit_lower = {v: 0.0 for v in vocabulary}
    for (v, w), (logp, _) in bi.items():
        mass2[v] += 10**logp
        explicit_lower[v] += d1(w)
    for v in vocabulary:
        mass2[v] += 10 ** uni[v][1] * (mass1 - explicit_lower[v])
    # Every bigram of the file is a history with its own back-off (ArpaBoLM writes one for a
    # bigram without trigrams too); a pair that is no bigram of it backs off with weight 1.
    mass3 = {h: [0.0, 0.0] for h in bi}
    for (u, v, w), logp in tri.items():
        mass3[(u, v)][0] += 10**logp
        mass3[(u, v)][1] += d2(w, v)
    masses3 = {
        (u, v): explicit + 10 ** bi[(u, v)][1] * (mass2[v] - lower)
        for (u, v), (explicit, lower) in mass3.items()
    }

    keep = 1.0 - weight
    m1 = {w: keep * d1(w) + weight * mass1 * g1[w] for w in words}
    m1["<s>"] = d1("<s>")  # as the command model has it (the decoder never predicts it)
    pairs = set(bi) | {(v, w) for v, ws in g_next.items() for w in ws if v in uni and w in m1}
    m2 = {(v, w): keep * d2(w, v) + weight * mass2[v] * g2(w, v) for v, w in pairs}
    m3 = {(u, v, w): keep * d3(w, u, v) + weight * masses3[(u, v)] * g2(w, v) for u, v, w in tri}

    def backoff(mass: float, explicit: float, lower_mass: float, lower: float) -> float:
        left, lower_left = mass - explicit, lower_mass - lower
        if left <= 1e-12 or lower_left <= 1e-12:
            return _FLOOR
        return math.log10(left / lower_left)

    # Back-offs: what a history's explicit n-grams leave of its mass, over what the lower
    # order gives the other words.
    sum2 = {v: [0.0, 0.0] for v in vocabulary}
    for (v, w), p in m2.items():
        sum2[v][0] += p
        sum2[v][1] += m1[w]
    bo1 = {v: backoff(mass2[v], sums[0], mass1, sums[1]) for v, sums in sum2.items()}

    def mixed2(w: str, v: str) -> float:
        p = m2.get((v, w))
        return p if p is not None else 10 ** bo1[v] * m1[w]

    sum3 = {h: [0.0, 0.0] for h in bi}
    for (u, v, w), p in m3.items():
        sum3[(u, v)][0] += p
        sum3[(u, v)][1] += mixed2(w, v)
    bo2 = {
        (u, v): backoff(masses3[(u, v)], sums[0], mass2[v], sums[1])
        for (u, v), sums in sum3.items()
    }

    lines = ["\\data\\", f"ngram 1={len(uni)}", f"ngram 2={len(m2)}"]
    lines += [f"ngram 3={len(m3)}", "", "\\1-grams:"] if m3 else ["", "\\1-grams:"]
    for w in vocabulary:
        lines.append(f"{_log(m1[w]):.4f} {w} {bo1[w]:.4f}")
    lines += ["", "\\2-grams:"]
    for (v, w), p in sorted(m2.items()):
        tail = f" {bo2[(v, w)]:.4f}" if (v, w) in bo2 else ""
        lines.append(f"{_log(p):.4f} {v} {w}{tail}")
    if m3:
        lines += ["", "\\3-grams:"]
        lines += [f"{_log(p):.4f} {u} {v} {w}" for (u, v, w), p in sorted(m3.items())]
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _log(p: float) -> float:
    return math.log10(p) if p > 0 else _FLOOR


def _parse(
    text: str,
) -> tuple[
    dict[str, tuple[float, float]],
    dict[tuple[str, str], tuple[float, float]],
    dict[tuple[str, str, str], float],
]:
    """An ARPA text's n-grams: unigrams and bigrams as (log10 p, log10 back-off), trigrams as
    log10 p."""
    uni: dict[str, tuple[float, float]] = {}
    bi: dict[tuple[str, str], tuple[float, float]] = {}
    tri: dict[tuple[str, str, str], float] = {}
    section = ""
    for line in text.splitlines():
        if line.startswith("\\"):
            section = line.strip()
            continue
        parts = line.split()
        if not parts or section not in ("\\1-grams:", "\\2-grams:", "\\3-grams:"):
            continue
        logp = float(parts[0])
        if section == "\\1-grams:":
            uni[parts[1]] = (logp, float(parts[2]) if len(parts) > 2 else 0.0)
        elif section == "\\2-grams:":
            bi[(parts[1], parts[2])] = (logp, float(parts[3]) if len(parts) > 3 else 0.0)
        else:
            tri[(parts[1], parts[2], parts[3])] = logp
    return uni, bi, tri
