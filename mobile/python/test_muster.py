"""The Python bindings as a coordinator scripts them: a store, contacts,
an event, errors as exceptions, and a sync with a real muster-server on
127.0.0.1. Run by scripts/test-python (MUSTER_SERVER names the relay
binary; the generated module and its library are on PYTHONPATH)."""

import asyncio
import os
from datetime import datetime, timezone
import subprocess

import pytest

import muster
import muster_core


@pytest.fixture
def relay(tmp_path):
    """A muster-server on 127.0.0.1 and an unused port; yields (url, token)."""
    server = os.environ["MUSTER_SERVER"]
    data = tmp_path / "relay"
    proc = subprocess.Popen(
        [server, "serve", "--listen", "127.0.0.1:0", "--data", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info"},
    )
    address = None
    for line in proc.stderr:
        if "http://" in line:
            address = line.split("http://", 1)[1].split()[0]
            break
    assert address, "the relay exited before listening"

    def token(role):
        out = subprocess.run(
            [server, "token", "create", "--role", role, "--data", str(data)],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    yield f"http://{address}", token
    proc.kill()
    proc.wait()


def test_contacts_and_an_event_on_a_local_store(tmp_path):
    store = muster.Muster.open(str(tmp_path / "office.db"))
    ana = store.create_contact(muster_core.NewContact(name="Ana Silva", emails=["Ana@Example.ORG"]))
    store.create_contact(muster_core.NewContact(name="Bo Chen"))
    found = store.search_contacts("silv", 10)
    assert [c.id for c in found] == [ana]
    assert found[0].email == "Ana@example.org"  # domains are lower-cased

    gala = store.create_event(muster.NewEvent(title="Gala", starts_at=datetime.fromtimestamp(1_800_000_000, timezone.utc), capacity=1))
    store.register(gala, ana, False)
    bo = store.search_contacts("chen", 1)[0].id
    store.register(gala, bo, False)
    roster = {line.contact_id: line for line in store.roster(gala)}
    assert roster[ana].status == muster_core.SignupStatus.REGISTERED
    assert roster[bo].status == muster_core.SignupStatus.WAITLISTED
    assert roster[bo].waitlist_position == 1
    store.cancel(gala, ana)
    roster = {line.contact_id: line for line in store.roster(gala)}
    assert roster[bo].status == muster_core.SignupStatus.REGISTERED, "the waitlist moves up"


def test_errors_are_exceptions_with_a_readable_message(tmp_path):
    store = muster.Muster.open(str(tmp_path / "office.db"))
    with pytest.raises(muster.MusterError.Invalid) as bad:
        store.create_contact(muster_core.NewContact(name="Ana", emails=["not an email"]))
    assert str(bad.value).startswith("invalid email")
    assert (bad.value.field, bad.value.value) == ("email", "not an email")
    with pytest.raises(muster.MusterError.NotFound) as missing:
        store.contact("c_00000000000000000000000000")
    assert str(missing.value) == "no contact with id c_00000000000000000000000000 on this device"
    assert (missing.value.kind, missing.value.id) == ("contact", "c_00000000000000000000000000")
    assert store.contact_count() == 0


def test_a_script_syncs_with_the_relay(tmp_path, relay):
    url, token = relay
    office = muster.Muster.open(str(tmp_path / "office.db"))
    enrolled = asyncio.run(office.enroll(url, token("coordinator")))
    assert enrolled.reached_relay
    ana = office.create_contact(muster_core.NewContact(name="Ana Silva"))
    assert office.sync_status().pending_changes > 0
    summary = asyncio.run(office.sync_now())
    assert summary.pending_changes == 0
    assert office.sync_status().last_confirmed_at is not None

    laptop = muster.Muster.open(str(tmp_path / "laptop.db"))
    asyncio.run(laptop.enroll(url, token("observer")))
    assert laptop.contact(ana).name == "Ana Silva"
    with pytest.raises(muster.MusterError.Unauthorized):
        asyncio.run(muster.Muster.open(str(tmp_path / "x.db")).enroll(url, "wrong"))


def test_records_print_compare_and_hash_like_python_values(tmp_path):
    store = muster.Muster.open(str(tmp_path / "office.db"))
    ana = store.create_contact(muster_core.NewContact(name="Ana Silva", emails=["ana@example.org"]))
    [dup] = store.possible_duplicates(muster_core.NewContact(name="Ana Silva", emails=["ana@example.org"]))
    # A repr with the fields, in a list too (once "<muster.PossibleDuplicate object …>").
    assert repr(dup).startswith(f"PossibleDuplicate(contact_id='{ana}', name='Ana Silva'")
    assert "reasons=[" in repr([dup])
    # Compared with None or another type: not equal, no AttributeError.
    assert dup != None  # noqa: E711
    assert dup != "Ana Silva"
    # Hashable, by value: a set of two equal records holds one.
    [again] = store.possible_duplicates(muster_core.NewContact(name="Ana Silva", emails=["ana@example.org"]))
    assert dup == again and hash(dup) == hash(again)
    assert len({dup, again}) == 1
    summary = store.search_contacts("ana", 5)[0]
    assert {summary: "seen"}[store.search_contacts("ana", 5)[0]] == "seen"
    assert muster_core.NewContact(name="x") != muster_core.NewContact(name="y")


def test_a_store_closes_with_close_or_at_the_end_of_with(tmp_path):
    path = str(tmp_path / "office.db")
    with muster.Muster.open(path) as store:
        store.create_contact(muster_core.NewContact(name="Ana Silva"))
    with pytest.raises(muster.MusterError.NotAllowed):
        store.contact_count()
    assert not (tmp_path / "office.db-wal").exists()
    again = muster.Muster.open(path)
    assert again.contact_count() == 1
    again.close()
    again.close()  # twice does nothing
    with pytest.raises(muster.MusterError.NotAllowed):
        again.list_events()


def test_the_readme_python_example_runs(tmp_path, relay, monkeypatch, capsys):
    """README.md's Python example, as a newcomer copies it."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    block = readme.split("<!-- python example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    url, token = relay
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"relay_url": url, "token": token("coordinator")})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("email: invalid email"), printed
    assert printed[1] == "0", printed
    assert printed[2].startswith("[RosterLine(contact_id='c_"), printed


def test_a_coordinators_script_pages_edits_and_watches(tmp_path):
    """The SDK's lists, edits, feedback, duplicates and a live query, from Python."""
    import threading

    with muster.Muster.open(str(tmp_path / "office.db")) as store:
        gala = store.create_event(muster.NewEvent(title="Gala", starts_at=datetime(2030, 3, 17, 18, 0, tzinfo=timezone.utc), capacity=1))
        ana = store.create_contact(muster_core.NewContact(name="Ana Silva", emails=["ana@example.org"]))
        twin = store.create_contact(muster_core.NewContact(name="Ana Silva", emails=["ANA@example.org"]))
        bo = store.create_contact(muster_core.NewContact(name="Bo Chen"))

        seen = []
        heard = threading.Event()

        class Roster(muster.RosterObserver):
            def on_roster(self, lines):
                seen.append([(l.contact_id, l.status) for l in lines])
                heard.set()

        live = store.observe_roster(gala, Roster())
        assert heard.wait(10) and seen[0] == []
        for c in (ana, twin, bo):
            store.register(gala, c, False)
        store.merge(ana, twin)
        waiting = store.roster(gala, status=muster_core.SignupStatus.WAITLISTED)
        assert [(l.contact_id, l.waitlist_position) for l in waiting] == [(bo, 1)]
        assert [l.contact_id for l in store.roster(gala, limit=1, offset=1)] == [bo]
        store.edit_event(gala, muster.EventEdit(capacity=2))
        assert store.event(gala).waitlisted == 0
        # Times are datetimes, in and out.
        starts = store.event(gala).starts_at
        assert starts.replace(tzinfo=timezone.utc) == datetime(2030, 3, 17, 18, 0, tzinfo=timezone.utc), starts
        assert store.upcoming_events()[0].id == gala
        for _ in range(100):
            if seen[-1] == [(ana, muster_core.SignupStatus.REGISTERED), (bo, muster_core.SignupStatus.REGISTERED)]:
                break
            threading.Event().wait(0.05)
        assert seen[-1] == [(ana, muster_core.SignupStatus.REGISTERED), (bo, muster_core.SignupStatus.REGISTERED)]
        live.cancel()

        store.update_contact(bo, muster_core.ContactEdit(city="Leeds", custom={"t-shirt": "M"}))
        assert (store.contact(bo).address.city, store.contact(bo).custom) == ("Leeds", {"t-shirt": "M"})
        case = store.create_feedback(muster_core.NewFeedback(contact_id=bo, channel="phone", category="complaint", text="Cold hall"))
        store.assign_feedback(case, "Dana")
        store.answer_feedback(case, "The heating is fixed.")
        assert store.feedback(case).status == muster_core.FeedbackStatus.RESPONDED
        assert [f.id for f in store.list_feedback(10, status=muster_core.FeedbackStatus.RESPONDED)] == [case]
        assert [p.contact_id for p in store.possible_duplicates_of_contact(bo)] == []
        with pytest.raises(muster.MusterError.Invalid) as bad:
            store.edit_event(gala, muster.EventEdit(capacity=-1))
        assert bad.value.field == "capacity"
