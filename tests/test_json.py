"""Every public model encodes as JSON by every route a user takes; a secret encodes as its mask."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import msgspec
import msgspec.inspect as mi
from fastapi.encoders import jsonable_encoder

import aiolens
from aiolens import AsyncArchetypeClient, to_builtins
from aiolens._core.model import Model, enc_hook
from aiolens._core.redact import MASK, SecretStr
from aiolens.emulator import Emulator
from aiolens.kynasmith import AsyncKynasmithClient

IMAGE_QA = "lns-fd669361822b07e2-237ab3ffd79199b0"
_NATIVE = (
    mi.AnyType,
    mi.NoneType,
    mi.BoolType,
    mi.IntType,
    mi.FloatType,
    mi.StrType,
    mi.LiteralType,
    mi.EnumType,
    mi.RawType,  # wire messages keep raw JSON (encoded verbatim)
)


def _all_models() -> list[type[Model]]:
    for info in pkgutil.walk_packages(aiolens.__path__, "aiolens."):
        skip = info.name.endswith(("__main__", ".cli", ".testing"))
        if ".emulator" not in info.name and not skip:
            importlib.import_module(info.name)
    found: list[type[Model]] = []
    pending: list[type[Model]] = [Model]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith("aiolens."):
                found.append(sub)
    return found


def _json_native(t: mi.Type, seen: set[type]) -> bool:
    if isinstance(t, _NATIVE):
        return True
    if isinstance(t, mi.UnionType | mi.ListType | mi.DictType | mi.TupleType):
        parts = getattr(t, "types", None) or [
            x for x in (getattr(t, "key_type", None), getattr(t, "value_type", None)) if x
        ]
        if isinstance(t, mi.ListType):
            parts = [t.item_type]
        if isinstance(t, mi.TupleType):
            parts = list(t.item_types)
        return all(_json_native(p, seen) for p in parts)
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return True
        seen.add(t.cls)
        return all(_json_native(f.type, seen) for f in t.fields)
    return False


def test_every_model_holds_only_json_types() -> None:
    models = _all_models()
    assert len(models) > 40  # Lens + Kynasmith models, events, messages
    for cls in models:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        bad = [f.name for f in info.fields if not _json_native(f.type, set())]
        assert not bad, f"{cls.__qualname__}: fields {bad} are not JSON-native"


def _assert_json_everywhere(value: Any) -> Any:
    """Encode ``value`` by the three routes; they must agree."""
    via_msgspec = json.loads(msgspec.json.encode(value))
    via_stdlib = json.loads(json.dumps(to_builtins(value)))
    via_fastapi = jsonable_encoder(value)
    assert via_msgspec == via_stdlib == via_fastapi
    return via_msgspec


async def test_real_records_encode_by_every_route() -> None:
    key = "atai-json-secret-0123456789"
    async with (
        Emulator(api_key=key) as emu,
        AsyncArchetypeClient(key, emu.lens_url) as client,
        AsyncKynasmithClient(emu.kynasmith_api_key, base_url=emu.kynasmith_url) as kyna,
    ):
        lenses = await client.lenses.metadata()
        created = await client.sessions.create(IMAGE_QA)
        summaries = await client.sessions.metadata()
        async with client.attach(created.session_id) as session:
            status = await session.status()
            validation = await session.validate()
        destroyed = await client.sessions.destroy(created.session_id)
        specs = await kyna.movespecs.list(visibility="public")
        for value in (lenses, created, summaries, status, validation, destroyed, specs):
            encoded = _assert_json_everywhere(value)
            assert key not in json.dumps(encoded)
        assert _assert_json_everywhere(created)["api_key"] == MASK
        assert _assert_json_everywhere(summaries)[0]["session_id"] == created.session_id
        assert _assert_json_everywhere(lenses[0])["lens_id"] == lenses[0].lens_id
        assert created.to_dict() == dict(created) == to_builtins(created)


def test_tagged_events_keep_their_type() -> None:
    from aiolens.archetype.events import InferenceResult, UnknownEvent, decode_event

    event = decode_event(b'{"type": "inference.result", "event_data": {"response": ["ok"]}}')
    assert isinstance(event, InferenceResult)
    assert _assert_json_everywhere(event)["type"] == "inference.result"
    unknown = decode_event(b'{"type": "brand.new", "x": 1}')
    assert isinstance(unknown, UnknownEvent)
    assert _assert_json_everywhere(unknown)["raw"] == {"type": "brand.new", "x": 1}


def test_a_secret_encodes_as_its_mask() -> None:
    secret = SecretStr("sk-very-secret-value")
    assert to_builtins({"key": secret}) == {"key": MASK}
    assert msgspec.json.encode([secret], enc_hook=enc_hook) == f'["{MASK}"]'.encode()
