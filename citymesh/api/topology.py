"""Mesh maps of the gateways and commands to the outputs of their nodes."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from citymesh.api import auth
from citymesh.errors import CommandTimeout, TransportError
from citymesh.protocol.topology import Topology
from citymesh.registry.models import GatewayRow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["topology"])

# The gateway command that switches node outputs (citymesh.gateway.iqrf).
OUTPUT_COMMAND = "iqrf_output"


class TopologySummary(BaseModel):
    """A gateway that reported a mesh map."""

    tenant: str
    gateway: str
    network: str
    sent_ms: int
    nodes: int
    online: int


class NodeOutputRequest(BaseModel):
    """Switch an output of a mesh node: an LED, an IO pin or a binary output."""

    output: Literal["ledr", "ledg", "io", "binary_output"]
    action: Literal["on", "off", "pulse", "flashing"] = "on"
    """For ledr and ledg."""
    port: Annotated[int, Field(ge=0, le=255)] | None = None
    mask: Annotated[int, Field(ge=0, le=255)] | None = None
    value: Annotated[int, Field(ge=0, le=255)] | None = None
    """For io: the port, the mask of pins to set and their values."""
    index: Annotated[int, Field(ge=0, le=31)] = 0
    on: bool | None = None
    """For binary_output: which output and its new state."""
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 30.0


class NodeOutputResult(BaseModel):
    """The node's response, as the gateway returned it."""

    ok: bool
    result: dict[str, Any]
    error: str


async def _visible_gateway(request: Request, tenant: str, gateway: str) -> None:
    registry = auth.scoped_context(request).registry
    known = await asyncio.to_thread(
        registry.list_rows, GatewayRow, tenant=tenant, gateway=gateway
    )
    if not known:
        raise HTTPException(
            404,
            f"gateway {tenant}/{gateway} not found; list gateways at /api/v1/gateways",
        )


def _latest(request: Request, tenant: str, gateway: str) -> Topology | None:
    collector = auth.scoped_context(request).collector
    if collector is None:
        raise HTTPException(404, "no collector runs in this process")
    return collector.topology.latest(tenant, gateway)


@router.get(
    "/topology",
    response_model=list[TopologySummary],
    summary="Gateways that reported a mesh map",
)
async def list_topologies(request: Request) -> list[TopologySummary]:
    """List the visible gateways with a mesh map and the size of each map."""
    registry = auth.scoped_context(request).registry
    gateways = await asyncio.to_thread(registry.list_rows, GatewayRow)
    summaries = []
    for row in gateways:
        topology = _latest(request, row.tenant, row.gateway)
        if topology is None:
            continue
        summaries.append(
            TopologySummary(
                tenant=row.tenant,
                gateway=row.gateway,
                network=topology.network,
                sent_ms=topology.sent_ms,
                nodes=len(topology.nodes),
                online=sum(1 for n in topology.nodes if n.online),
            )
        )
    return summaries


@router.get(
    "/gateways/{tenant}/{gateway}/topology",
    response_model=Topology,
    response_model_exclude_none=True,
    summary="The latest mesh map of a gateway",
    responses={404: {"description": "unknown gateway or no map yet"}},
)
async def gateway_topology(request: Request, tenant: str, gateway: str) -> Topology:
    """Return the map the gateway last reported: nodes, roles, parents, links."""
    await _visible_gateway(request, tenant, gateway)
    topology = _latest(request, tenant, gateway)
    if topology is None:
        raise HTTPException(404, f"gateway {tenant}/{gateway} has sent no mesh map")
    return topology


@router.post(
    "/gateways/{tenant}/{gateway}/nodes/{address}/commands",
    response_model=NodeOutputResult,
    summary="Switch an output of a mesh node and return the node's answer",
    responses={
        403: {"description": "the key may not command this node"},
        404: {"description": "unknown gateway"},
        503: {"description": "no broker connection"},
        504: {"description": "the gateway did not answer in time"},
    },
)
async def node_output(
    request: Request,
    tenant: str,
    gateway: str,
    address: Annotated[int, PathParam(ge=1, le=239)],
    body: NodeOutputRequest,
) -> NodeOutputResult:
    """Send the gateway an output command for one node and wait for the node."""
    args: dict[str, Any] = {
        "address": address,
        "output": body.output,
        # The actuator id lets API keys be granted per node.
        "actuator": f"node-{address}",
    }
    if body.output in ("ledr", "ledg"):
        args["action"] = body.action
    elif body.output == "io":
        if body.port is None or body.mask is None or body.value is None:
            raise HTTPException(422, "output io needs port, mask and value")
        args.update(port=body.port, mask=body.mask, value=body.value)
    else:
        if body.on is None:
            raise HTTPException(422, "output binary_output needs on: true or false")
        args.update(index=body.index, on=body.on)
    sender = await auth.command_sender(request, tenant, gateway, OUTPUT_COMMAND, args)
    if sender is None:
        raise HTTPException(503, "no collector runs in this process to send commands")
    await _visible_gateway(request, tenant, gateway)
    try:
        response = await sender.send_command(
            tenant, gateway, OUTPUT_COMMAND, args, body.timeout_s
        )
    except CommandTimeout as exc:
        raise HTTPException(504, str(exc)) from None
    except TransportError as exc:
        raise HTTPException(503, str(exc)) from None
    return NodeOutputResult(
        ok=response.ok, result=response.result, error=response.error
    )
