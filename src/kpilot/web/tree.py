"""The strategy tree (`/tree`): vision -> objectives -> North Star -> board KPIs -> their measured leading
indicators, drawn as a layered graph in server-rendered SVG, and given again as a nested list (for screen readers
and phones).

Nothing is judged here: each card shows its metric as the board's tile does (`views.tile`), and the arrows are the
analysis' lead-lag edges. This module places the cards (plain arithmetic, no JavaScript) and words them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.i18n import VERDICT_COLOURS, VERDICT_LABELS, VERDICT_SHAPES
from kpilot.insights import LeadLagEdge
from kpilot.model import KpilotError
from kpilot.model.errors import render
from kpilot.model.workspace import Workspace
from kpilot.service import MetricStatus
from kpilot.web import views
from kpilot.web.insight_views import LeadRow, lead_rows, metric_name
from kpilot.web.settings import Forms
from kpilot.web.state import WorkspaceGate
from kpilot.web.views import N_, Page

KIND_WORDS = {"vision": N_("Vision"), "objective": N_("Objective"), "north_star": N_("North Star"),
              "kpi": N_("board KPI"), "leader": N_("Leading indicator"), "metric": N_("metric")}

# The drawing's measures, in SVG units (CSS pixels when the drawing is not scaled down).
SLOT = 220  # the room of one card in a row, gap included
CARD_W = 200  # a metric's card
OBJECTIVE_W = 340
VISION_W = 640
MAX_PER_ROW = 5  # more cards than this in a level go on several rows: wider would scale the text down
MIN_WIDTH = 4 * SLOT
ROW_GAP = 54  # between rows
LABEL_GAP = 78  # between rows where the leads' labels go
CLEAR = 10  # between an edge that crosses a row and the cards beside it
PAD = 8
SPARK_W, SPARK_H = 64, 24  # at most: narrower when the value needs the room
SPARK_MIN = 36
LOOP = 46  # how far below its row an edge between two cards of one row dips


# --- what the tree holds ---------------------------------------------------------------------------


@dataclass
class Node:
    id: str
    kind: str  # vision | objective | north_star | kpi | leader | metric
    title: str
    level: int
    order: int  # the workspace's order, to break ties
    key: str | None = None  # a metric's key
    tile: views.Tile | None = None  # the metric as the board's tile words it (None: it could not be computed)
    note: str | None = None


@dataclass(frozen=True)
class Link:
    upper: str  # a node id: the parent, or the follower of a lead
    lower: str
    kind: str  # structure | measures (an objective's metric) | lead
    edge: LeadLagEdge | None = None


@dataclass
class Strategy:
    nodes: dict[str, Node]
    links: list[Link]
    rest: list[LeadLagEdge]  # measured leads that do not hang in the tree


def tree_metrics(ws: Workspace, edges: Iterable[LeadLagEdge]) -> list[str]:
    """Every metric the tree shows: the North Star, the board, the objectives' metrics, their measured leaders."""
    keys = ([ws.north_star] if ws.north_star else []) + [k for k in ws.board if k != ws.north_star]
    followers = set(keys)
    keys += [e.leader for e in edges if e.follower in followers]
    keys += [k for obj in (ws.vision.objectives if ws.vision else []) for k in obj.metrics]
    return [k for i, k in enumerate(keys) if k in ws.metric_keys and k not in keys[:i]]


