"""Floor plans for the simulated mesh: node places and pairwise link quality.

Link quality is a delivery probability between 0 and 1, the same for both
directions. The Intel Berkeley lab plan is read from the original files when
a folder is given; the generated plans need no data files.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from citymesh.errors import ConfigError

logger = logging.getLogger(__name__)

INTEL_LOCATIONS = "mote_locs.txt"
INTEL_CONNECTIVITY = "connectivity.txt"


@dataclass(frozen=True, slots=True)
class Place:
    """A spot on the plan where a node sits, in metres."""

    key: str
    x: float
    y: float
    room: str = ""


@dataclass(frozen=True)
class FloorPlan:
    """Places and the delivery probability of each pair of them."""

    name: str
    places: tuple[Place, ...]
    links: dict[frozenset[str], float] = field(default_factory=dict)
    source: str = ""

    def quality(self, a: str, b: str) -> float:
        """Return the delivery probability between places `a` and `b`."""
        if a == b:
            return 0.0
        return self.links.get(frozenset((a, b)), 0.0)

    def place(self, key: str) -> Place:
        """Return the place called `key`."""
        for place in self.places:
            if place.key == key:
                return place
        raise KeyError(f"no place {key!r} on the plan {self.name!r}")


def load_intel_lab(folder: Path) -> FloorPlan:
    """Read the Intel Berkeley lab's mote positions and measured delivery rates.

    connectivity.txt gives, per directed pair, the share of messages the
    receiver got. A pair's quality here is the mean of the directions present,
    because mote 31 never appears as a sender. Receiver 0, the lab's base
    station, has no position and is left out.
    """
    locations = folder / INTEL_LOCATIONS
    connectivity = folder / INTEL_CONNECTIVITY
    for path in (locations, connectivity):
        if not path.is_file():
            raise ConfigError(
                f"Intel lab file {path} not found; give the folder that contains "
                f"{INTEL_LOCATIONS} and {INTEL_CONNECTIVITY}"
            )
    places: list[Place] = []
    for line in locations.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) != 3:
            continue
        mote, x, y = fields
        places.append(Place(f"mote-{int(mote)}", float(x), float(y)))
    known = {p.key for p in places}
    directed: dict[tuple[str, str], float] = {}
    for line in connectivity.read_text().splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue  # one line of the original file has no probability
        sender, receiver = f"mote-{int(fields[0])}", f"mote-{int(fields[1])}"
        if sender in known and receiver in known and sender != receiver:
            directed[(sender, receiver)] = float(fields[2])
    links: dict[frozenset[str], float] = {}
    for (a, b), forward in directed.items():
        pair = frozenset((a, b))
        if pair in links:
            continue
        backward = directed.get((b, a))
        links[pair] = forward if backward is None else (forward + backward) / 2
    logger.info(
        "Intel lab plan: %d motes, %d links read from %s",
        len(places),
        sum(1 for q in links.values() if q > 0),
        folder,
    )
    return FloorPlan("intel-lab", tuple(places), links, source=str(folder))


def distance_quality(
    reach_m: float, width_m: float, seed: int
) -> Callable[[Place, Place], float]:
    """Return a link model: delivery falls from 1 to 0 around `reach_m` metres.

    The logistic curve stands in for log-distance path loss; a fixed random
    term per pair (plus or minus 0.08) gives the spread that walls and
    furniture cause, reproducibly for a given seed.
    """

    def quality(a: Place, b: Place) -> float:
        distance = math.dist((a.x, a.y), (b.x, b.y))
        base = 1.0 / (1.0 + math.exp((distance - reach_m) / width_m))
        jitter = random.Random(f"{seed}:{min(a.key, b.key)}:{max(a.key, b.key)}")
        return min(1.0, max(0.0, base + jitter.uniform(-0.08, 0.08)))

    return quality


def plan_from_places(
    name: str, places: list[Place], model: Callable[[Place, Place], float]
) -> FloorPlan:
    """Build a plan whose link qualities come from a distance model."""
    links: dict[frozenset[str], float] = {}
    for i, a in enumerate(places):
        for b in places[i + 1 :]:
            q = model(a, b)
            if q > 0.01:
                links[frozenset((a.key, b.key))] = round(q, 4)
    return FloorPlan(name, tuple(places), links, source="generated")


def generated_office(rooms: int = 20, seed: int = 7) -> FloorPlan:
    """Generate an office floor: rooms on both sides of a corridor.

    Rooms are 6 m wide and 5 m deep; a 3 m corridor runs along y = 5..8. Each
    room has a place in its middle (for a sensor node) and one in the
    corridor at its door (for a router). The gateway sits at the west end of
    the corridor.
    """
    per_side = math.ceil(rooms / 2)
    places = [Place("gateway", 0.5, 6.5, "server room")]
    for k in range(rooms):
        side, column = divmod(k, per_side)
        x = 3.0 + 6.0 * column
        room = f"room-{k + 1}"
        y_room = 2.5 if side == 0 else 10.5
        y_door = 5.5 if side == 0 else 7.5
        places.append(Place(f"{room}-sensor", x, y_room, room))
        places.append(Place(f"{room}-door", x + 1.5, y_door, room))
    return plan_from_places(
        "generated-office", places, distance_quality(9.0, 1.5, seed)
    )


def generated_city_block(streets: int = 6, seed: int = 11) -> FloorPlan:
    """Generate a city district: a street grid with lamp-post routers.

    Streets run every 80 m in both directions. Routers stand on lamp posts
    every 40 m along the streets, and sensor nodes sit on the buildings
    between them. The gateway is at the south-west corner, so the far corner
    lies many hops away.
    """
    spacing = 80.0
    places = [Place("gateway", -5.0, -5.0, "depot")]
    extent = spacing * (streets - 1)
    posts: set[tuple[float, float]] = set()
    for i in range(streets):
        for step in range(int(extent // 40) + 1):
            posts.add((i * spacing, step * 40.0))
            posts.add((step * 40.0, i * spacing))
    for x, y in sorted(posts):
        places.append(Place(f"post-{int(x)}-{int(y)}", x, y, "street"))
    for bx in range(streets - 1):
        for by in range(streets - 1):
            for dx, dy in ((20.0, 20.0), (60.0, 60.0), (20.0, 60.0), (60.0, 20.0)):
                x, y = bx * spacing + dx, by * spacing + dy
                places.append(
                    Place(f"bldg-{int(x)}-{int(y)}", x, y, f"block-{bx}-{by}")
                )
    return plan_from_places(
        "generated-city-block", places, distance_quality(50.0, 4.0, seed)
    )
