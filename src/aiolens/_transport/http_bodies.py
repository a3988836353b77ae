"""Request and response bodies: multipart forms built anew for every attempt, and one
cached msgspec decoder per response type.

Vendor packages describe a form with :class:`FormFile` and :func:`multipart`; only
the transport builds the :class:`aiohttp.FormData`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import aiohttp
import msgspec

__all__ = ["FormFile", "decoder_for", "multipart"]


@dataclass(frozen=True, slots=True)
class FormFile:
    """One file of a multipart form.

    Attributes:
        content: called on every attempt for the file's bytes or a fresh binary
            file object (a retry must not send a reader that an earlier attempt
            consumed); aiohttp closes a file object once it is sent.
        filename: the ``filename`` of the part.
        content_type: the part's ``Content-Type``.
    """

    content: Callable[[], bytes | IO[bytes]]
    filename: str
    content_type: str


def multipart(
    files: Mapping[str, FormFile], fields: Mapping[str, str] | None = None
) -> Callable[[], aiohttp.FormData]:
    """A body factory for :meth:`HTTPTransport.request` (``data=``): the form with
    ``fields`` (name to value) and ``files`` (name to :class:`FormFile`), built anew
    each time it is called, so every attempt sends the whole form."""

    def build() -> aiohttp.FormData:
        form = aiohttp.FormData()
        for name, value in (fields or {}).items():
            form.add_field(name, value)
        for name, file in files.items():
            form.add_field(
                name, file.content(), filename=file.filename, content_type=file.content_type
            )
        return form

    return build


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(tp: Any, dec_hook: Callable[[type, Any], Any] | None = None) -> Any:
    """A cached msgspec JSON decoder for ``tp`` (one reused decoder per type)."""
    key = (tp, dec_hook)
    dec = _decoders.get(key)
    if dec is None:
        dec = _decoders[key] = msgspec.json.Decoder(tp, dec_hook=dec_hook)
    return dec