def strategy(statuses: Mapping[str, MetricStatus], edges: Sequence[LeadLagEdge], page: Page) -> Strategy:
    """The tree's nodes by level and its links: vision -> objectives -> North Star -> board KPIs -> the leaders
    measured for them (a leader of the North Star sits beside the KPIs); an objective links the metrics it names."""
    ws, tr = page.ws, page.tr
    nodes: dict[str, Node] = {}
    links: list[Link] = []
    vision = ws.vision
    objectives = vision.objectives if vision else []
    level = 0

    def add(node: Node) -> Node:
        nodes[node.id] = node
        return node

    def metric(key: str, kind: str, at: int) -> Node:
        s = statuses.get(key)
        return add(Node(id=f"metric:{key}", kind=kind, title=metric_name(key, page), level=at, order=len(nodes),
                        key=key, tile=views.tile(s, views.judged_rows(s, page), page) if s is not None else None))

    title = str(vision.statement) if vision else str(ws.title or ws.workspace)
    root = add(Node(id="vision", kind="vision", title=title, level=level, order=0))
    if vision and vision.horizon:
        root.note = tr("by {date}").format(date=page.day(vision.horizon))
    if objectives:
        level += 1
    for i, obj in enumerate(objectives):
        add(Node(id=f"objective:{i}", kind="objective", title=str(obj.statement), level=level, order=i))
        links.append(Link("vision", f"objective:{i}", "structure"))
    north = None
    if ws.north_star:
        level += 1
        north = metric(ws.north_star, "north_star", level)
    kpis = [metric(k, "kpi", level + 1) for k in ws.board if k != ws.north_star]
    named = {k for obj in objectives for k in obj.metrics}
    if north is not None:
        links += [Link(north.id, k.id, "structure") for k in kpis]
        if north.key not in named:
            links.append(Link("vision", north.id, "structure"))
    else:
        links += [Link("vision", k.id, "structure") for k in kpis if k.key not in named]
    used: set[tuple[str, str]] = set()
    for follower in [n for n in (north, *kpis) if n is not None]:
        for e in edges:
            if e.follower != follower.key or e.leader not in ws.metric_keys:
                continue
            leader = nodes.get(f"metric:{e.leader}") or metric(e.leader, "leader", follower.level + 1)
            links.append(Link(follower.id, leader.id, "lead", e))
            used.add((e.leader, e.follower))
    below = level + 2 if kpis else level + 1  # an objective's other metrics: under the board, beside its leaders
    for i, obj in enumerate(objectives):
        for k in obj.metrics:
            if k in ws.metric_keys:
                target = nodes.get(f"metric:{k}") or metric(k, "metric", below)
                links.append(Link(f"objective:{i}", target.id, "measures"))
    rest = [e for e in edges if (e.leader, e.follower) not in used]
    return Strategy(nodes=nodes, links=links, rest=rest)


def kind_words(kind: str, page: Page) -> str:
    """What a card is: "Vision", "Objective", "★ North Star", "board KPI", "Leading indicator", "metric"."""
    return ("★ " if kind == "north_star" else "") + page.tr(KIND_WORDS[kind])


def lag_words(e: LeadLagEdge, page: Page) -> str:
    """The lead's lag in periods of the grain it was measured at, singular or plural: "1 week", "4 weeks"."""
    return views.lag_words(e, page)


def correlation(e: LeadLagEdge, page: Page) -> str:
    """The lead's strength as the board's tiles write it: "r = 0.62" ("r = 0,62")."""
    return page.tr("r = {r}").format(r=page.number(e.correlation))


# --- the graph: layered layout ---------------------------------------------------------------------


@dataclass
class Text:
    x: float
    y: float
    text: str
    css: str  # the class the stylesheet draws it with
    role: str = ""  # data-role, for the tests and the list
    href: str | None = None


@dataclass
class Spark:
    """A sparkline: the value's polyline, the target's dashed one, and the last period as a dot."""

    value: str
    target: str
    last_x: float
    last_y: float
    last_status: str
    last_complete: bool


@dataclass
class Card:
    node: Node
    kind_label: str
    x: float = 0.0  # top left corner
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    texts: list[Text] = field(default_factory=list)
    spark: Spark | None = None
    title: str = ""  # the tooltip: the card in one sentence
    href: str | None = None

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass
class Edge:
    kind: str  # structure | measures | lead
    upper: str
    lower: str
    d: str  # the SVG path
    leader: str = ""
    follower: str = ""
    lag: str = ""
    r: str = ""
    title: str = ""
    label_x: float = 0.0  # the label's centre
    label_y: float = 0.0
    label_w: float = 0.0


@dataclass
class Graph:
    width: float
    height: float
    cards: list[Card]
    edges: list[Edge]


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """About how wide `text` is in a sans-serif font of `size` px (an estimate on the wide side)."""
    width = 0.0
    for ch in text:
        if ch in "iljtf.,;:'|!()[] ·Iı\u202f\u00a0":
            width += 0.33
        elif ch in "mwMW—%@€":
            width += 0.9
        elif ch.isupper() or ch.isdigit():
            width += 0.7 if ch.isupper() else 0.6
        else:
            width += 0.57
    return width * size * (1.08 if bold else 1.0)


