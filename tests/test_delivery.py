"""Delivery (docs/delivery.md): the note's content per channel, the redaction of target secrets,
the rules (once, only past the gate, a backfill's latest date), and real deliveries to a local
SMTP server (aiosmtpd) and a local JSON webhook, loopback only.

Pure tests first; then one demo database shared by the module, with few pipeline runs: a
three-date backfill, a re-run of its last date, delivery-only runs (forced, with a stopped
server, unconfigured) and one blocked date.
"""

import email
import email.policy
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from dagster import AssetKey, DagsterInstance

from assets.delivery import FORCE_TAG, NOT_CONFIGURED
from market_intel.delivery_content import (
    Limits,
    alert_line,
    chat_note,
    email_html,
    email_subject,
    fit,
    headline,
    level_lines,
    note_title,
    report_link,
)
from market_intel.delivery_dispatch import (
    LEDGER,
    Message,
    ReportFiles,
    alert_message,
    dates_to_deliver,
    note_message,
    parse_targets,
    scrub,
    send,
)
from pipelines.resources import ReportDelivery
from tests.conftest import Pipeline

GOLDEN_REPORT = Path(__file__).parent / "golden" / "2026-03-22.json"
SECRET = "hunter2-s3cret-token"
LINK = "https://reports.example.com/market-intel/2026-03-22.html"
REF = "mi-2026-03-22-note-0123456789ab"
DELIVERY = AssetKey(["delivery", "report_deliveries"])
REPORT = AssetKey("market_intelligence_report")
# Chat services the issue names, by a well-formed Apprise URL of each (nothing is sent).
CHAT_URLS = {
    "slack": "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
    "discord": "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js",
    "telegram": "tgram://123456789:ABCdefGhIJKlmnOPQrsTUVwxyz/12345",
    "teams": "workflows://prod-00.westus.logic.azure.com:443/0123456789abcdef/sigABCDEF0123456789",
    "dingtalk": "dingtalk://a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6abcd/",
    "wecom": "wecombot://a1b2c3d4-e5f6-a1b2-c3d4-e5f6a1b2c3d4",
    "lark": "lark://a1b2c3d4-e5f6-a1b2-c3d4-e5f6a1b2c3d4",
    "feishu": "feishu://a1b2c3d4-e5f6-a1b2-c3d4-e5f6a1b2c3d4",
    "json": "json://user:pass@127.0.0.1:8080/hook",
    "sms": "vonage://AC1234:s3cr3tkey@12345678901/12345678902",
}


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(GOLDEN_REPORT.read_text())


# --- content -------------------------------------------------------------------------------


def test_headline_is_the_reports_own_else_its_key_insight_lead(report: dict) -> None:
    lead = report["sections"][0]["blocks"][0]["items"][0]
    assert report["sections"][0]["id"] == "key_insight"
    assert headline(report) == lead.rstrip(".")
    assert headline({**report, "headline": "Asia sells off\n after a weak US close"}) == (
        "Asia sells off after a weak US close"
    )
    assert email_subject(report) == f"Market Intelligence Report 2026-03-22: {lead.rstrip('.')}"


def test_email_html_is_the_report_with_its_delivery_ref() -> None:
    html = "<html><body><h1>Report</h1></body></html>"
    delivered = email_html(html, REF)
    assert delivered.startswith("<html><body><h1>Report</h1>")
    assert delivered.endswith("</body></html>")
    assert REF in delivered
    paged = '<body><header><nav class="pager" aria-label="x"><a href="a.html">a</a></nav>\n<h1>'
    assert email_html(paged, REF).startswith("<body><header><h1>")


@pytest.mark.parametrize("service", sorted(CHAT_URLS))
def test_chat_note_fits_each_service_and_always_links_the_report(
    report: dict, service: str
) -> None:
    (target,) = parse_targets(CHAT_URLS[service])
    assert not target.is_email
    title = note_title(report)
    note = chat_note(report, LINK, REF, target.limits(title))
    limit = target.plugin.body_maxlen
    if target.plugin.title_maxlen <= 0 or target.plugin.overflow_amalgamate_title:
        limit -= len(title) + 2  # Apprise puts the title in the body: "title\r\n" + body
    assert len(note) <= limit
    assert note.endswith(f"Full report: {LINK}")
    assert note.startswith(headline(report)[:5])
    if target.plugin.body_maxlen >= 2000:  # all but SMS and Teams take the whole note
        assert note.startswith(headline(report) + "\n")
        for line in level_lines(report):
            assert line in note
        assert "S&P 6,506.48 (-1.51%)" in note
        assert "Most unusual divergence" in note and REF in note


