"""The moderation console in a real browser (Debian's chromium, driven by Playwright): signing
in, the queue kept live by the admins room, a report's transcript, a ban from the page.

The page runs against a service of its own (a fresh database, `afterhours serve` with its
worker), so its queue holds only the reports these tests file. Each test leaves a screenshot in
var/test-output/console/.
"""

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from afterhours.auth import TokenVerifier
from tests.support.chat import send
from tests.support.clients import Recorder, User
from tests.support.events import MATCH
from tests.support.places import random_place
from tests.support.processes import serve_process
from tests.support.server import ROOT, TEST_SECRET, fresh_database, settings_for
from tests.support.sessions import go, set_up
from tests.support.waiting import until

SCREENSHOTS = ROOT / "var" / "test-output" / "console"
PHONE = {"width": 390, "height": 844}


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


class Service:
    """A service of the console tests' own, and a way to make people and chats on it."""

    def __init__(self, base: str, verifier: TokenVerifier) -> None:
        self.base = base
        self.verifier = verifier
        self.client = httpx.AsyncClient(base_url=base, timeout=10)
        self.phones: list[Recorder] = []

    def user(self, *, premium: bool = True, admin: bool = False) -> User:
        return User(self.verifier, premium=premium, admin=admin)

    async def phone(self, user: User) -> Recorder:
        recorder = Recorder()
        await recorder.client.connect(
            self.base, auth={"token": user.token}, transports=["websocket"]
        )
        self.phones.append(recorder)
        return recorder

    async def chat(self) -> tuple[User, Recorder, User, Recorder, str]:
        place = random_place()
        a, b = self.user(), self.user()
        for user in (a, b):
            user.place = place
            await set_up(self.client, user)
        pa, pb = await self.phone(a), await self.phone(b)
        await go(self.client, a)
        await go(self.client, b)
        match_id = (await pa.wait_for(MATCH))["id"]
        for user in (a, b):
            r = await self.client.post(
                f"/api/after-hours/matches/{match_id}/accept", headers=user.headers
            )
            assert r.status_code == 200, r.text
        await pb.wait_for("after_hours:chat_open")
        return a, pa, b, pb, match_id

    async def report(self, reporter: User, reported: User, **fields: Any) -> str:
        body = {"reportedUserId": str(reported.id), "category": "harassment", **fields}
        r = await self.client.post("/api/after-hours/reports", json=body, headers=reporter.headers)
        assert r.status_code == 201, r.text
        return str(r.json()["report"]["id"])

    async def close(self) -> None:
        for recorder in self.phones:
            if recorder.client.connected:
                await recorder.client.disconnect()
        await self.client.aclose()


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    tmp = tmp_path_factory.mktemp("console")
    async with AsyncExitStack() as stack:
        url = stack.enter_context(fresh_database("afterhours_console"))
        settings = settings_for(url, tmp).model_copy(
            update={"match_delay_start_seconds": 0.2, "match_sweep_seconds": 1.0}
        )
        _, base = await stack.enter_async_context(serve_process(settings, log=tmp / "serve.log"))
        here = Service(base, TokenVerifier(settings))
        stack.push_async_callback(here.close)
        yield here


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        # Root in a container has no user namespaces for chromium's sandbox.
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context()
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await opened.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    await context.close()
    assert not errors, errors  # no script error on the page, whatever the test did


async def sign_in(page: Page, service: Service, admin: User) -> None:
    # The development sign-in link: the token rides the fragment, which never reaches a server.
    await page.goto(f"{service.base}/admin#token={admin.token}")
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#sign-in")).to_be_hidden()
    await expect(page.locator("#live")).to_have_text("live")
    assert "token" not in page.url  # taken off the address bar


