"""Graph algorithms shared by the float and fixed-point IRs (deterministic: ties by name)."""

from __future__ import annotations

import heapq

from ..errors import GraphError


def toposort(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Kahn's algorithm, always taking the smallest ready name; GraphError on a cycle."""
    indeg = dict.fromkeys(names, 0)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if a in succ and b in indeg:
            succ[a].append(b)
            indeg[b] += 1
    ready = [n for n in names if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in succ[node]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                heapq.heappush(ready, nxt)
    if len(order) != len(names):
        done = set(order)
        stuck = [n for n in names if n not in done]
        succ_stuck = {n: [m for m in succ[n] if m not in done] for n in stuck}
        on_cycle = [c for c in strongly_connected(stuck, succ_stuck)
                    if len(c) > 1 or c[0] in succ_stuck[c[0]]]
        stuck = sorted(on_cycle[0]) if on_cycle else sorted(stuck)
        raise GraphError("cycle without a delay (an algebraic loop)", node=stuck[0],
                         value=f"nodes {stuck[:6]} feed each other in the same step",
                         hint="a recurrent connection must read the previous step: give one "
                              "edge of the cycle delay 1")
    return order


def strongly_connected(names, succ) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the strongly connected components of ``succ``."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in names:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                out.append(group)
    return out
