#!/usr/bin/env python3
"""bin2c.py FILE NAME > out.h -- embed FILE as a writable, 8-byte aligned C
byte array `NAME` plus `NAME_len` (like `xxd -i`, without needing xxd).
The array is not const so guests can patch .rodata/.data before loading."""
import sys


def main() -> None:
    path, name = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    out = [f"/* generated from {path.split('/')[-1]} by bin2c.py; do not edit */",
           f"static unsigned char {name}[] __attribute__((aligned(8))) = {{"]
    for i in range(0, len(data), 12):
        out.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + 12]) + ",")
    out.append("};")
    out.append(f"static const unsigned int {name}_len = {len(data)};")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