def sign_in_link(service: Service, user_id: uuid.UUID) -> str:
    """What `afterhours token ID --admin` prints for a developer to click."""
    env = {
        **os.environ,
        "AFTERHOURS_JWT_SECRET": TEST_SECRET,
        "AFTERHOURS_PUBLIC_URL": service.base,
    }
    done = subprocess.run(
        [sys.executable, "-m", "afterhours", "token", str(user_id), "--admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [line] = [line for line in done.stderr.splitlines() if "/admin#token=" in line]
    link = line.split(": ", 1)[1]
    assert link == f"{service.base}/admin#token={done.stdout.strip()}"
    return link


async def test_a_filed_report_appears_live_shows_its_transcript_and_a_ban_holds(
    page: Page, service: Service
) -> None:
    await page.goto(sign_in_link(service, uuid.uuid4()))
    await expect(page.locator("#console")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("live")
    a, pa, b, pb, match_id = await service.chat()
    await send(pa, match_id, "hi there")
    nasty = (await send(pb, match_id, "something nasty"))["message"]

    report_id = await service.report(a, b, messageId=nasty["id"], details="threatening")
    row = page.locator(f'[data-report-id="{report_id}"]')
    await expect(row).to_be_visible()  # pushed to the page: no reload
    await expect(page.locator('[data-count="open"]')).not_to_have_text("0")

    await row.click()
    messages = page.locator(".transcript .message")
    await expect(messages).to_have_count(2)
    reported = page.get_by_label("Reported message")
    await expect(reported).to_contain_text("something nasty")
    await expect(page.locator(".transcript .message:not(.reported)")).to_contain_text("hi there")

    await page.get_by_role("button", name="Ban…", exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("Ban the reported user?")
    await dialog.get_by_label("Reason (optional)").fill("threats in chat")
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#result")).to_contain_text("Done: ban (report resolved)")

    async def disconnected() -> bool:
        return not pb.client.connected

    await until(disconnected, within=5)
    await expect(row).to_have_count(0)  # gone from the open queue
    await page.get_by_role("tab", name="Resolved").click()
    await expect(page.locator(f'[data-report-id="{report_id}"]')).to_be_visible()
    await expect(page.locator(".detail")).to_contain_text("banned")
    r = await service.client.get("/api/after-hours/session", headers=b.headers)
    assert r.status_code == 403 and r.json()["code"] == "USER_BANNED"


async def test_a_token_that_is_not_an_admins_is_refused(page: Page, service: Service) -> None:
    await page.goto(f"{service.base}/admin")
    await page.get_by_label("Admin token").fill(service.user().token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not an admin's")
    await expect(page.locator("#console")).to_be_hidden()
    await page.get_by_label("Admin token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("UNAUTHORIZED")


async def test_keys_move_through_the_queue_and_search_finds_a_user_at_a_phones_width(
    page: Page, service: Service
) -> None:
    await page.set_viewport_size(PHONE)
    admin = service.user(premium=False, admin=True)
    people = [service.user() for _ in range(3)]
    for user in people:
        r = await service.client.get("/api/after-hours/session", headers=user.headers)
        assert r.status_code == 200
    await service.report(people[0], people[1], category="spam")
    await service.report(people[0], people[2], category="spam")
    await sign_in(page, service, admin)
    await page.get_by_label("Category").select_option("spam")
    await expect(page.locator("#queue .report")).to_have_count(2)
    await page.keyboard.press("j")
    await expect(page.locator("#queue .report.selected")).to_contain_text(str(people[2].id)[:8])
    await page.keyboard.press("k")
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_contain_text("spam")
    await page.keyboard.press("/")
    await page.keyboard.type(str(people[0].id))
    await page.keyboard.press("Enter")
    await expect(page.locator("#detail-title")).to_have_text(f"User {str(people[0].id)[:8]}")
    await expect(page.locator(".record")).to_contain_text("Reports filed")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at a phone's width ({width}px)"


async def test_the_operations_page_draws_the_services_figures(page: Page, service: Service) -> None:
    admin = service.user(premium=False, admin=True)
    phone = await service.phone(service.user())
    await page.goto(f"{service.base}/admin/ops#token={admin.token}")
    connected = sum(recorder.client.connected for recorder in service.phones)
    await expect(page.locator("#chart-sockets .value")).to_have_text(str(connected))
    await expect(page.locator("#chart-workers .value")).to_have_text("1")  # its worker is up
    await expect(page.locator("#charts svg")).not_to_have_count(0)
    assert "token" not in page.url
    await phone.client.disconnect()
