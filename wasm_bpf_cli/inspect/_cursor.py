"""A bounds-checked reader over a byte slice: every read checks what remains
and raises InspectError naming the structure being read and the offset."""
import struct

from .errors import InspectError


class Cursor:
    __slots__ = ("data", "pos", "end", "what")

    def __init__(self, data: bytes, pos: int, end: int, what: str):
        if end > len(data):
            raise InspectError(f"truncated {what} at offset 0x{pos:x}")
        self.data = data
        self.pos = pos
        self.end = end
        self.what = what

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def fail(self, message: str, at: int = None):
        raise InspectError(f"{message} in {self.what} at offset 0x{self.pos if at is None else at:x}")

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise InspectError(f"truncated {self.what} at offset 0x{self.pos:x}")

    def take(self, n: int) -> bytes:
        self.need(n)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        self.need(n)
        self.pos += n

    def u8(self) -> int:
        self.need(1)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        self.need(size)
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def uleb(self, bits: int = 32) -> int:
        """Unsigned LEB128 of at most ceil(bits/7) bytes whose value fits `bits`."""
        start = self.pos
        max_bytes = (bits + 6) // 7
        result = shift = 0
        for _ in range(max_bytes):
            b = self.u8()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if result >> bits:
                    self.fail(f"LEB128 value does not fit {bits} bits", start)
                return result
        self.fail(f"LEB128 longer than {max_bytes} bytes", start)

    def sleb(self, bits: int = 32) -> int:
        start = self.pos
        max_bytes = (bits + 6) // 7
        result = shift = 0
        for _ in range(max_bytes):
            b = self.u8()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                if not -(1 << (bits - 1)) <= result < (1 << (bits - 1)):
                    self.fail(f"LEB128 value does not fit {bits} bits", start)
                return result
        self.fail(f"LEB128 longer than {max_bytes} bytes", start)

    def count(self, min_item_size: int = 1) -> int:
        """A vector length, checked against the bytes left (each item needs at
        least `min_item_size` bytes), so loops over it are bounded by the input."""
        at = self.pos
        n = self.uleb()
        if n * min_item_size > self.remaining:
            self.fail(f"count {n} exceeds the remaining {self.remaining} bytes", at)
        return n

    def name(self) -> str:
        n = self.count()
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail("name is not UTF-8", self.pos - n)


MAX_NAME = 4096  # longer names are refused: keeps many lookups linear overall


def c_string(data: bytes, start: int, end: int, what: str) -> str:
    """The NUL-terminated string at `start`, which must end before `end`."""
    if not 0 <= start < end <= len(data):
        raise InspectError(f"{what}: string offset 0x{start:x} out of range")
    stop = data.find(b"\0", start, min(end, start + MAX_NAME))
    if stop < 0:
        if end > start + MAX_NAME:
            raise InspectError(f"{what}: string at offset 0x{start:x} is longer than {MAX_NAME} bytes")
        raise InspectError(f"{what}: unterminated string at offset 0x{start:x}")
    return data[start:stop].decode("utf-8", errors="replace")
