"""The web console in a real headless Chromium against ``hera-router serve-api`` on the defaults.

One server and one browser for the module: two tenants, a request routed by ``hera`` (cold start:
the SLM first, the verify stage judging it), a batch of ``all-llm`` requests, another tenant's
request, and a request whose text is markup. The tests read the pages as a person would and
compare what they show with what the JSON API answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hera_router.simulator.generate import generate
from tests.e2e.browser import (
    ADMIN_TOKEN,
    REPO,
    Server,
    chrome,
    chromium_problem,
    console_errors,
    open_page,
    serve_api,
    sign_in,
    wait_for,
)

MARKUP = '<img src=x onerror="document.body.dataset.injected=1"><b>bold?</b>'
TERMINAL = {"succeeded", "failed", "cancelled"}
TASKS = generate("mixed", 5, 0)  # the default simulated world is seed 0: requests it knows how to run


def usd(value: float) -> str:
    return f"${value:.4f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


@dataclass
class World:
    server: Server
    acme_key: str
    globex_key: str
    hera_request: str
    markup_request: str
    globex_request: str
    batch: str


def _key(server: Server, tenant: str) -> str:
    server.hera("tenants", "create", tenant)
    return server.hera("keys", "create", tenant).split()[0]


def _finished(server: Server, key: str, ids: list[str]) -> bool:
    with server.client(key) as client:
        return all(client.get(f"/v1/agent-requests/{i}").json()["status"] in TERMINAL for i in ids)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    problem = chromium_problem()
    if problem is not None:
        pytest.fail(problem)
    with serve_api(tmp_path_factory.mktemp("console") / "data") as server:
        acme, globex = _key(server, "acme"), _key(server, "globex")
        with server.client(acme) as client:
            hera = client.post("/v1/agent-requests", json={"input": TASKS[0].request, "policy": "hera"})
            markup = client.post("/v1/agent-requests", json={"input": MARKUP, "policy": "all-llm"})
            lines = [{"input": task.request, "custom_id": task.id, "policy": "all-llm"} for task in TASKS[1:4]]
            batch = client.post("/v1/agent-batches", json=lines)
        with server.client(globex) as client:
            other = client.post("/v1/agent-requests", json={"input": TASKS[4].request, "policy": "all-llm"})
        for response in (hera, markup, batch, other):
            assert response.status_code == 202, response.text
        with server.client(acme) as client:
            page = client.get("/v1/agent-requests", params={"batch_id": batch.json()["id"]}).json()
            batch_ids = [row["id"] for row in page["data"]]
        acme_ids = [hera.json()["id"], markup.json()["id"], *batch_ids]
        wait_for(lambda: _finished(server, acme, acme_ids), 90, "the requests did not finish in 90 s")
        wait_for(lambda: _finished(server, globex, [other.json()["id"]]), 30, "globex's request did not finish")
        ids = [response.json()["id"] for response in (hera, markup, other, batch)]
        yield World(server, acme, globex, *ids)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text).strip()


def test_every_page_loads_with_no_console_errors(world: World, browser: Any) -> None:
    sign_in(browser, world.server.url, ADMIN_TOKEN)
    console_errors(browser)  # start from here

    pages = ["/requests", "/batches", "/overview", f"/requests/{world.hera_request}", f"/batches/{world.batch}"]
    for fragment in pages:
        open_page(browser, world.server.url, fragment)
        assert browser.find_element("tag name", "body").get_attribute("data-loaded") == f"#{fragment}"
        assert console_errors(browser) == [], fragment


def test_a_real_request_renders_its_subtask_tree(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with world.server.client(ADMIN_TOKEN) as admin:
        tree = admin.get(f"/v1/console/requests/{world.hera_request}").json()
    assert len(tree["steps"]) >= 2, tree  # the request ran a chain of steps
    sign_in(browser, world.server.url, ADMIN_TOKEN)
    open_page(browser, world.server.url, f"/requests/{world.hera_request}")

    cards = browser.find_elements(By.CSS_SELECTOR, "#steps li.step")
    assert [card.get_attribute("data-step") for card in cards] == [step["id"] for step in tree["steps"]]
    for card, step in zip(cards, tree["steps"], strict=True):
        assert card.find_element(By.CSS_SELECTOR, "[data-field=step-text]").text == step["text"]
        badges = [badge.text for badge in card.find_elements(By.CSS_SELECTOR, ".step-head .badge")]
        assert step["executor"].upper() in badges
        assert step["branch"] in badges
        assert usd(step["cost_usd"]) in card.find_element(By.CSS_SELECTOR, "[data-field=step-metrics]").text
        shown_models = [c.text for c in card.find_elements(By.CSS_SELECTOR, "table.calls td.mono")]
        assert shown_models == [call["model"] for call in step["calls"]]
        assert len(card.find_elements(By.CSS_SELECTOR, "table.checks tbody tr")) == len(step["checks"])
        verdicts = [
            [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in card.find_elements(By.CSS_SELECTOR, "table.escalations tbody tr")
        ]
        assert verdicts == [
            [e["stage"], f"{e['score']:.3f}", f"{e['threshold']:.3f}", "accepted" if e["accepted"] else "escalated"]
            for e in step["escalations"]
        ]
    # Cold start: the SLM ran first and the verify stage judged every first step.
    assert any(step["escalations"] for step in tree["steps"]), tree["steps"]
    assert _text(browser, "[data-field=cost_usd]") == usd(tree["detail"]["cost_usd"])


def test_the_overview_shows_the_numbers_the_api_reports(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with world.server.client(ADMIN_TOKEN) as admin:
        overview = admin.get("/v1/console/overview", params={"days": 14}).json()
    sign_in(browser, world.server.url, ADMIN_TOKEN)
    open_page(browser, world.server.url, "/overview")

    assert overview["slm_steps"] + overview["llm_steps"] > 0
    assert _text(browser, "#totals [data-field=slm_share]") == pct(overview["slm_share"])
    assert _text(browser, "#totals [data-field=slm_steps]") == str(overview["slm_steps"])
    assert _text(browser, "#totals [data-field=llm_steps]") == str(overview["llm_steps"])
    assert _text(browser, "#totals [data-field=cost_usd]") == usd(overview["cost_usd"])
    assert _text(browser, "#totals [data-field=all_llm_usd]") == usd(overview["all_llm_usd"])
    for day in overview["days"]:
        row = f"#days tr[data-day='{day['day']}']"
        assert _text(browser, f"{row} [data-field=slm_share]") == pct(day["slm_share"])
        assert _text(browser, f"{row} [data-field=cost_usd]") == usd(day["cost_usd"])
        assert _text(browser, f"{row} [data-field=requests]") == str(day["requests"])
    shown = {
        row.get_attribute("data-branch"): row.find_element(By.CSS_SELECTOR, "[data-field=steps]").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#branches tbody tr")
    }
    assert shown == {branch["branch"]: str(branch["steps"]) for branch in overview["branches"]}
    spend = {
        row.get_attribute("data-tenant"): row.find_element(By.CSS_SELECTOR, "[data-field=cost_usd]").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#tenants tbody tr")
    }
    assert spend == {tenant["tenant"]: usd(tenant["cost_usd"]) for tenant in overview["tenants"]}
    assert set(spend) == {"acme", "globex"}


def test_a_batch_page_shows_its_progress(world: World, browser: Any) -> None:
    with world.server.client(world.acme_key) as client:
        status = client.get(f"/v1/agent-batches/{world.batch}").json()
    sign_in(browser, world.server.url, world.acme_key)
    open_page(browser, world.server.url, f"/batches/{world.batch}")

    assert _text(browser, "[data-field=done]") == f"{status['done']} / {status['total']}"
    assert status["total"] == 3
    for state, count in status["counts"].items():
        assert _text(browser, f"#counts [data-state={state}]") == f"{state} {count}"


def test_a_tenant_key_sees_only_its_own_tenant(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, world.server.url, world.globex_key)
    open_page(browser, world.server.url, "/requests")
    listed = {row.get_attribute("data-request") for row in browser.find_elements(By.CSS_SELECTOR, "#requests tbody tr")}
    assert listed == {world.globex_request}
    assert "tenant globex" in _text(browser, "#who")

    open_page(browser, world.server.url, f"/requests/{world.hera_request}")

    assert _text(browser, "#page-error") == f"no agent request {world.hera_request}"
    assert not browser.find_elements(By.CSS_SELECTOR, "#steps")


def test_request_text_is_shown_as_text_never_as_markup(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    sign_in(browser, world.server.url, ADMIN_TOKEN)
    open_page(browser, world.server.url, f"/requests/{world.markup_request}")

    assert _text(browser, "[data-field=input]") == MARKUP
    assert not browser.find_elements(By.CSS_SELECTOR, "#view img, #view b")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-injected") is None


def test_a_wrong_token_is_refused_with_the_api_s_sentence(world: World, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{world.server.url}/console")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{world.server.url}/console")
    browser.find_element(By.ID, "token").send_keys(f"hk_{uuid.uuid4().hex}")
    browser.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()

    wait_for(lambda: bool(_text(browser, "#sign-in-error")), 10, "no sign-in error was shown")
    assert "not valid" in _text(browser, "#sign-in-error")
    assert browser.find_element(By.ID, "nav").get_attribute("hidden") is not None


def test_the_console_is_served_from_the_package_with_a_strict_policy(world: World) -> None:
    import httpx

    page = httpx.get(f"{world.server.url}/console", timeout=10)
    script = httpx.get(f"{world.server.url}/console/static/console.js", timeout=10)

    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace(world.server.url, "")  # no CDN: every asset is from this origin
    assert script.status_code == 200
    assert "innerHTML" not in script.text
    assert (REPO / "hera_router/api/console/static/console.js").read_text() == script.text


def test_without_chromium_the_tests_are_told_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e import browser as helpers

    monkeypatch.setattr(helpers, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(helpers.shutil, "which", lambda _: None)

    assert helpers.chromium_problem() == helpers.INSTALL_HINT
    assert "apt-get install chromium chromium-driver" in helpers.INSTALL_HINT