def test_a_cut_note_never_shows_a_table_with_a_hole() -> None:
    rows = ["row one", "row two is long", "row 3"]
    note = fit("Head", [("Levels:", rows)], "Link", Limits(len("Head\n\nLevels:\nrow one\n\nLink")))
    assert note == "Head\n\nLevels:\nrow one\n\nLink"
    two_lines = fit("Head", [("Levels:", rows)], "Link", Limits(1000, lines=2))
    assert two_lines == "Head\nLink"
    tiny = fit("A long headline indeed", [], "Full report: x", Limits(22))
    assert tiny == "A lon…\n\nFull report: x" and len(tiny) == 22


def test_link_is_the_served_url_when_reports_are_served() -> None:
    day = date(2026, 3, 22)
    assert report_link(day, "https://reports.example.com/market-intel/", "/r/x.html") == LINK
    assert report_link(day, "", "/srv/reports/2026-03-22.html") == "/srv/reports/2026-03-22.html"


def test_alert_is_one_line() -> None:
    line = alert_line(date(2026, 3, 23), "[ERROR] crypto is stale:\n  data ends 2026-03-21", 2)
    assert line == (
        "report 2026-03-23 blocked: [ERROR] crypto is stale: data ends 2026-03-21 "
        "(and 2 more blocked dates)"
    )


# --- targets, secrets, rules ---------------------------------------------------------------


def test_email_services_get_the_html_report_and_the_others_the_note() -> None:
    emails = [
        "mailto://127.0.0.1:8025?from=reports@example.com&to=analyst@example.com",
        "mailtos://user:pw@smtp.example.com?to=analyst@example.com",
        "sendgrid://abcd1234SECRET:noreply@example.com/analyst@example.com",
    ]
    assert [t.is_email for t in parse_targets(",".join(emails))] == [True, True, True]
    others = [CHAT_URLS["telegram"], CHAT_URLS["slack"], "pushplus://abcdef0123456789abcdef0123"]
    assert [t.is_email for t in parse_targets(",".join(others))] == [False, False, False]


def test_a_target_is_shown_only_in_its_privacy_form() -> None:
    urls = (
        f"json://user:{SECRET}@127.0.0.1:8080/hook, tgram://123456789:{SECRET}/12345,"
        f"discord://4174216298/{SECRET}"
    )
    targets = parse_targets(urls)
    assert [t.service for t in targets] == ["JSON", "Telegram", "Discord"]
    for target in targets:
        assert SECRET in target.url
        assert SECRET not in target.label and SECRET not in repr(target)
        assert target.target_id and SECRET not in target.target_id
        assert scrub(f"refused by {target.url} ({SECRET})", target).count(SECRET) == 0
    assert targets[0].label.startswith("json://user:****@127.0.0.1:8080/hook")


def test_urls_split_as_apprise_splits_them() -> None:
    urls = (
        f"{SECRET}, mailto://127.0.0.1:25?from=r@example.com&to=a@example.com,b@example.com, "
        "json://127.0.0.1/hook"
    )
    mail, hook, invalid = parse_targets(urls)
    assert [to for _, to in mail.plugin.targets] == ["a@example.com", "b@example.com"]
    assert hook.service == "JSON"
    assert invalid.plugin is None and invalid.service == "invalid"
    assert invalid.label == "target 3 (not a URL Apprise can load)"
    assert SECRET not in mail.label + hook.label + invalid.label
    (alone,) = parse_targets(SECRET)
    assert alone.plugin is None and alone.label == "target 1 (not a URL Apprise can load)"
    assert parse_targets(" ") == []


def test_a_backfill_delivers_its_latest_date_unless_configured_otherwise() -> None:
    days = [date(2026, 3, 20), date(2026, 3, 22), date(2026, 3, 21)]
    assert dates_to_deliver(days[:1], 1, "none") == days[:1]  # one date: always
    assert dates_to_deliver(days, 3, "latest") == [date(2026, 3, 22)]
    assert dates_to_deliver(days, 3, "all") == sorted(days)
    assert dates_to_deliver(days, 3, "none") == []
    assert dates_to_deliver([], 3, "latest") == []
    with pytest.raises(ValueError, match="MARKET_INTEL_NOTIFY_BACKFILL='weekly'"):
        dates_to_deliver(days, 3, "weekly")


