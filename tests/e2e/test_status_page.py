"""The status page at the monitoring port's ``/`` in a real headless browser (Debian's chromium, driven through
its chromedriver by Selenium): the topology renders with its groups, rates update as events flow, a channel fills
when its sink is stopped (removed by a hot reload), recent errors show, the configuration's secrets are masked, and
the page fetches nothing but the agent's own ``/status.json``."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for

webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = pytest.mark.e2e

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

K2 = """\
a1.sinks.k2.type = file_roll
a1.sinks.k2.sink.directory = {out}/k2
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.channel = c2
"""

CONF = """\
a1.sources = r1
a1.channels = c1 c2 c3
a1.sinks = k1 {k2}k3 k4
a1.sinkgroups = g1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1 c2 c3
a1.sources.r1.selector.optional = c2
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = static
a1.sources.r1.interceptors.i1.key = dc
a1.sources.r1.interceptors.i1.value = eu
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c2.type = memory
a1.channels.c2.capacity = 300
a1.channels.c2.transactionCapacity = 100
a1.channels.c2.keep-alive = 0
a1.channels.c3.type = memory
a1.channels.c3.capacity = 100000
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = {out}/k1
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.channel = c1
{k2_props}a1.sinks.k3.type = avro
a1.sinks.k3.hostname = 127.0.0.1
a1.sinks.k3.port = {dead1}
a1.sinks.k3.truststore-password = hunter2
a1.sinks.k3.channel = c3
a1.sinks.k4.type = avro
a1.sinks.k4.hostname = 127.0.0.1
a1.sinks.k4.port = {dead2}
a1.sinks.k4.channel = c3
a1.sinkgroups.g1.sinks = k3 k4
a1.sinkgroups.g1.processor.type = failover
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Debian's chromium, headless, with a new empty profile and no background network traffic."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        reason = f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver"
        if os.environ.get("PYFLUME_REQUIRE_PEERS") == "1":
            pytest.fail(f"PYFLUME_REQUIRE_PEERS=1 but {reason}")
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                "--window-size=1280,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))  # a driver path: no Selenium Manager
    yield driver
    driver.quit()


def _post_forever(port: int, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        events = [{"headers": {}, "body": f"e{n + i}"} for i in range(20)]
        n += 20
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(events).encode()),
                                   timeout=5).close()
        except OSError:  # 503 once c2 is full
            pass
        stop.wait(0.2)


def _text(driver, css: str) -> str:  # noqa: ANN001
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return driver.find_element("css selector", css).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _number(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)([kMG]?)", text)
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)] if m else -1.0


def test_status_page_in_a_browser(browser, run_agent, tmp_path: Path):
    port, mport = free_port(), free_port()
    values = dict(port=port, out=tmp_path / "out", dead1=free_port(), dead2=free_port())
    for d in ("k1", "k2"):
        (tmp_path / "out" / d).mkdir(parents=True)
    agent = run_agent(CONF.format(k2="k2 ", k2_props=K2.format(**values), **values),
                      args=["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mport}",
                            "-Djavax.net.ssl.trustStorePassword=hunter3"])
    agent.wait_for_port(mport)
    agent.wait_for_port(port)
    browser.get(f"http://127.0.0.1:{mport}/")
    wait_for(lambda: _text(browser, "#agent") == "a1" and _text(browser, "#status") == "UP", 20, "the page header")
    # the topology: the interceptor chain and selector, the channels, the failover group with its two sinks
    assert "i1 (static) → replicating" in _text(browser, "#source-r1")
    for card in ("#channel-c1", "#channel-c2", "#channel-c3", "#sink-k1", "#sink-k2", "#group-g1 #sink-k3",
                 "#group-g1 #sink-k4"):
        assert _text(browser, card), card
    assert "group g1 · failover" in _text(browser, "#group-g1")
    assert len(browser.find_elements("css selector", "#edges path")) == 7  # r1→c1,c2,c3; c1→k1; c2→k2; c3→k3,k4

    stop = threading.Event()
    feeder = threading.Thread(target=_post_forever, args=(port, stop), daemon=True)
    feeder.start()
    try:
        # rates update as events flow
        wait_for(lambda: _number(_text(browser, "#sink-k1 .in")) > 0, 20, "k1's rate on the page")
        total = _number(_text(browser, "#sink-k1 .total"))
        wait_for(lambda: _number(_text(browser, "#sink-k1 .total")) > total, 10, "k1's total to grow")
        # k2 keeps up: c2 is empty between batches (a snapshot may catch one batch in it on a busy machine)
        wait_for(lambda: _text(browser, "#channel-c2 .fill") == "0.0% full", 10, "c2 drained by k2 on the page")
        # stop c2's sink: the reload removes k2; c2 fills up on the page
        agent.conf.write_text(CONF.format(k2="", k2_props="", **values))
        agent.wait_for_log("Configuration reloaded")
        seen: list[str] = []

        def full() -> bool:
            seen.append(_text(browser, "#channel-c2 .fill"))
            return seen[-1] == "100.0% full"

        wait_for(full, 30, "c2 full on the page", every=0.25)
        assert not _text(browser, "#sink-k2")
        partial = [s for s in seen if re.fullmatch(r"\d+\.\d% full", s) and s not in ("0.0% full", "100.0% full")]
        assert partial, f"c2 went from empty to full without the page showing it fill: {seen}"
        assert browser.find_element("css selector", "#channel-c2 .bar > div").get_attribute("class") == "bad"
        assert _text(browser, "#channel-c2 .size") == "300 / 300"
        # the source goes on (c2 is optional), the failover group's sinks cannot connect: both under Recent errors
        wait_for(lambda: "sink group g1" in _text(browser, "#errors"), 30, "g1's failure under Recent errors")
        wait_for(lambda: "Unable to put batch on optional channel c2" in _text(browser, "#errors"), 30,
                 "c2's refusals under Recent errors")
        assert _number(_text(browser, "#sink-k1 .in")) > 0
        if os.environ.get("PYFLUME_STATUS_SCREENSHOT"):  # the README's picture, taken while events flow
            time.sleep(2.5)
            browser.save_screenshot(os.environ["PYFLUME_STATUS_SCREENSHOT"])
    finally:
        stop.set()
    config = _text(browser, "#config")
    assert "a1.sinks.k3.truststore-password = ******" in config
    assert "-Djavax.net.ssl.trustStorePassword = ******" in config
    assert "a1.sinks.k3.port = " in config and "a1.sinks.k2.type" not in config  # the reloaded configuration
    assert "hunter" not in browser.page_source
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    origin = f"http://127.0.0.1:{mport}/"
    assert resources and all(r == origin + "status.json" for r in resources), resources
    assert agent.terminate() == 0
