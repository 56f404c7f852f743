"""prometheus_client's encoders, applied family by family, each family's
text kept while its samples stay the same, and its layout kept while only
their values change.

Both exposition formats are the families' texts one after the other
(OpenMetrics then ends with "# EOF"), so encoding a registry family by family
gives the same bytes as encoding it at once. Most families of a running
guest do not change between two scrapes (the guest's identity, objects,
programs, buffer counts of a quiet buffer, a histogram nothing landed in):
their text is the one the library made for the same samples last time.

A family whose values changed but whose samples are the same series as
last time (same names and labels, in the same order: a histogram's buckets
as events land, a run-time gauge) keeps the library's text around its
values: each sample line the library wrote is "<series> <value>\\n", and the
new values are written into those places with the library's own value
formatter (`floatToGoString`, what both of its encoders call). A layout is
kept only if re-filling it with the family's values gives back the
library's bytes exactly, and only for families whose lines the library
writes in sample order; anything else (a new series, a timestamp, an
exemplar, a library that writes values another way) is encoded by the
library again. Nothing is kept beyond one text and one layout per family and
format, and nothing runs between scrapes.
"""
import threading
from typing import Callable, Dict, Iterable, List, Optional

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

_EOF = b"# EOF\n"


class _Family:
    """One family as a collector, for the library's encoders."""

    __slots__ = ("family",)

    def __init__(self, family: Metric):
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return (self.family,)


class _Kept:
    """What one scrape left of a family: its samples' family, its text, and
    the text's pieces around the values (None: the library encodes it)."""

    __slots__ = ("family", "text", "pieces")

    def __init__(self, family: Metric, text: bytes, pieces: Optional[List[str]]):
        self.family, self.text, self.pieces = family, text, pieces


class FamilyEncoder:
    """encode(registry, encoder, content_type) -> the exposition bytes.
    `library_encodes` counts the families the library encoded (the rest
    were kept or re-filled)."""

    def __init__(self):
        self._kept: Dict[str, Dict[str, _Kept]] = {}  # content type -> family name -> what is kept
        self._lock = threading.Lock()
        self.library_encodes = 0

    def encode(self, registry, encoder: Callable, content_type: str) -> bytes:
        openmetrics = content_type.startswith("application/openmetrics-text")
        with self._lock:
            kept = self._kept.setdefault(content_type, {})
        fresh: Dict[str, _Kept] = {}
        parts: List[bytes] = []
        for family in registry.collect():
            name = family.name
            before = kept.get(name)
            if before is not None and _same(before.family, family):
                now = _Kept(family, before.text, before.pieces)
            elif before is not None and before.pieces is not None and _same_series(before.family, family):
                now = _Kept(family, _fill(before.pieces, family.samples).encode(), before.pieces)
            else:
                self.library_encodes += 1
                text = encoder(_Family(family))
                if openmetrics and text.endswith(_EOF):
                    text = text[:-len(_EOF)]
                now = _Kept(family, text, _layout(text, family))
            fresh[name] = now
            parts.append(now.text)
        with self._lock:
            self._kept[content_type] = fresh  # families gone since the last scrape are dropped
        if openmetrics:
            parts.append(_EOF)
        return b"".join(parts)


def _same(before: Metric, now: Metric) -> bool:
    return before is now or (before.samples == now.samples and before.type == now.type
                             and before.documentation == now.documentation and before.unit == now.unit)


def _same_series(before: Metric, now: Metric) -> bool:
    """The same series as `before`, with values only and no timestamps or
    exemplars (what a layout can be re-filled with)."""
    if (before.type != now.type or before.documentation != now.documentation or before.unit != now.unit
            or len(before.samples) != len(now.samples)):
        return False
    for a, b in zip(before.samples, now.samples):
        if (a.name != b.name or (a.labels is not b.labels and a.labels != b.labels)
                or b.timestamp is not None or b.exemplar is not None or b.value is None or any(b[5:])):
            return False  # b[5:]: fields of later library versions (native histograms)
    return True


def _layout(text: bytes, family: Metric) -> Optional[List[str]]:
    """The library's text of `family` cut around its sample values:
    text == pieces[0] + value_0 + pieces[1] + ... + value_n-1 + pieces[n];
    None where that does not hold (see the module's docstring)."""
    samples = family.samples
    if not samples or not _same_series(family, family):
        return None
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    pieces: List[str] = []
    pending: List[str] = []
    for line in lines[:-1]:  # the text ends with "\n"
        if line.startswith("#"):
            pending.append(line + "\n")
            continue
        series, space, _ = line.rpartition(" ")
        at = len(pieces)
        if not space or at >= len(samples) or not series.startswith(samples[at].name) \
                or series[len(samples[at].name):len(samples[at].name) + 1] not in ("", "{"):
            return None  # not this sample's line: the library wrote them in another order
        pending.append(series + " ")
        pieces.append("".join(pending))
        pending = ["\n"]
    pieces.append("".join(pending))
    if len(pieces) != len(samples) + 1 or lines[-1] != "" or _fill(pieces, samples).encode() != text:
        return None
    return pieces


def _fill(pieces: List[str], samples) -> str:
    out = []
    for piece, sample in zip(pieces, samples):
        out.append(piece)
        out.append(floatToGoString(sample.value))
    out.append(pieces[-1])
    return "".join(out)