def test_force_is_a_setting() -> None:
    assert ReportDelivery(force="true").forced and ReportDelivery(force=" TRUE ").forced
    assert not ReportDelivery().forced and not ReportDelivery(force="no").forced


def test_each_channel_gets_its_message(report: dict) -> None:
    files = ReportFiles(GOLDEN_REPORT.parent, date(2026, 3, 22))
    assert files.published
    mail, chat, invalid = parse_targets(
        "mailto://127.0.0.1:8025?from=r@example.com&to=a@example.com&format=text, "
        f"{CHAT_URLS['telegram']}, nonsense://x"
    )
    assert mail.is_email  # the plugin is e-mail; format=text only asks Apprise for text
    message = note_message(mail, files, "", REF)
    assert (message.title, message.body_format) == (email_subject(report), "html")
    assert message.body == email_html(files.path("html").read_text(), REF)
    assert message.attach == (str(files.path("md")),)
    note = note_message(chat, files, "", REF)
    assert note.title == "Market Intelligence Report 2026-03-22" and note.body_format == "text"
    assert note.body.endswith(f"Full report: {files.path('html')}") and not note.attach
    assert note_message(invalid, files, "", REF).body == ""
    blocked = date(2026, 3, 23)
    assert alert_message(mail, blocked, "stale", 0) == Message(
        "report 2026-03-23 blocked: stale", "report 2026-03-23 blocked: stale"
    )
    assert alert_message(chat, blocked, "stale", 0) == Message(
        "", "report 2026-03-23 blocked: stale"
    )


def test_a_target_apprise_cannot_load_fails_without_a_call() -> None:
    (target,) = parse_targets(f"nonsense://{SECRET}@example.com")
    waits: list[float] = []
    attempts = send(target, Message("t", "b"), date(2026, 3, 22), "note", REF, 1, 0.0, waits.append)
    assert [(a.outcome, a.error) for a in attempts] == [
        ("failed", "not a URL Apprise can load")
    ] * 2
    assert SECRET not in target.label and target.service == "invalid"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_stopped_server_is_retried_with_backoff_then_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    (target,) = parse_targets(f"json://user:{SECRET}@127.0.0.1:{free_port()}/hook")
    waits: list[float] = []
    attempts = send(target, Message("t", "b"), date(2026, 3, 22), "note", REF, 2, 0.5, waits.append)
    assert waits == [0.5, 1.0]
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert "Connection error" in attempts[-1].error and "127.0.0.1" in attempts[-1].error
    assert all(SECRET not in a.error and SECRET not in a.target for a in attempts)
    assert SECRET not in caplog.text


# --- real deliveries through the pipeline ----------------------------------------------------


class Inbox:
    """aiosmtpd handler: every message the local SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        return "250 OK"


class Webhook(ThreadingHTTPServer):
    """A local JSON webhook: every POST's path and JSON body."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)

    def bodies(self, path: str) -> list[dict]:
        return [body for at, body in self.posts if at == path]


@dataclass
class Readers:
    """The local servers, the targets pointing at them, and what they received so far."""

    inbox: Inbox
    webhook: Webhook
    urls: str

    def counts(self) -> tuple[int, int, int]:
        """(e-mails, report webhooks, alert webhooks) received so far."""
        hook = self.webhook
        return len(self.inbox.messages), len(hook.bodies("/reports")), len(hook.bodies("/alerts"))


@pytest.fixture(scope="module")
def readers() -> Iterator[Readers]:
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    webhook = Webhook()
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    urls = (
        f"mailto://127.0.0.1:{smtp_port}?from=reports@example.com&to=analyst@example.com,"
        f"json://user:{SECRET}@127.0.0.1:{webhook.server_address[1]}/reports"
    )
    yield Readers(inbox, webhook, urls)
    webhook.shutdown()
    smtp.stop()


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory, readers: Readers) -> Iterator[Pipeline]:
    """The demo data backfilled over 2026-03-20..22, an e-mail and a webhook reader."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        pipeline = Pipeline(tmp_path_factory.mktemp("delivery"), monkeypatch)
        port = readers.webhook.server_address[1]
        monkeypatch.setenv("MARKET_INTEL_NOTIFY_URLS", readers.urls)
        monkeypatch.setenv("MARKET_INTEL_ALERT_URLS", f"json://127.0.0.1:{port}/alerts")
        monkeypatch.setenv("MARKET_INTEL_REPORTS_BASE_URL", "https://reports.example.com/mi")
        monkeypatch.setenv("MARKET_INTEL_NOTIFY_RETRIES", "1")
        monkeypatch.setenv("MARKET_INTEL_NOTIFY_RETRY_SECONDS", "0")
        pipeline.backfill = pipeline.run("2026-03-20", "2026-03-22")
        assert pipeline.backfill.success
        yield pipeline


def run(pipeline: Pipeline, day: str, selection: list, tags: dict | None = None):
    """One date of the project's job, with run tags (``Pipeline.run`` sets none)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("market_intel_job").execute_in_process(
        partition_key=day,
        tags=tags or {},
        instance=DagsterInstance.ephemeral(),
        asset_selection=selection,
        raise_on_error=False,
    )


