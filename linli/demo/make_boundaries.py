"""Make the demo's boundaries (linli/demo/boundaries.geojson): made-up but plausible polygons in Yangpu,
Shanghai, for the district 杨浦区 (310110), its streets 长海路街道 (310110012) and 新江湾城街道 (310110013)
and their communities (yangpu.yaml). Nothing here is a real boundary.

How: a lattice of cells over roughly lon 121.498-121.536, lat 31.300-31.340, each lattice point moved a
little at random (a fixed seed) and each cell edge bent at a moved midpoint. Every community is a set of
cells (LAYOUT); a polygon is the outline of its cells, walked along the shared lattice, so neighbours share
their edges point for point, a street is exactly the union of its communities and the district of its
streets. Outer rings run counter-clockwise (RFC 7946) and end where they start.

    .venv/bin/python -m linli.demo.make_boundaries            # rewrites boundaries.geojson
    .venv/bin/python -m linli.demo.make_boundaries --check    # exit 1 if the file is not what it makes

Import it with `linli nodes boundaries import linli/demo/boundaries.geojson` at each instance (features
outside an instance are skipped); `make up` does.
"""
import json
import pathlib
import sys
from random import Random

import yaml

HERE = pathlib.Path(__file__).parent
OUT = HERE / "boundaries.geojson"
SEED = 310110

# Cells, north row first; a letter or digit is a community (KEY), '.' is outside the district.
LAYOUT = [
    ". A A B B B . .",
    "A A A B B B D .",
    "C C A A B D D D",
    "C C C D D D D 5",
    "1 1 2 2 2 5 5 5",
    "1 1 2 2 3 3 5 5",
    ". 1 4 4 3 3 3 .",
]
KEY = {
    "1": "310110012001", "2": "310110012002", "3": "310110012003", "4": "310110012004", "5": "310110012005",
    "A": "310110013001", "B": "310110013002", "C": "310110013003", "D": "310110013004",
}
# The lattice's origin (south-west corner) and one cell's step east and north, in degrees; a slight shear
# tilts the grid the way Yangpu's roads run (north-north-east).
LON0, LAT0 = 121.4985, 31.3005
STEP_LON, STEP_LAT = 0.0046, 0.0056
SHEAR = 0.0009          # lon added per row northwards
JITTER = 0.22           # of a cell, for lattice points
BEND = 0.10             # of a cell, for an edge's midpoint, across the edge
DIGITS = 6              # ~0.1 m


def cells():
    """{(x, y): community code} with y = 0 the southern row."""
    rows = [r.split() for r in LAYOUT]
    out = {}
    for i, row in enumerate(rows):
        y = len(rows) - 1 - i
        for x, ch in enumerate(row):
            if ch != ".":
                out[(x, y)] = KEY[ch]
    return out


def lattice(width, height, rnd):
    """Moved lattice points {(i, j): (lon, lat)} and bent edge midpoints {frozenset of two points: (lon, lat)}."""
    points = {}
    for j in range(height + 1):
        for i in range(width + 1):
            dx, dy = rnd.uniform(-JITTER, JITTER), rnd.uniform(-JITTER, JITTER)
            points[(i, j)] = (LON0 + (i + dx) * STEP_LON + j * SHEAR, LAT0 + (j + dy) * STEP_LAT)
    mids = {}
    for j in range(height + 1):
        for i in range(width + 1):
            for a, b in (((i, j), (i + 1, j)), ((i, j), (i, j + 1))):
                if b not in points:
                    continue
                (x1, y1), (x2, y2) = points[a], points[b]
                # Across the edge, in cell units so east and north bend alike.
                ux, uy = (x2 - x1) / STEP_LON, (y2 - y1) / STEP_LAT
                norm = (ux * ux + uy * uy) ** 0.5
                s = rnd.uniform(-BEND, BEND)
                mids[frozenset((a, b))] = ((x1 + x2) / 2 - uy / norm * s * STEP_LON,
                                           (y1 + y2) / 2 + ux / norm * s * STEP_LAT)
    return points, mids


def outline(group):
    """The rings (lists of lattice points, closed) around a set of cells: outer rings counter-clockwise."""
    edges = set()
    for x, y in group:
        corners = [(x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1)]
        for k in range(4):
            edges.add((corners[k], corners[(k + 1) % 4]))
    edges = {e for e in edges if (e[1], e[0]) not in edges}
    nxt = {}
    for a, b in edges:
        if a in nxt:
            raise ValueError(f"cells meet only at a corner at {a}: change LAYOUT")
        nxt[a] = b
    rings = []
    while nxt:
        start = min(nxt)
        ring = [start]
        while True:
            b = nxt.pop(ring[-1])
            ring.append(b)
            if b == start:
                break
        rings.append(ring)
    return rings


def _area(ring):
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:])) / 2


def _crosses(p1, p2, q1, q2):
    def side(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (side(p1, p2, q1) * side(p1, p2, q2) < 0) and (side(q1, q2, p1) * side(q1, q2, p2) < 0)


def geometry(group, points, mids):
    rings = outline(group)
    if len(rings) != 1:
        raise ValueError("a group of cells must be one piece without holes: change LAYOUT")
    ring = rings[0]
    out = []
    for a, b in zip(ring, ring[1:]):
        out += [points[a], mids[frozenset((a, b))]]
    out.append(out[0])
    out = [[round(lon, DIGITS), round(lat, DIGITS)] for lon, lat in out]
    if _area(out) <= 0:
        raise ValueError("outer ring is not counter-clockwise")
    segments = list(zip(out, out[1:]))
    for i, s in enumerate(segments):
        for t in segments[i + 2:]:
            if _crosses(*s, *t):
                raise ValueError("ring crosses itself: lower JITTER or BEND")
    return {"type": "Polygon", "coordinates": [out]}


def collection():
    names = {i["code"]: i["name"] for i in yaml.safe_load((HERE / "yangpu.yaml").read_text(encoding="utf-8"))}
    where = cells()
    width = max(x for x, _ in where) + 1
    height = max(y for _, y in where) + 1
    points, mids = lattice(width, height, Random(SEED))
    communities = sorted(set(where.values()))
    groups = {c: {k for k, v in where.items() if v == c} for c in communities}
    for street in sorted({c[:9] for c in communities}):
        groups[street] = {k for k, v in where.items() if v.startswith(street)}
    groups["310110"] = set(where)
    features = [{"type": "Feature", "properties": {"code": code, "name": names[code]},
                 "geometry": geometry(groups[code], points, mids)} for code in sorted(groups, key=lambda c: (len(c), c))]
    return {"type": "FeatureCollection",
            "name": "linli demo boundaries (made up, not real): 杨浦区, 长海路街道, 新江湾城街道 and their communities",
            "features": features}


def render(doc):
    """One feature a line: small, and a change reads as a change of the features it touches."""
    head = json.dumps({k: v for k, v in doc.items() if k != "features"}, ensure_ascii=False)[:-1]
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in doc["features"]]
    return head + ', "features": [\n' + ",\n".join(lines) + "\n]}\n"


def main(argv):
    text = render(collection())
    if "--check" in argv:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT.name}: {'up to date' if same else 'differs from what make_boundaries.py makes'}")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT} written: {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
