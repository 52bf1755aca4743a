"""Cases walked through the closed loop in the browser, each persona logging in on the login page:
one case all the way round, one through rework, one through send-back and re-dispatch."""

from __future__ import annotations

import io
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gridgov.cases.models import Case, CaseEvent, CasePhoto
from gridgov.cases.workflow import State
from gridgov.core.photos import photo_save
from tests.cases.factories import category, report, walk
from tests.e2e.conftest import login, screenshot
from tests.world import World

Persona = Callable[[str], Any]


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def photo(tmp_path: Path) -> Callable[[str], str]:
    """A JPEG file on disk, as a phone's camera leaves it."""

    def make(name: str, colour: tuple[int, int, int] = (70, 80, 95)) -> str:
        out = io.BytesIO()
        Image.new("RGB", (640, 480), colour).save(out, "JPEG", quality=88)
        path = tmp_path / name
        path.write_bytes(out.getvalue())
        return str(path)

    return make


@pytest.fixture
def persona(browser: Any, live_server: Any) -> Generator[Persona, None, None]:
    """``persona("dispatcher")``: a fresh browser window, logged in through the login page."""
    contexts: list[Any] = []

    def open_as(username: str) -> Any:
        while contexts:  # one window at a time, like people taking turns
            contexts.pop().close()
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.base_url = live_server.url
        login(page, username)
        return page

    yield open_as
    for context in contexts:
        context.close()


def open_case(page: Any, case: Case) -> None:
    page.goto(page.base_url + f"/cases/{case.number}/")
    page.locator("#case-number").wait_for()


def state_shown(page: Any) -> str:
    return str(page.locator("article.case").get_attribute("data-state"))


def take(page: Any, action: str, *, photos: Sequence[str] = (), **fields: str) -> None:
    """Open an action's form on the page, fill it in and send it; wait for the page it leads to."""
    form = page.locator(f'details[data-action="{action}"]').first
    if form.get_attribute("open") is None:
        form.locator("summary").click()
    for name, value in fields.items():
        field = form.locator(f'[name="{name}"]')
        if field.evaluate("node => node.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    if photos:
        form.locator('input[name="photos"]').set_input_files(list(photos))
    with page.expect_navigation():
        form.locator(f'button[data-submit="{action}"]').click()
    page.locator(".message--success").first.wait_for()


def quick(page: Any, case: Case, action: str) -> None:
    """Press a one-click button of a queue (intake, dispatch) for ``case``."""
    row = page.locator(f'li[data-case="{case.number}"]')
    with page.expect_navigation():
        row.locator(f'button[data-submit="{action}"]').click()
    page.locator(".message--success").first.wait_for()


def actions_of(case: Case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).values_list("action", flat=True))


def test_a_case_goes_round_the_whole_loop_in_the_browser(
    transactional_db: None, world: World, persona: Persona, media: Path, photo: Any
) -> None:
    category()

    # the grid worker reports it with a photo
    page = persona("grid_worker_a")
    page.goto(page.base_url + "/cases/report/")
    page.select_option("select[name=category]", "gbt47678:01002")
    page.fill("textarea[name=description]", "和燕路口井盖缺失")
    page.fill("input[name=lat]", "32.05")
    page.fill("input[name=lon]", "118.82")
    page.locator("input[name=lon]").dispatch_event("change")
    page.wait_for_function("() => document.getElementById('detected-grid').dataset.code")
    page.set_input_files("input[name=photos]", photo("before.jpg"))
    with page.expect_navigation():
        page.click("#report-submit")
    case = Case.objects.get()
    assert page.locator("#case-number").inner_text() == case.number

    # the intake operator accepts and registers it from the intake queue
    page = persona("intake_operator")
    page.goto(page.base_url + "/cases/intake/")
    quick(page, case, "accept")
    quick(page, case, "register")
    case.refresh_from_db()
    assert case.state == State.REGISTERED

    # the dispatcher dispatches it to the suggested unit in one step
    page = persona("dispatcher")
    page.goto(page.base_url + "/cases/dispatch/")
    row = page.locator(f'li[data-case="{case.number}"]')
    assert row.locator('select[name="lead_unit"]').input_value() == "street-office-003"
    quick(page, case, "dispatch")

    # the unit handler finds it in their to-do list, signs for it and feeds back with a photo
    page = persona("unit_handler")
    page.goto(page.base_url + "/cases/todo/")
    with page.expect_navigation():
        page.locator(f'li[data-case="{case.number}"] a.case-summary__number').click()
    take(page, "sign")
    assert state_shown(page) == State.HANDLING
    take(page, "feedback", note="已更换新井盖", photos=[photo("after.jpg", (30, 140, 60))])
    assert state_shown(page) == State.CHECKING

    # the supervisor checks it on site and sees both photos
    page = persona("supervisor")
    open_case(page, case)
    assert page.locator(".case-facts").count() == 1
    page.locator(".timeline img.photos__img").last.scroll_into_view_if_needed()
    page.wait_for_function(  # both photos shown (thumbnails load lazily)
        "() => Array.from(document.querySelectorAll('.timeline img.photos__img'))"
        ".filter(img => img.complete && img.naturalWidth > 0).length === 2",
        timeout=10_000,
    )
    take(page, "check_pass", note="现场核查合格")
    assert state_shown(page) == State.CHECKED

    # the shift leader closes it
    page = persona("shift_leader")
    open_case(page, case)
    take(page, "close")
    assert state_shown(page) == State.CLOSED
    screenshot(page, "case-loop-closed")

    assert actions_of(case) == [
        "report",
        "accept",
        "register",
        "dispatch",
        "sign",
        "feedback",
        "check_pass",
        "close",
    ]
    assert CasePhoto.objects.filter(case=case).count() == 2


