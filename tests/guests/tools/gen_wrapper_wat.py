#!/usr/bin/env python3
"""gen_wrapper_wat.py TEMPLATE BPF_OBJ WRAPPER_MODULE CALLBACK_EXPORT > out.wat

Fills wrapper.wat.in: the BPF object becomes a hex-escaped data segment at
offset 4096, memory is sized to hold it."""
import sys

OBJ_OFFSET = 4096


def main() -> None:
    template, obj_path, module, callback = sys.argv[1:5]
    text = open(template).read()
    obj = open(obj_path, "rb").read()
    pages = (OBJ_OFFSET + len(obj)) // 65536 + 1
    subst = {
        "@WRAPPER_MODULE@": module,
        "@CALLBACK_EXPORT@": callback,
        "@OBJ_LEN@": str(len(obj)),
        "@PAGES@": str(pages),
        "@OBJ_DATA@": "".join(f"\\{b:02x}" for b in obj),
    }
    for key, value in subst.items():
        if key not in text:
            sys.exit(f"{template}: placeholder {key} missing")
        text = text.replace(key, value)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
