"""The file channel's queue of sequence numbers: sorted disjoint ranges."""

from __future__ import annotations

import pytest

from channels.file.intervals import IntervalSet


def test_interval_set_operations() -> None:
    s = IntervalSet()
    s.add(10, 20)
    s.add(20, 30)
    s.add(0, 5)
    assert s.ranges() == [(0, 5), (10, 30)] and s.count == 25
    assert s.pop_head(7) == [(0, 5), (10, 12)]
    assert s.remove(15, 18) == 3 and s.ranges() == [(12, 15), (18, 30)]
    s.add(15, 18)
    assert s.ranges() == [(12, 30)]
    assert s.count_in(0, 13) == 1 and s.count_in(29, 100) == 1
    with pytest.raises(ValueError):
        s.add(20, 21)


