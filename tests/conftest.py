"""Shared fixtures: a real emulator on 127.0.0.1 per test, and clients bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from aiolens import AsyncArchetypeClient
from aiolens._core.backoff import Backoff
from aiolens.emulator import Emulator, wire_tap
from tests import kynasmith_contract as kynasmith_contract_module
from tests.kynasmith_contract import ContractCheck

FAST_BACKOFF = Backoff(initial=0.01, maximum=0.05, max_retry_after=0.2)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncArchetypeClient]:
    async with AsyncArchetypeClient(
        emulator.api_key, emulator.lens_url, backoff=FAST_BACKOFF, timeout=10
    ) as c:
        yield c


# ---- every Kynasmith body and message the emulator sends, checked against the vendor contract


@pytest.fixture(scope="session")
def kynasmith_contract() -> Iterator[ContractCheck | str]:
    """The suite-wide contract check (or why it is off), tapping every in-process emulator."""
    vendor = kynasmith_contract_module.load()
    if isinstance(vendor, str):
        yield vendor
        return
    check = ContractCheck(vendor)
    _contract_checks.append(check)
    wire_tap.add_tap(check)
    try:
        yield check
    finally:
        wire_tap.remove_tap(check)


@pytest.fixture(autouse=True)
def _kynasmith_contract_conformance(kynasmith_contract: ContractCheck | str) -> Iterator[None]:
    """Fail the test during which the emulator sent something the contract refuses."""
    if isinstance(kynasmith_contract, str):
        yield
        return
    before = len(kynasmith_contract.failures)
    yield
    broken = kynasmith_contract.failures[before:]
    if broken:
        pytest.fail("the emulator broke the Kynasmith contract:\n" + "\n".join(broken[:5]))


_contract_checks: list[ContractCheck] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for check in _contract_checks:
        terminalreporter.write_line(
            "Kynasmith contract (kynasmith-contracts 0.1.0 + SDK REST models): "
            f"{check.validated['rest']} REST bodies and {check.validated['realtime']} realtime "
            f"messages validated, {len(check.failures)} failures; without a contract model: "
            f"{dict(check.uncovered) or 'none'}"
        )
    if not _contract_checks:
        reason = kynasmith_contract_module.load()
        if isinstance(reason, str):
            terminalreporter.write_line(f"Kynasmith contract checks OFF: {reason}")
