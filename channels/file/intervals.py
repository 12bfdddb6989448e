"""A set of integers stored as sorted, disjoint half-open ranges: the file channel's queue of sequence numbers."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["IntervalSet"]


class IntervalSet:
    """Sorted disjoint ``[start, end)`` ranges with a running count. Not thread-safe (callers hold a lock).

    The channel's queue is nearly always one or a few ranges (puts arrive in sequence order and are taken from
    the head), so the list stays short and the operations are cheap.
    """

    __slots__ = ("_starts", "_ends", "count")

    def __init__(self, ranges: list[tuple[int, int]] | None = None):
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.count = 0
        for s, e in ranges or ():
            self.add(s, e)

    def __len__(self) -> int:
        return self.count

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``, which must not overlap what is already there."""
        if start >= end:
            return
        starts, ends = self._starts, self._ends
        if not starts or start >= ends[-1]:  # the common case: append at the tail
            if starts and start == ends[-1]:
                ends[-1] = end
            else:
                starts.append(start)
                ends.append(end)
            self.count += end - start
            return
        i = bisect_right(starts, start)
        if (i > 0 and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            raise ValueError(f"range [{start}, {end}) overlaps the set")
        merge_left = i > 0 and ends[i - 1] == start
        merge_right = i < len(starts) and starts[i] == end
        if merge_left and merge_right:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif merge_left:
            ends[i - 1] = end
        elif merge_right:
            starts[i] = start
        else:
            starts.insert(i, start)
            ends.insert(i, end)
        self.count += end - start

    def remove(self, start: int, end: int) -> int:
        """Remove whatever of ``[start, end)`` is present; returns how many numbers were removed."""
        starts, ends = self._starts, self._ends
        removed = 0
        i = max(bisect_right(starts, start) - 1, 0)
        while i < len(starts) and starts[i] < end:
            s, e = starts[i], ends[i]
            if e <= start:
                i += 1
                continue
            lo, hi = max(s, start), min(e, end)
            removed += hi - lo
            if s < lo and hi < e:  # split in two
                ends[i] = lo
                starts.insert(i + 1, hi)
                ends.insert(i + 1, e)
                break
            if s < lo:
                ends[i] = lo
                i += 1
            elif hi < e:
                starts[i] = hi
                break
            else:
                del starts[i], ends[i]
        self.count -= removed
        return removed

    def pop_head(self, n: int) -> list[tuple[int, int]]:
        """Remove and return the lowest ``n`` numbers (fewer if the set is smaller), as ranges."""
        out: list[tuple[int, int]] = []
        starts, ends = self._starts, self._ends
        while n > 0 and starts:
            s, e = starts[0], ends[0]
            if e - s <= n:
                out.append((s, e))
                n -= e - s
                self.count -= e - s
                del starts[0], ends[0]
            else:
                out.append((s, s + n))
                starts[0] = s + n
                self.count -= n
                n = 0
        return out

    def count_in(self, start: int, end: int) -> int:
        """How many numbers of ``[start, end)`` are in the set."""
        starts, ends = self._starts, self._ends
        total = 0
        i = max(bisect_left(ends, start + 1) , 0)
        while i < len(starts) and starts[i] < end:
            total += max(0, min(ends[i], end) - max(starts[i], start))
            i += 1
        return total
