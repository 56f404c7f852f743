"""A metrics config carried inside the module, as a custom section.

`wasm-bpf metrics embed CONFIG MODULE` writes the config's text into a
custom section named `wasm-bpf.metrics` (engines ignore custom sections), so
a module copied or pulled from a registry brings its metric definitions
along; `run --metrics` uses it when no `--metrics-config` is given.
"""
from typing import Optional

from wasm_bpf_cli.engines.rewrite import (CUSTOM, RewriteError, _Reader, encode_name, join_sections,
                                          make_section, split_sections)
from wasm_bpf_cli.errors import ModuleError
from wasm_bpf_cli.metrics.config import MetricsConfig, parse_config

SECTION_NAME = "wasm-bpf.metrics"
SOURCE = f"the module's {SECTION_NAME} section"


def _custom_name(payload: bytes) -> Optional[str]:
    try:
        return _Reader(payload, what="custom section").name()
    except RewriteError:
        return None


def embedded_text(wasm: bytes) -> Optional[bytes]:
    """The embedded config's bytes, or None (also for bytes that are not wasm:
    the runner reports those itself)."""
    try:
        sections = split_sections(wasm)
    except RewriteError:
        return None
    for s in sections:
        if s.id == CUSTOM and _custom_name(s.payload) == SECTION_NAME:
            return s.payload[len(encode_name(SECTION_NAME)):]
    return None


def embedded_config(wasm: bytes) -> Optional[MetricsConfig]:
    """The embedded config, parsed (UsageError if malformed), or None."""
    text = embedded_text(wasm)
    return None if text is None else parse_config(text, SOURCE)


def embed(wasm: bytes, config_text: bytes) -> bytes:
    """The module with `config_text` as its metrics section (replacing any)."""
    try:
        sections = split_sections(wasm)
    except RewriteError as err:
        raise ModuleError(f"not a valid wasm module: {err}") from None
    kept = [s for s in sections if not (s.id == CUSTOM and _custom_name(s.payload) == SECTION_NAME)]
    kept.append(make_section(CUSTOM, encode_name(SECTION_NAME) + config_text))
    return join_sections(kept)
