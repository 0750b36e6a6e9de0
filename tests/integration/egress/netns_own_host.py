"""Run inside a private network namespace (`unshare -rn`) by test_own_host.py: gives loopback a
public-looking address of this host, then asks a real egress listener to reach it. Writes JSON to the
file named by its argument.

Nothing here can leave the namespace: it has no interface but lo.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.budget.sqlite import SqliteStore
from proxy.egress.config import EgressConfig
from proxy.egress.own_addresses import OwnAddresses
from proxy.egress.resolver import ResolutionError, SystemResolver
from proxy.egress.server import start_egress
from proxy.telemetry.metrics import Metrics
from tests.integration.egress.conftest import KEYS, policy

OWN = "93.184.215.14"


async def status(port: int, authority: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"CONNECT {authority} HTTP/1.1\r\n\r\n".encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
        length = next((int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("Content-Length")), 0)
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        return f"{head.split(chr(13))[0]} {body.decode().strip()}"
    finally:
        writer.close()
        await writer.wait_closed()


async def main(state: Path) -> dict[str, Any]:
    accepted: list[str] = []

    async def service(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("sockname")[0])
        writer.close()

    server = await asyncio.start_server(service, "0.0.0.0", 0)
    service_port = server.sockets[0].getsockname()[1]
    result: dict[str, Any] = {}
    store = SqliteStore(state / "events.sqlite3")
    engine = policy()
    for name, allow in (("closed", []), ("open", [f"{OWN}/32:*"])):
        config = EgressConfig.model_validate({"enabled": True, "host": "0.0.0.0", "port": 0, "allow_internal": allow})
        egress = await start_egress(config, lambda: engine, store, Metrics(CollectorRegistry()), KEYS)
        try:
            result[name] = {
                "service": await status(egress.port, f"{OWN}:{service_port}"),
                "itself": await status(egress.port, f"{OWN}:{egress.port}"),
                "metadata": await status(egress.port, "169.254.169.254:80"),
            }
        finally:
            await egress.close()
    result["accepted"] = accepted
    server.close()
    await server.wait_closed()
    await store.close()
    try:
        await SystemResolver().resolve("nothing.example")
        result["dns"] = "resolved"
    except ResolutionError as exc:
        result["dns"] = str(exc)
    return result


def with_nonlocal_bind() -> dict[str, bool]:
    """What counts as own once this namespace lets sockets bind any address (last: it changes the namespace)."""
    Path("/proc/sys/net/ipv4/ip_nonlocal_bind").write_text("1")
    own = OwnAddresses([])
    return {"own": own.is_local(ip_address(OWN)), "loopback": own.is_local(ip_address("127.0.0.1"))}


if __name__ == "__main__":
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{OWN}/32", "dev", "lo"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(main(Path(tmp)))
    result["nonlocal_bind"] = with_nonlocal_bind()
    Path(sys.argv[1]).write_text(json.dumps(result))
