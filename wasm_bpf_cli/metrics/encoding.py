"""prometheus_client's encoders, applied family by family, each family's
text kept while its samples stay the same.

Both exposition formats are the families' texts one after the other
(OpenMetrics then ends with "# EOF"), so encoding a registry family by family
gives the same bytes as encoding it at once. Most families of a running
guest do not change between two scrapes (the guest's identity, objects,
programs, buffer counts of a quiet buffer, a histogram nothing landed in):
their text is the one the library made for the same samples last time. A
family whose samples changed is encoded again, by the library. Nothing is
kept beyond one text per family and format, and nothing runs between
scrapes.
"""
import threading
from typing import Callable, Dict, Iterable, List, Tuple

from prometheus_client.core import Metric

_EOF = b"# EOF\n"


class _Family:
    """One family as a collector, for the library's encoders."""

    __slots__ = ("family",)

    def __init__(self, family: Metric):
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return (self.family,)


class FamilyEncoder:
    """encode(registry, encoder, content_type) -> the exposition bytes."""

    def __init__(self):
        self._texts: Dict[str, Dict[str, Tuple[Metric, bytes]]] = {}  # content type -> name -> (family, text)
        self._lock = threading.Lock()

    def encode(self, registry, encoder: Callable, content_type: str) -> bytes:
        openmetrics = content_type.startswith("application/openmetrics-text")
        with self._lock:
            kept = self._texts.setdefault(content_type, {})
        fresh: Dict[str, Tuple[Metric, bytes]] = {}
        parts: List[bytes] = []
        for family in registry.collect():
            name = family.name
            before = kept.get(name)
            if before is not None and _same(before[0], family):
                text = before[1]
            else:
                text = encoder(_Family(family))
                if openmetrics and text.endswith(_EOF):
                    text = text[:-len(_EOF)]
            fresh[name] = (family, text)
            parts.append(text)
        with self._lock:
            self._texts[content_type] = fresh  # families gone since the last scrape are dropped
        if openmetrics:
            parts.append(_EOF)
        return b"".join(parts)


def _same(before: Metric, now: Metric) -> bool:
    return before is now or (before.samples == now.samples and before.type == now.type
                             and before.documentation == now.documentation and before.unit == now.unit)