def wrap(text: str, width: float, size: float, lines: int, *, bold: bool = False) -> list[str]:
    """`text` in at most `lines` lines of at most `width` px; the last one ends with "…" when cut."""
    out: list[str] = []
    words = text.split()
    line = ""
    for i, word in enumerate(words):
        tried = f"{line} {word}".strip()
        if text_width(tried, size, bold=bold) <= width or not line:
            line = tried
            continue
        out.append(line)
        line = word
        if len(out) == lines:
            line = " ".join(words[i:])
            break
    cut = len(out) == lines  # words were left over
    if not cut and line:
        out.append(line)
    for i, x in enumerate(out):  # the last line of a cut text, and a word longer than a line, end with "…"
        if (cut and i == len(out) - 1) or text_width(x, size, bold=bold) > width:
            while x and text_width(x + "…", size, bold=bold) > width:
                x = x[:-1].rstrip()
            out[i] = x + "…"
    return out


def layout(st: Strategy, page: Page) -> Graph:
    """Cards placed level by level (rows of at most MAX_PER_ROW, spread evenly, each in the order of its parents'
    places), the edges as cubic Bézier curves between the cards' anchors, the edges' labels kept apart."""
    levels: dict[int, list[Node]] = {}
    for n in st.nodes.values():
        levels.setdefault(n.level, []).append(n)
    parents: dict[str, list[str]] = {}
    for link in st.links:
        parents.setdefault(link.lower, []).append(link.upper)
    rows: list[list[Node]] = []
    place: dict[str, float] = {}  # a node's place across its row, 0..1
    for lv in sorted(levels):
        def centre(n: Node) -> float:
            seen = [place[p] for p in parents.get(n.id, []) if p in place]
            return sum(seen) / len(seen) if seen else 0.5
        ordered = sorted(levels[lv], key=lambda n: (centre(n), n.order))
        count = -(-len(ordered) // MAX_PER_ROW)
        size = -(-len(ordered) // count)
        for r in range(count):
            row = ordered[r * size:(r + 1) * size]
            rows.append(row)
            for i, n in enumerate(row):
                place[n.id] = (i + 0.5) / len(row)
    row_of = {n.id: r for r, row in enumerate(rows) for n in row}
    # The gaps (numbered by the row above) where the leads' labels go: next to the leader, or under a loop.
    ends = [(row_of[link.upper], row_of[link.lower]) for link in st.links if link.kind == "lead"]
    labelled = {u if u == low else max(u, low) - 1 for u, low in ends}
    width = max(MIN_WIDTH, max(len(r) for r in rows) * SLOT)
    cards: dict[str, Card] = {}
    bands: list[Band] = []
    y = float(PAD)
    for r, row in enumerate(rows):
        slot = width / len(row)
        made = [_card(n, slot, page) for n in row]
        height = max(c.h for c in made)
        for i, c in enumerate(made):
            c.x, c.y, c.h = round(slot * (i + 0.5) - c.w / 2, 1), y, height
            _fill(c, page)
            cards[c.node.id] = c
        bands.append(Band(top=y, bottom=y + height, spans=[(c.x, c.x + c.w) for c in made]))
        y += height + (LABEL_GAP if r in labelled else ROW_GAP)
    edges = _edges(st, cards, row_of, bands, width, page)
    bottom = max([bands[-1].bottom + PAD, *(e.label_y + 18 for e in edges if e.kind == "lead")])
    ordered_cards = [cards[n.id] for row in rows for n in row]
    return Graph(width=width, height=round(bottom), cards=ordered_cards, edges=edges)


@dataclass(frozen=True)
class Band:
    """A row of cards: its top and bottom, and the stretches its cards cover across the drawing."""

    top: float
    bottom: float
    spans: list[tuple[float, float]]

    def through(self, x: float, width: float) -> float:
        """`x`, or the nearest place beside the cards where an edge can cross the row without crossing a card."""
        for left, right in self.spans:
            if left - CLEAR < x < right + CLEAR:
                sides = [v for v in (left - CLEAR, right + CLEAR) if 0 <= v <= width]
                return min(sides, key=lambda v: abs(v - x)) if sides else x
        return x


def _card(n: Node, slot: float, page: Page) -> Card:
    """A card's size and its title's lines (placed later, once the row's height is known)."""
    card = Card(node=n, kind_label=kind_words(n.kind, page))
    if n.kind == "vision":  # alone in its row
        card.w = min(VISION_W, slot - 2 * PAD)
        lines = wrap(n.title, card.w - 24, 14.5, 3)
        card.h = 35 + 19 * len(lines) + (20 if n.note else 0)
    elif n.kind == "objective":
        card.w = min(OBJECTIVE_W, slot - 24)
        lines = wrap(n.title, card.w - 24, 13, 4)
        card.h = 35 + 17 * len(lines)
    else:
        card.w = min(CARD_W, slot - 20)
        lines = wrap(n.title, card.w - 24, 13.5, 2, bold=True)
        card.h = 95 + 17 * len(lines)
        card.href = f"/metric/{n.key}{page.query()}"
    card.texts = [Text(0, 0, line, "name", "name") for line in lines]
    return card


def _fill(c: Card, page: Page) -> None:
    """The card's texts at their places, its sparkline and its one-sentence title."""
    n, tr = c.node, page.tr
    x0, y0 = c.x + 12, c.y
    texts = [Text(x0, y0 + 20, c.kind_label, "kind", "kind")]
    line_h = 19 if n.kind == "vision" else 17
    first = 40 if n.kind == "vision" else 38
    for i, line in enumerate(c.texts):
        texts.append(Text(x0, y0 + first + line_h * i, line.text, f"name name-{n.kind}", "name", href=c.href))
    y = y0 + first + line_h * (len(c.texts) - 1)
    if n.note:
        texts.append(Text(x0, y + 20, n.note, "note", "note"))
    c.title = n.title
    t = n.tile
    if t is not None:
        target = tr("target {target}").format(target=t.target)
        texts += [Text(x0, y + 25, t.value, "value", "value"),
                  Text(x0, y + 43, target, "target", "target"),
                  Text(x0, y + 62, t.shape, f"shape st-{t.status}", "shape"),
                  Text(x0 + 15, y + 62, t.status_label, "verdict", "verdict")]
        room = c.w - 24 - text_width(t.value, 15.5, bold=True) - 10  # beside the value, right-aligned
        if room >= SPARK_MIN:
            width = min(SPARK_W, room)  # the periods the tile's sparkline draws
            c.spark = _spark(t.spark["data"]["values"], c.x + c.w - 12 - width, y + 6, width)
        c.title = tr("{name}: {value} ({target}), {verdict}").format(name=n.title, value=t.value, target=target,
                                                                     verdict=t.status_label)
        if t.no_data_reason:
            c.title += f" — {t.no_data_reason}"
    c.texts = texts


def _spark(rows: Sequence[Mapping[str, Any]], x: float, y: float, width: float) -> Spark | None:
    """The last periods' values as a polyline in a `width` x SPARK_H box at (x, y), the target dashed."""
    values = [r.get("value") for r in rows]
    targets = [r.get("target") for r in rows]
    known = [float(v) for v in (*values, *targets) if isinstance(v, int | float)]
    if len(rows) < 2 or not any(isinstance(v, int | float) for v in values):
        return None
    low, high = min(known), max(known)
    span = (high - low) or abs(high) or 1.0
    step = width / (len(rows) - 1)

    def at(i: int, v: float) -> tuple[float, float]:
        return round(x + i * step, 2), round(y + SPARK_H - (v - low) / span * SPARK_H, 2)

    def line(series: list[Any]) -> str:
        return " ".join(f"{px},{py}" for px, py in (at(i, float(v)) for i, v in enumerate(series)
                                                    if isinstance(v, int | float)))

    last = max(i for i, v in enumerate(values) if isinstance(v, int | float))
    lx, ly = at(last, float(values[last]))  # type: ignore[arg-type]
    return Spark(value=line(values), target=line(targets), last_x=lx, last_y=ly,
                 last_status=str(rows[last].get("status") or "none"),
                 last_complete=bool(rows[last].get("complete", True)))


def _edges(st: Strategy, cards: Mapping[str, Card], row_of: Mapping[str, int], bands: Sequence[Band],
           width: float, page: Page) -> list[Edge]:
    """Each link as a curve from the lower card's top to the upper card's bottom, through the gaps of the rows in
    between (never across a card); between two cards of one row, a loop below it. The anchors of a card's edges
    spread along its side in the order of their other ends; a lead is drawn from its leader to its follower."""
    sides: dict[Link, tuple[str, str]] = {}  # the side of the link's upper, then of its lower card
    ends: dict[tuple[str, str], list[tuple[float, Link]]] = {}  # (card, side) -> (the other end's x, link)
    for link in st.links:
        ru, rl = row_of[link.upper], row_of[link.lower]
        sides[link] = ("bottom", "bottom") if ru == rl else ("bottom", "top") if ru < rl else ("top", "bottom")
        ends.setdefault((link.upper, sides[link][0]), []).append((cards[link.lower].cx, link))
        ends.setdefault((link.lower, sides[link][1]), []).append((cards[link.upper].cx, link))
    anchor: dict[tuple[Link, str], float] = {}
    for (cid, _), found in ends.items():
        c = cards[cid]
        found.sort(key=lambda f: f[0])
        gap = min(22.0, c.w * 0.6 / max(1, len(found) - 1))
        for i, (_, link) in enumerate(found):
            anchor[(link, cid)] = c.cx + (i - (len(found) - 1) / 2) * gap
    out = []
    for link in st.links:
        ru, rl = row_of[link.upper], row_of[link.lower]
        up, low = cards[link.upper], cards[link.lower]
        a = (anchor[(link, link.upper)], up.y + up.h if sides[link][0] == "bottom" else up.y)
        b = (anchor[(link, link.lower)], low.y + low.h if sides[link][1] == "bottom" else low.y)
        if ru == rl:
            dip = max(a[1], b[1]) + LOOP
            d = _path([b, a], dip=dip)
            mid = (a[0] + b[0]) / 2, dip - LOOP / 4
        else:
            top, bottom = (a, b) if ru < rl else (b, a)
            points = [bottom]
            for r in range(max(ru, rl) - 1, min(ru, rl), -1):  # the rows in between, upwards
                px, py = points[-1]
                middle = (bands[r].top + bands[r].bottom) / 2
                x = bands[r].through(px + (top[0] - px) * (py - middle) / (py - top[1]), width)
                points += [(x, bands[r].bottom), (x, bands[r].top)]
            points.append(top)
            mid = (points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2
            d = _path(points if bottom is b else points[::-1])  # drawn from the lower card to the upper one
        edge = Edge(kind=link.kind, upper=link.upper, lower=link.lower, d=d, label_x=round(mid[0], 1),
                    label_y=round(mid[1], 1))
        if link.edge is not None:
            e = link.edge
            edge.leader, edge.follower = e.leader, e.follower
            edge.lag, edge.r = lag_words(e, page), correlation(e, page)
            edge.label_w = round(max(text_width(edge.lag, 11.5, bold=True), text_width(edge.r, 11)) + 14, 1)
            edge.title = page.tr("{leader} leads {follower} by {lag} ({r})").format(
                leader=metric_name(e.leader, page), follower=metric_name(e.follower, page), lag=edge.lag, r=edge.r)
        out.append(edge)
    _apart([e for e in out if e.kind == "lead"], width)
    return out


def _path(points: Sequence[tuple[float, float]], *, dip: float | None = None) -> str:
    """An SVG path through `points`: cubic curves leaving and reaching each point vertically, straight up or down
    through a row's gap (every second stretch, when there are rows in between); with `dip`, a loop down to it."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    if dip is not None:
        (x1, y1), = rest
        return f"{d[0]} C{x0:.1f},{dip:.1f} {x1:.1f},{dip:.1f} {x1:.1f},{y1:.1f}"
    for i, (x1, y1) in enumerate(rest):
        if i % 2:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            ym = (y0 + y1) / 2
            d.append(f"C{x0:.1f},{ym:.1f} {x1:.1f},{ym:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(d)


def _apart(labelled: list[Edge], width: float) -> None:
    """Labels at about the same height pushed sideways until they no longer overlap, and kept in the drawing."""
    rows: dict[int, list[Edge]] = {}
    for e in labelled:
        rows.setdefault(round(e.label_y / 24), []).append(e)
    for row in rows.values():
        row.sort(key=lambda e: e.label_x)
        for a, b in pairwise(row):
            b.label_x = max(b.label_x, a.label_x + (a.label_w + b.label_w) / 2 + 6)
        over = row[-1].label_x + row[-1].label_w / 2 - width
        for e in row:
            e.label_x = round(max(e.label_w / 2, e.label_x - max(0.0, over)), 1)


# --- the same tree as a nested list ----------------------------------------------------------------


@dataclass
class TreeNode:
    """A node of the list: the graph's card, with its children; on a leader, the lead's lag and strength."""

    kind: str
    kind_label: str
    title: str
    key: str | None = None
    tile: views.Tile | None = None
    edge: str | None = None
    note: str | None = None
    children: list[TreeNode] = field(default_factory=list)


def as_list(st: Strategy, page: Page) -> TreeNode:
    """The graph as a tree: each node under its first parent, a leader under every KPI it leads instead (first
    among its children); an objective names the metrics it links that hang elsewhere."""
    tr = page.tr

    def item(n: Node, kind: str | None = None) -> TreeNode:
        kind = kind or n.kind
        return TreeNode(kind=kind, kind_label=kind_words(kind, page), title=n.title, key=n.key, tile=n.tile,
                        note=n.note)

    leaders = {link.lower for link in st.links if link.kind == "lead"}
    first: dict[str, Link] = {}
    for link in st.links:
        if link.kind == "structure" or (link.kind == "measures" and link.lower not in leaders):
            first.setdefault(link.lower, link)
    built: dict[str, TreeNode] = {nid: item(n) for nid, n in st.nodes.items()}
    elsewhere: dict[str, list[str]] = {}
    for link in st.links:
        parent, child = built[link.upper], st.nodes[link.lower]
        if link.kind == "lead" and link.edge is not None:
            leader = item(child, "leader")
            leader.edge = tr("{lag} ahead, {r}").format(lag=lag_words(link.edge, page), r=correlation(link.edge, page))
            parent.children.append(leader)
        elif first.get(child.id) is link:
            parent.children.append(built[child.id])
        elif link.kind == "measures":
            elsewhere.setdefault(link.upper, []).append(child.title)
    for nid, names in elsewhere.items():
        built[nid].note = tr("measured by {metrics}").format(metrics=", ".join(names))
    for node in built.values():  # a KPI's leaders right under it: after its last KPI they read as that KPI's
        node.children.sort(key=lambda c: c.kind != "leader")
    return built["vision"]


def others(st: Strategy, page: Page) -> list[LeadRow]:
    """The measured leads that do not hang in the tree (their follower is off the board)."""
    rows = lead_rows(st.rest, page, other="leader")
    for row, e in zip(rows, st.rest, strict=True):
        row.follower, row.follower_name = e.follower, metric_name(e.follower, page)
    return rows


# --- the page --------------------------------------------------------------------------------------


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /tree on the app: the page is cached per language, date and version of the workspace's files."""

    def build(request: Request, page: Page) -> tuple[bytes, str]:
        analysis = gate.analysis(page.as_of)
        errors = [render(r, page.tr) for r in analysis.errors.values()]
        statuses = {s.key: s for s in gate.board(page.as_of)}
        for key in tree_metrics(page.ws, analysis.edges):
            if key not in statuses:  # a leader or an objective's metric off the board: its card says why it is empty
                try:
                    statuses[key] = gate.status(key, page.as_of)
                except KpilotError as exc:
                    errors.append(render(exc.message, page.tr))
        st = strategy(statuses, analysis.edges, page)
        legend = [(VERDICT_SHAPES[v], VERDICT_COLOURS[v], page.tr(words)) for v, words in VERDICT_LABELS.items()]
        answer = forms.html(request, "tree.html", page, graph=layout(st, page), root=as_list(st, page),
                            others=others(st, page), legend=legend, analysis_errors=errors)
        return bytes(answer.body), answer.headers["content-security-policy"]

    @app.get("/tree", response_class=HTMLResponse)
    async def tree(request: Request) -> Response:
        """The strategy tree: vision, objectives, North Star, board KPIs and their measured leading indicators."""
        page = forms.page_of(request)
        key = ("page", page.lang, page.as_of, request.url.path, request.url.query, "")
        found: tuple[bytes, str] | None = gate.peek(key)
        if found is None:
            found = await run_in_threadpool(gate.remember, key, lambda: build(request, page))
        body, csp = found
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})


__all__ = ["Card", "Edge", "Graph", "Strategy", "TreeNode", "as_list", "layout", "others", "register",
           "strategy", "tree_metrics"]