def test_a_case_that_fails_its_check_goes_back_to_the_unit_for_rework(
    transactional_db: None, world: World, persona: Persona, media: Path, photo: Any
) -> None:
    case = walk(
        report(world.grid_worker_a, photos=[photo_save(data=Path(photo("x.jpg")).read_bytes())]),
        world,
        *("accept", "register", "dispatch", "sign", "feedback"),
    )

    page = persona("supervisor")
    open_case(page, case)
    take(page, "check_fail", reason="井盖未固定，仍有晃动", photos=[photo("loose.jpg")])
    assert state_shown(page) == State.HANDLING

    page = persona("unit_handler")
    open_case(page, case)
    assert "井盖未固定" in page.locator("#timeline").inner_text()
    take(page, "feedback", note="已用螺栓固定", photos=[photo("fixed.jpg", (20, 150, 70))])

    page = persona("supervisor")
    open_case(page, case)
    take(page, "check_pass", note="复查合格")

    page = persona("shift_leader")
    open_case(page, case)
    take(page, "close")

    case.refresh_from_db()
    assert case.state == State.CLOSED and case.rework_count == 1
    assert case.lead_unit is not None and case.lead_unit.code == "street-office-003"
    assert actions_of(case)[-5:] == ["feedback", "check_fail", "feedback", "check_pass", "close"]


def test_a_case_sent_back_by_the_unit_is_dispatched_again(
    transactional_db: None, world: World, persona: Persona, media: Path
) -> None:
    case = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch")

    page = persona("unit_handler")
    open_case(page, case)
    form = page.locator('details[data-action="send_back"]')
    form.locator("summary").click()
    form.locator('[name="reason"]').fill("井盖属自来水公司，不归街道")
    with page.expect_navigation():
        form.locator('button[data-submit="send_back"]').click()
    assert page.url.endswith("/cases/todo/")  # the case has left the unit's hands
    case.refresh_from_db()
    assert case.state == State.SENT_BACK and case.lead_unit is None

    page = persona("dispatcher")
    page.goto(page.base_url + "/cases/dispatch/")
    row = page.locator(f'li[data-case="{case.number}"]')
    assert row.locator(".state--sent_back").count() == 1
    row.locator('textarea[name="note"]').first.fill("请街道先行处置")
    quick(page, case, "dispatch")
    case.refresh_from_db()
    assert case.state == State.DISPATCHED and case.send_back_count == 1

    page = persona("unit_handler")
    open_case(page, case)
    assert "自来水公司" in page.locator("#timeline").inner_text()
    take(page, "sign")
    assert state_shown(page) == State.HANDLING
    assert actions_of(case)[-3:] == ["send_back", "dispatch", "sign"]


@pytest.mark.parametrize(
    ("username", "paths"),
    [
        ("intake_operator", ["/cases/todo/", "/cases/", "/cases/intake/", "CASE"]),
        ("dispatcher", ["/cases/dispatch/", "CASE"]),
        ("unit_handler", ["/cases/todo/", "HANDLED"]),
    ],
)
def test_every_case_screen_fits_a_360_pixel_phone(
    transactional_db: None,
    world: World,
    browser: Any,
    live_server: Any,
    media: Path,
    photo: Any,
    username: str,
    paths: list[str],
) -> None:
    picture = photo_save(data=Path(photo("p.jpg")).read_bytes())
    first = report(world.grid_worker_a, photos=[picture], address="和燕路 1 号（小区东门）")
    report(world.grid_worker_b, where=(32.0501, 118.8201), description="同一个井盖")
    registered = walk(report(world.grid_worker_a, urgency="urgent"), world, "accept", "register")
    handled = walk(report(world.grid_worker_a), world, "accept", "register", "dispatch", "sign")
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.base_url = live_server.url
    try:
        login(page, username)
        for path in paths:
            case = {"CASE": first if username != "dispatcher" else registered, "HANDLED": handled}
            url = f"/cases/{case[path].number}/" if path in case else path
            page.goto(page.base_url + url)
            for details in page.locator("details.action").all():  # every form unfolded
                if details.get_attribute("open") is None:
                    details.locator("summary").click()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{url} scrolls sideways on a phone ({width} px wide)"
            screenshot(page, f"phone-{username}-{path.strip('/').replace('/', '-') or 'list'}")
    finally:
        context.close()


def test_an_intake_operator_takes_a_hotline_call_by_clicking_the_map(
    transactional_db: None, world: World, persona: Persona, media: Path
) -> None:
    category()
    page = persona("intake_operator")
    page.goto(page.base_url + "/cases/intake/")
    pick = page.locator("#pick-map")
    page.wait_for_function("() => document.getElementById('pick-map').dataset.ready === 'true'")

    box = pick.bounding_box()
    assert box is not None
    # the map shows the district's grids; a little right of its middle lies grid D
    pick.click(position={"x": box["width"] * 0.6, "y": box["height"] * 0.4})

    page.wait_for_function("() => document.getElementById('detected-grid').dataset.code")
    code = page.locator("#detected-grid").get_attribute("data-code")
    assert page.input_value("input[name=lat]") and page.input_value("input[name=lon]")
    form = page.locator("#hotline-form")
    form.locator("#category-search").fill("01002")
    form.locator(".category-picker__option").first.click()
    form.locator("textarea[name=description]").fill("来电：楼下井盖丢失")
    form.locator("input[name=reporter_name]").fill("周女士")
    form.locator("input[name=reporter_phone]").fill("13700002222")
    with page.expect_navigation():
        page.click("#hotline-submit")

    case = Case.objects.get()
    assert page.locator("#case-number").inner_text() == case.number
    assert case.region_code == code == world.grid_d.code and case.source == "hotline"
    assert "137****2222" in page.locator(".case-facts").inner_text()