def ledger(pipeline: Pipeline, where: str = "TRUE") -> list[tuple]:
    return pipeline.query(
        f"SELECT report_date::VARCHAR, kind, target, outcome, attempt, message_id, error "
        f"FROM {LEDGER} WHERE {where} ORDER BY attempted_at"
    )


def delivery_metadata(result, day: str = "2026-03-22") -> dict:
    """What the UI shows on the delivery asset's materialization of ``day``."""
    (event,) = [
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.asset_key == DELIVERY
        and e.materialization.partition == day
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def everything_said(result) -> str:
    """Every message and metadata value of a run's events, as text."""
    return "\n".join(repr(event) for event in result.all_events)


class ExternalResources(HTMLParser):
    """Every reference in the HTML that points outside the message itself."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            outward = value and not value.startswith(("#", "data:", "cid:"))
            if outward and name in ("src", "href", "xlink:href", "srcset", "action", "data"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name == "style" and value and "url(" in value:
                self.found.append(f"<{tag} style={value!r}>")

    def handle_data(self, data: str) -> None:
        if "@import" in data or "url(http" in data or "url(//" in data:
            self.found.append(data[:80])


def test_a_backfill_delivers_one_note_per_reader_for_its_latest_date(
    delivered: Pipeline, readers: Readers
) -> None:
    assert readers.counts() == (1, 1, 0)
    rows = ledger(delivered)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("2026-03-22", "note", "sent", 1),
        ("2026-03-22", "note", "sent", 1),
    ]
    assert rows[0][2].startswith("mailto://127.0.0.1:")
    assert rows[1][2].startswith("json://user:****@127.0.0.1:")
    shown = delivery_metadata(delivered.backfill)
    assert "1 of 3 published date(s) to deliver (3 in the run)" in shown["delivery"]
    for row in rows:
        assert f"| 2026-03-22 | note | {row[2]} |" in shown["attempts"]
        assert row[5] in shown["attempts"] and row[5] in shown["ledger"]


def test_the_email_holds_the_html_report_inline(delivered: Pipeline, readers: Readers) -> None:
    (message,) = readers.inbox.messages[:1]
    report = json.loads((delivered.reports / "2026-03-22.json").read_text())
    assert message["Subject"] == f"Market Intelligence Report 2026-03-22: {headline(report)}"
    assert message["To"] == "analyst@example.com"
    html = message.get_body(("html",)).get_content()
    published = (delivered.reports / "2026-03-22.html").read_text()
    (ref,) = [row[5] for row in ledger(delivered) if row[2].startswith("mailto")]
    footer = f'<p class="delivery-ref">Delivered by market-intel, ref {ref}.</p>\n'
    # SMTP carries lines ending in CRLF: the same report, byte for byte, otherwise, but for
    # the links to the neighbouring reports (relative: they lead nowhere from a mailbox).
    assert 'class="pager"' in published
    unpaged = re.sub(r'<nav class="pager".*?</nav>\n', "", published)
    assert html.replace("\r\n", "\n").replace(footer, "").strip() == unpaged.strip()
    assert "6,506.48" in html and "<svg" in html  # figures and charts, inline
    parser = ExternalResources()
    parser.feed(html)
    assert parser.found == []
    (markdown,) = [part for part in message.iter_attachments()]
    assert markdown.get_filename() == "2026-03-22.md"
    assert markdown.get_payload(decode=True) == (delivered.reports / "2026-03-22.md").read_bytes()
    assert "S&P 500" in message.get_body(("plain",)).get_content()


def test_the_webhook_gets_the_short_note_with_the_link(
    delivered: Pipeline, readers: Readers
) -> None:
    (note,) = readers.webhook.bodies("/reports")
    report = json.loads((delivered.reports / "2026-03-22.json").read_text())
    assert note["title"] == "Market Intelligence Report 2026-03-22"
    assert note["message"].startswith(headline(report) + "\n")
    assert "US (closed, 2026-03-20): S&P 6,506.48 (-1.51%)" in note["message"]
    assert note["message"].endswith("Full report: https://reports.example.com/mi/2026-03-22.html")


def test_the_secret_is_never_shown(delivered: Pipeline) -> None:
    assert SECRET not in everything_said(delivered.backfill)
    assert SECRET not in repr(ledger(delivered))
    for path in delivered.reports.iterdir():
        assert SECRET not in path.read_text()


def test_a_second_run_of_a_delivered_date_sends_nothing(
    delivered: Pipeline, readers: Readers
) -> None:
    before = readers.counts()
    result = run(delivered, "2026-03-22", [REPORT, DELIVERY])
    assert result.success
    assert readers.counts() == before
    shown = delivery_metadata(result)
    assert "2 already delivered (not sent again)" in shown["delivery"]
    assert shown["attempts"].count("| 2026-03-22 |") == 0  # nothing tried in this run
    assert shown["ledger"].count("| 2026-03-22 | note |") == 2  # when it was delivered
    forced = run(delivered, "2026-03-22", [DELIVERY], tags={FORCE_TAG: "true"})
    assert forced.success
    assert readers.counts() == (before[0] + 1, before[1] + 1, before[2])


def test_a_stopped_server_fails_the_step_by_name_and_the_others_still_get_it(
    delivered: Pipeline,
    readers: Readers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dead = f"json://user:{SECRET}@127.0.0.1:{free_port()}/down"
    monkeypatch.setenv("MARKET_INTEL_NOTIFY_URLS", f"{readers.urls},{dead}")
    published = (delivered.reports / "2026-03-22.html").read_bytes()
    before = readers.counts()

    result = run(delivered, "2026-03-22", [DELIVERY], tags={FORCE_TAG: "true"})

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.step_failure_data.user_failure_data.description
    assert "json://user:****@127.0.0.1:" in description and "/down" in description
    assert "after 2 attempt(s)" in description and "Connection error" in description
    assert readers.counts() == (before[0] + 1, before[1] + 1, before[2])
    down = ledger(delivered, "target LIKE '%/down%'")
    assert [(r[3], r[4]) for r in down] == [("failed", 1), ("failed", 2)]
    assert (delivered.reports / "2026-03-22.html").read_bytes() == published
    assert SECRET not in everything_said(result) + repr(ledger(delivered)) + caplog.text

    # Not forced, a re-run tries only the target that did not get it.
    again = run(delivered, "2026-03-22", [DELIVERY])
    assert not again.success
    assert readers.counts() == (before[0] + 1, before[1] + 1, before[2])
    assert len(ledger(delivered, "target LIKE '%/down%'")) == 4


def test_nothing_configured_is_a_success_that_says_so(
    delivered: Pipeline, readers: Readers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_INTEL_NOTIFY_URLS", "")
    before = readers.counts()
    result = run(delivered, "2026-03-22", [DELIVERY], tags={FORCE_TAG: "true"})
    assert result.success
    assert delivery_metadata(result) == {"delivery": NOT_CONFIGURED}
    assert readers.counts() == before


def test_a_blocked_date_sends_only_the_alert(delivered: Pipeline, readers: Readers) -> None:
    """The demo data ends with crypto's 2026-03-21: the gate blocks report date 2026-03-23."""
    before = readers.counts()
    result = delivered.run("2026-03-23", raise_on_error=False)
    assert not result.success
    assert not (delivered.reports / "2026-03-23.json").exists()
    assert readers.counts() == (before[0], before[1], before[2] + 1)
    alert = readers.webhook.bodies("/alerts")[-1]
    assert alert["message"].startswith("report 2026-03-23 blocked: ")
    assert "\n" not in alert["message"] and len(alert["message"]) > len(
        "report 2026-03-23 blocked: "
    )
    assert [(r[0], r[1], r[3]) for r in ledger(delivered, "kind = 'alert'")] == [
        ("2026-03-23", "alert", "sent")
    ]
    # Once: the same blocked date again alerts nobody.
    assert not delivered.run("2026-03-23", selection=[REPORT], raise_on_error=False).success
    assert readers.counts() == (before[0], before[1], before[2] + 1)
