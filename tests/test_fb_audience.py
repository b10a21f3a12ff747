"""Audience ops: normalization and hashing by Facebook's rules, customer-file streaming in sessions, retries of one
failed batch, PII kept out of logs, results and the audit log; website, engagement and lookalike audiences."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fb_audience
import fb_hashing
from fb_audience import detect_schema, iter_batches, prepare_row
from fb_hashing import normalize_and_hash, schema_key
from fb_utils import ValidationError, configure_logging, reset_progress_handler, set_progress_handler


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


ALREADY = sha("someone@example.com")

# (key, raw value, the normalized text Facebook's rules give (hashed here independently), or None = invalid)
TABLE = [
    ("EMAIL", "  John.Doe@Example.COM ", "john.doe@example.com"),
    ("EMAIL", "\tMIXED@Case.Org\n", "mixed@case.org"),
    ("EMAIL", "not an email", None),
    ("EMAIL", "two words@example.com", None),
    ("PHONE", "+1 (650) 555-1234", "16505551234"),
    ("PHONE", "1-650-555-1234", "16505551234"),
    ("PHONE", "+44 20 7946 0958", "442079460958"),
    ("PHONE", "0044 20 7946 0958", "442079460958"),
    ("PHONE", "+49.30.1234567", "49301234567"),
    ("PHONE", "020 7946 0958", None),  # national number: no country code
    ("PHONE", "555-CALL-NOW", None),
    ("PHONE", "12", None),
    ("FN", "José", "josé"),
    ("FN", "Jose\u0301", "josé"),  # decomposed accent: same as composed
    ("FN", "  MARY-JANE ", "maryjane"),
    ("LN", "O'Brien", "obrien"),
    ("LN", "Müller", "müller"),
    ("LN", "山田", "山田"),
    ("LN", "1234", None),
    ("CT", "New York", "newyork"),
    ("CT", "São Paulo", "sãopaulo"),
    ("ST", "CA", "ca"),
    ("ZIP", "94025-1234", "94025"),
    ("ZIP", " 94025 ", "94025"),
    ("ZIP", "SW1A 1AA", "sw1a1aa"),
    ("COUNTRY", "US", "us"),
    ("COUNTRY", " gb ", "gb"),
    ("COUNTRY", "United States", "us"),
    ("COUNTRY", "Germany", "de"),
    ("COUNTRY", "USA", "us"),
    ("COUNTRY", "UK", "gb"),
    ("COUNTRY", "Atlantis", None),
    ("DOBY", "1985", "1985"),
    ("DOBY", "85", None),
    ("DOBY", "1800", None),
    ("DOBM", "3", "03"),
    ("DOBM", "03", "03"),
    ("DOBM", "March", "03"),
    ("DOBM", "13", None),
    ("DOBD", "7", "07"),
    ("DOBD", "31", "31"),
    ("DOBD", "32", None),
    ("GEN", "Female", "f"),
    ("GEN", "M", "m"),
    ("GEN", "man", "m"),
    ("GEN", "woman", "f"),
    ("GEN", "unknown", None),
]


@pytest.mark.parametrize("key,raw,normalized", TABLE)
def test_normalize_and_hash_table(key, raw, normalized):
    expected = sha(normalized) if normalized is not None else None
    assert normalize_and_hash(key, raw) == expected


@pytest.mark.parametrize("key", ["EMAIL", "PHONE", "FN", "ZIP", "COUNTRY"])
def test_already_hashed_values_pass_through(key):
    assert normalize_and_hash(key, ALREADY) == ALREADY
    assert normalize_and_hash(key, "  " + ALREADY.upper() + " ") == ALREADY


def test_extern_id_and_madid_are_not_hashed():
    assert normalize_and_hash("EXTERN_ID", "  cust-00042 ") == "cust-00042"
    madid = "AB12CD34-0000-1111-2222-333344445555"
    assert normalize_and_hash("MADID", madid) == madid.lower()  # the SDK's multi-key path would hash it
    assert normalize_and_hash("MADID", "not-a-device-id") is None
    assert normalize_and_hash("external_id", "x1") == "x1"


def test_capi_keys_follow_the_same_rules():
    assert normalize_and_hash("em", " A@B.Co ") == sha("a@b.co")
    assert normalize_and_hash("ph", "+1 650 555 1234") == sha("16505551234")
    assert normalize_and_hash("db", "1985-03-07") == sha("19850307")
    assert normalize_and_hash("db", "1985-02-30") is None
    assert normalize_and_hash("ge", "Male") == sha("m")


@pytest.mark.parametrize(
    "header,key",
    [
        ("email", "EMAIL"),
        ("E-mail", "EMAIL"),
        ("Email Address", "EMAIL"),
        ("phone_number", "PHONE"),
        ("first_name", "FN"),
        ("Last Name", "LN"),
        ("zip_code", "ZIP"),
        ("gender", "GEN"),
        ("external_id", "EXTERN_ID"),
        ("IDFA", "MADID"),
        ("notes", None),
    ],
)
def test_schema_detection_from_aliases(header, key):
    assert schema_key(header) == key


def test_header_without_known_columns_or_with_duplicates_is_refused():
    with pytest.raises(ValidationError):
        detect_schema(["notes", "comment"])
    with pytest.raises(ValidationError):
        detect_schema(["email", "E-mail"])
    schema = detect_schema(["Email", "notes", "Phone"])
    assert schema.keys == ["EMAIL", "PHONE"] and schema.columns == [0, 2] and schema.ignored == ["notes"]


def test_invalid_rows_are_counted_by_number_and_never_kept():
    rows = [
        ["email", "phone", "fn"],
        ["good@example.com", "+1 650 555 1234", "Ann"],
        ["bad-email", "+1 650 555 1234", "Bob"],  # row 3
        ["", "", ""],  # row 4: empty
        ["", "+44 20 7946 0958", ""],
        ["ok@example.com", "0650 555", "Cy"],
    ]  # row 6: national phone
    schema = detect_schema(rows[0])
    invalid, counts = [], {"read": 0, "invalid": 0}
    batches = list(iter_batches(schema, rows, invalid, counts))
    assert counts == {"read": 5, "invalid": 3}
    assert [(r.row, r.fields) for r in invalid] == [(3, ["EMAIL"]), (4, ["(empty row)"]), (6, ["PHONE"])]
    sent = [v for batch in batches for v in batch]
    assert sent == [[sha("good@example.com"), sha("16505551234"), sha("ann")], ["", sha("442079460958"), ""]]
    assert prepare_row(schema, 9, ["x@y.zz"]).values == [sha("x@y.zz"), "", ""]  # short row: missing cells empty


PHONE_TEXT = st.text(alphabet="0123456789 +()-./x\t٣", max_size=24)
EMAIL_TEXT = st.one_of(
    st.emails(),
    st.text(alphabet="aB@.- _\té0", max_size=20),
    st.just(ALREADY),
    st.just(ALREADY.upper()),
    st.just("6" * 64),
)


@settings(max_examples=400, deadline=None)
@given(PHONE_TEXT)
def test_fast_phone_path_agrees_with_the_reference_rules(text):
    """The bytes path decides ASCII digits with punctuation; everything else goes to _phone: both always agree."""
    text = text.strip()
    if text:
        expected = fb_hashing._phone(text)
        assert fb_hashing._phone_digits(text) == (expected.encode() if expected is not None else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(EMAIL_TEXT, st.one_of(PHONE_TEXT, st.just(ALREADY))), min_size=1, max_size=30))
def test_column_hashing_agrees_with_normalize_and_hash_value_by_value(rows):
    for key, column, hasher in (
        ("EMAIL", 0, fb_hashing._hash_email_column),
        ("PHONE", 1, fb_hashing._hash_phone_column),
    ):
        values = [row[column] for row in rows]
        expected = ["" if not v.strip() else normalize_and_hash(key, v) for v in values]
        assert hasher(values) == expected


CELL = st.text(alphabet="ab@.1 +-é\t", max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(CELL, min_size=0, max_size=4), min_size=0, max_size=40),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
    st.integers(min_value=1, max_value=7),
)
def test_quote_free_csv_is_read_as_csv_reader_reads_it(tmp_path_factory, rows, newline, final_break, size):
    """The split fast paths (whole blocks, then line by line for ragged or blank lines) give csv.reader's rows."""
    lines = ["email,phone,fn"] + [",".join(row) for row in rows]
    path = tmp_path_factory.mktemp("csv") / "list.csv"
    path.write_text(newline.join(lines) + (newline if final_break else ""), encoding="utf-8", newline="")
    schema = detect_schema(["email", "phone", "fn"])
    with open(path, newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))[1:]
    expected = [(n, [r[i] if i < len(r) else "" for i in range(3)]) for n, r in enumerate(records, start=2) if r]
    got = [
        (n, [chunk.columns[i][k] for i in range(3)])
        for chunk in fb_audience._chunks(schema, str(path), size)
        for k, n in enumerate(chunk.numbers)
    ]
    assert got == expected
    assert fb_audience.source_total(str(path)) == len(records)


def test_csv_with_quotes_goes_through_csv_reader(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('email,notes\n"a@b.co","one, two"\n"c@d.co","multi\nline"\nx@y.zz,\n', encoding="utf-8")
    schema = detect_schema(["email", "notes"])
    chunks = list(fb_audience._chunks(schema, str(path), 10))
    assert [c.numbers for c in chunks] == [[2, 3, 4]] and chunks[0].columns == [["a@b.co", "c@d.co", "x@y.zz"]]
    assert fb_audience.source_total(str(path)) == 3


def test_csv_is_streamed_in_batches(tmp_path):
    path = tmp_path / "list.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "Country"])
        for i in range(25):
            writer.writerow([f"u{i}@example.com", "us"])
    schema = detect_schema(fb_audience.source_header(str(path)))
    invalid, counts = [], {"read": 0, "invalid": 0}
    sizes = [len(b) for b in iter_batches(schema, str(path), invalid, counts, size=10)]
    assert sizes == [10, 10, 5] and fb_audience.source_total(str(path)) == 25 and not invalid


# ---------------------------------------------------------------------------------------------------------------
# End to end through the dispatcher and the sandbox
# ---------------------------------------------------------------------------------------------------------------


def write_csv(path, count: int, *, bad_every: int = 0) -> list[str]:
    """A customer file of ``count`` rows; every ``bad_every``-th row has a broken email. Returns the raw emails."""
    emails = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["E-mail", "phone_number", "first_name", "Country"])
        for i in range(count):
            email = f"Person.{i}@Example.com" if not (bad_every and i % bad_every == 0) else f"broken{i}.example.com"
            emails.append(email)
            writer.writerow([email, f"+1 650 {i % 1000:03d} {i % 10000:04d}", f"Zoë{i}", "United States"])
    return emails


async def _new_list(facebook, name="Customers") -> str:
    created = await facebook.call("create_customer_list_audience", {"name": name, "description": "test list"})
    assert created.ok, created.text
    return created.data["audience_id"]


def _users_requests(stats: dict) -> int:
    return sum(
        n for route, n in stats["by_route"].items() if route.endswith("/users") or route.endswith("/usersreplace")
    )


async def test_25000_rows_go_in_three_session_batches(facebook, sandbox, tmp_path):
    audience_id = await _new_list(facebook)
    path = tmp_path / "big.csv"
    write_csv(path, 25_000)
    progress = []
    token = set_progress_handler(lambda label, sent, total: progress.append((sent, total)))
    await sandbox.control("POST", "stats/reset")
    try:
        result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    finally:
        reset_progress_handler(token)
    assert result.ok, result.text
    assert _users_requests(await sandbox.stats()) == 3
    assert result.data["batches"] == 3 and result.data["rows_sent"] == 25_000 and result.data["num_received"] == 25_000
    assert result.data["invalid_rows"] == 0 and result.data["schema"] == ["EMAIL", "PHONE", "FN", "COUNTRY"]
    assert progress == [(10_000, 25_000), (20_000, 25_000), (25_000, 25_000)]
    got = await facebook.call("get_audience", {"audience_id": audience_id})
    assert got.ok and ("people" in got.text or "size" in got.text)


async def test_failed_batch_is_retried_alone(facebook, sandbox, graph, tmp_path):
    graph.max_retries = 0  # the op's own bounded retry is what is tested here
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    write_csv(path, 25_000)
    await sandbox.fault(kind="http_500", method="POST", path=r"^\d+/users$", count=1, skip=1)  # batch 2's first try
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    assert result.ok, result.text
    assert result.data["retried_batches"] == [2]
    assert _users_requests(await sandbox.stats()) == 4  # 3 batches + batch 2 once more; batches 1 and 3 not re-sent
    assert result.data["num_received"] == 25_000


async def test_last_batch_waits_for_every_other_batch(facebook, sandbox, tmp_path):
    """The first batch opens the session and travels alone; then batches travel two at a time; the last one closes
    the session, so it goes only when all others have arrived. Batch 2 is held back by the sandbox here: batch 3
    overtakes it, batch 4 must still wait for it (a last batch sent early would be refused: the session is closed)."""
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    write_csv(path, 35_000)
    await sandbox.fault(kind="delay", method="POST", path=r"^\d+/users$", count=1, skip=1, delay_ms=1500)
    result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    assert result.ok, result.text
    assert result.data["batches"] == 4 and result.data["num_received"] == 35_000 and not result.data["retried_batches"]
    assert fb_audience.BATCHES_IN_FLIGHT == 2


async def test_batch_that_keeps_failing_stops_with_a_clear_error(facebook, sandbox, graph, tmp_path):
    graph.max_retries = 0
    graph.settle_window = 0.2  # the late-write wait before the session is read again: short here
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    write_csv(path, 50)
    await sandbox.fault(kind="http_500", method="POST", path=r"^\d+/users$", count=10)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    assert (
        not result.ok
        and result.text.startswith("ERROR network: Batch 1 of the upload")
        and "was not received" in result.text
    )
    assert result.data["outcome"] == "error"  # the session showed it missing after every send: not unknown
    assert _users_requests(await sandbox.stats()) == fb_audience.MAX_CHUNK_ATTEMPTS


async def test_no_raw_pii_in_logs_results_or_audit(facebook, sandbox, store, tmp_path):
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    try:
        audience_id = await _new_list(facebook)
        path = tmp_path / "list.csv"
        emails = write_csv(path, 40, bad_every=7)
        from_file = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
        rows = [
            {
                "email": "Secret.Person@Example.org",
                "first_name": "Zebedee",
                "phone": "+1 415 555 0199",
                "zip": "94107-1234",
            },
            {"email": "oops-no-at-sign", "first_name": "Quentinette", "phone": "", "zip": ""},
        ]
        inline = await facebook.call("add_users", {"audience_id": audience_id, "source": rows})
        removed = await facebook.call("remove_users", {"audience_id": audience_id, "source": rows[:1]})
        audit = await facebook.call("audit_log", {"limit": 10})
    finally:
        configure_logging()
    assert from_file.ok and inline.ok and removed.ok, (from_file.text, inline.text, removed.text)
    assert from_file.data["invalid_rows"] == 6 and from_file.data["rows_sent"] == 34
    assert [r["row"] for r in from_file.data["invalid_row_numbers"]] == [2, 9, 16, 23, 30, 37]
    assert inline.data["invalid_row_numbers"] == [{"row": 2, "fields": ["EMAIL"]}]
    raw_values = emails + [
        "Zoë0",
        "zoë0",
        "Secret.Person@Example.org",
        "secret.person@example.org",
        "Zebedee",
        "zebedee",
        "Quentinette",
        "oops-no-at-sign",
        "415 555 0199",
        "14155550199",
        "94107",
    ]
    produced = stream.getvalue() + json.dumps([r.data for r in (from_file, inline, removed, audit)], default=str)
    produced += "".join(r.text for r in (from_file, inline, removed, audit))
    entries = await store.list_audit(facebook.workspace.id, limit=20)
    produced += json.dumps([vars(e) if hasattr(e, "__dict__") else e for e in entries], default=str)
    assert stream.getvalue()  # the logs were captured
    leaked = [v for v in raw_values if v in produced]
    assert leaked == []


async def test_dry_run_shows_counts_not_values(facebook, tmp_path):
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    emails = write_csv(path, 12)
    dry = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path), "dry_run": True})
    assert dry.ok and "12" in dry.text
    assert not any(e in dry.text or e in json.dumps(dry.data) for e in emails)


async def test_replace_users_and_bad_header(facebook, tmp_path):
    audience_id = await _new_list(facebook)
    replaced = await facebook.call(
        "replace_users",
        {
            "audience_id": audience_id,
            "source": [["EMAIL", "MADID"], ["a@b.co", "AB12CD34-0000-1111-2222-333344445555"]],
        },
    )
    assert replaced.ok, replaced.text
    assert replaced.data["rows_sent"] == 1 and replaced.data["schema"] == ["EMAIL", "MADID"]
    bad = await facebook.call("add_users", {"audience_id": audience_id, "source": [["notes"], ["x"]]})
    assert not bad.ok and "ERROR validation" in bad.text


async def test_website_engagement_lookalike_and_crud(facebook, graph, demo_accounts):
    account = demo_accounts["USD"]
    pixels = await graph.get_all(f"{account}/adspixels", {"fields": "id"})
    assert pixels
    website = await facebook.call(
        "create_website_audience",
        {"name": "Cart 30d", "pixel_id": pixels[0]["id"], "url_contains": "/cart", "retention_days": 30},
    )
    assert website.ok, website.text
    too_long = await facebook.call(
        "create_website_audience", {"name": "x", "pixel_id": pixels[0]["id"], "retention_days": 181}
    )
    assert not too_long.ok and "retention_days" in too_long.text
    pages = await graph.get_all("me/accounts", {"fields": "id"})
    engaged = await facebook.call(
        "create_engagement_audience",
        {"name": "Engagers", "source_id": pages[0]["id"], "event": "page_engaged", "retention_days": 90},
    )
    assert engaged.ok, engaged.text

    source = await _new_list(facebook, "Seed list")
    rows = [["email"]] + [[f"buyer{i}@example.com"] for i in range(3000)]
    filled = await facebook.call("add_users", {"audience_id": source, "source": rows})
    assert filled.ok, filled.text
    tiers = await facebook.call(
        "create_lookalike", {"origin_audience_id": source, "country": "United States", "tiers": [1, 3, 5]}
    )
    assert tiers.ok, tiers.text
    assert len(tiers.data["audience_ids"]) == 3
    specs = [a["lookalike_spec"] for a in tiers.data["audiences"]]
    assert [(s.get("starting_ratio", 0), s["ratio"]) for s in specs] == [(0, 0.01), (0.01, 0.03), (0.03, 0.05)]
    from fb_audience import lookalike_takes_country

    if lookalike_takes_country(facebook.graph.api_version):
        assert {s["country"] for s in specs} == {"US"}
    else:  # v27.0+: locations come from the ad sets (Meta SDK v27.0.0 release note)
        assert all("country" not in s for s in specs)
    bad_ratio = await facebook.call("create_lookalike", {"origin_audience_id": source, "country": "US", "ratio": 25})
    assert not bad_ratio.ok

    listed = await facebook.call("list_audiences")
    assert listed.ok
    ids = {a["id"] for a in listed.data["audiences"]}
    assert {website.data["audience_id"], engaged.data["audience_id"], source, *tiers.data["audience_ids"]} <= ids
    got = await facebook.call("get_audience", {"audience_id": source})
    assert got.ok and got.data["audience"]["id"] == source
    renamed = await facebook.call("update_audience", {"audience_id": source, "name": "Seed list v2"})
    assert renamed.ok, renamed.text
    assert (await facebook.call("get_audience", {"audience_id": source})).data["audience"]["name"] == "Seed list v2"
    deleted = await facebook.call("delete_audience", {"audience_id": website.data["audience_id"]})
    assert deleted.ok, deleted.text
    gone = await facebook.call("get_audience", {"audience_id": website.data["audience_id"]})
    assert not gone.ok


async def test_saved_audiences(facebook):
    listed = await facebook.call("list_saved_audiences")
    assert listed.ok, listed.text
    for saved in listed.data["saved_audiences"][:1]:
        got = await facebook.call("get_saved_audience", {"saved_audience_id": saved["id"]})
        assert got.ok and got.data["saved_audience"]["id"] == saved["id"]


# ---------------------------------------------------------------------------------------------------------------
# Large files: hashed by worker processes, one per core, each on its own part of the file
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def hash_in_processes(monkeypatch):
    """Files of a few thousand rows are hashed by three worker processes here (normally from 50,000 rows a process,
    one per core), whatever the machine's number of cores."""
    monkeypatch.setattr(fb_audience, "ROWS_PER_HASH_WORKER", 2_000)
    monkeypatch.setattr(fb_audience.os, "cpu_count", lambda: 3)


def _members(sandbox, audience_id: str) -> set[int]:
    """The people the sandbox holds for an audience (their identities)."""
    from fb_sandbox import audiences

    store = sandbox.server.sandbox.store
    return audiences._people(store.db, store.get(audience_id)["_members_key"])


async def test_worker_processes_send_what_a_thread_sends(facebook, sandbox, tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    write_csv(path, 25_000, bad_every=997)
    by_thread = await facebook.call(
        "add_users", {"audience_id": await _new_list(facebook, "thread"), "source": str(path)}
    )
    monkeypatch.setattr(fb_audience, "ROWS_PER_HASH_WORKER", 2_000)
    monkeypatch.setattr(fb_audience.os, "cpu_count", lambda: 3)
    progress = []
    token = set_progress_handler(lambda label, sent, total: progress.append((sent, total)))
    await sandbox.control("POST", "stats/reset")
    try:
        audience_id = await _new_list(facebook, "processes")
        by_processes = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    finally:
        reset_progress_handler(token)
    assert by_thread.ok and by_processes.ok, (by_thread.text, by_processes.text)
    assert by_thread.data["hash_processes"] == 0 and by_processes.data["hash_processes"] == 3
    for key in ("rows_read", "rows_sent", "num_received", "invalid_rows", "invalid_row_numbers", "num_invalid_entries"):
        assert by_processes.data[key] == by_thread.data[key], key
    assert [r["row"] for r in by_processes.data["invalid_row_numbers"]] == [i + 2 for i in range(0, 25_000, 997)]
    assert by_processes.data["rows_sent"] == 25_000 - 26
    assert _members(sandbox, audience_id) == _members(sandbox, by_thread.data["audience_id"])
    assert _users_requests(await sandbox.stats()) == by_processes.data["batches"] == 3  # each process's part: one batch
    assert progress[-1] == (25_000, 25_000) and [sent for sent, _ in progress] == sorted(sent for sent, _ in progress)


async def test_last_batch_from_worker_processes_closes_the_session(facebook, sandbox, tmp_path, hash_in_processes):
    """The batch that carries last_batch_flag is sent after every other batch has arrived, whichever process made it:
    a replace swaps the list in exactly once, with every row."""
    path = tmp_path / "big.csv"
    write_csv(path, 36_000)
    audience_id = await _new_list(facebook)
    first = (
        await facebook.call("add_users", {"audience_id": audience_id, "source": str(tmp_path / "first.csv")})
        if write_csv(tmp_path / "first.csv", 500)
        else None
    )
    await sandbox.fault(kind="delay", method="POST", path=r"^\d+/usersreplace$", count=1, delay_ms=1000)
    replaced = await facebook.call("replace_users", {"audience_id": audience_id, "source": str(path)})
    assert first.ok and replaced.ok, (first.text, replaced.text)
    assert (
        replaced.data["hash_processes"] == 3
        and replaced.data["batches"] >= 4
        and replaced.data["num_received"] == 36_000
    )
    assert len(_members(sandbox, audience_id)) == 36_000


async def test_file_that_is_not_utf8_is_refused_before_anything_is_sent(facebook, sandbox, tmp_path, hash_in_processes):
    path = tmp_path / "latin1.csv"
    write_csv(path, 12_000)
    with open(path, "ab") as handle:
        handle.write("Jos\u00e9@example.com,+1 650 555 0100,Jos\u00e9,Spain\n".encode("latin-1"))
    audience_id = await _new_list(facebook)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    assert not result.ok and "Line 12002 of the file is not UTF-8 text" in result.text and "CSV UTF-8" in result.text
    assert "Jos" not in result.text and "Traceback" not in result.text
    assert _users_requests(await sandbox.stats()) == 0


async def test_hashing_falls_back_to_a_thread_when_no_process_can_start(
    facebook, sandbox, tmp_path, hash_in_processes, monkeypatch
):
    monkeypatch.setattr(fb_audience.sys, "executable", str(tmp_path / "no-such-python"))
    path = tmp_path / "big.csv"
    write_csv(path, 9_000)
    result = await facebook.call("add_users", {"audience_id": await _new_list(facebook), "source": str(path)})
    assert result.ok, result.text
    assert result.data["hash_processes"] == 0 and result.data["rows_sent"] == 9_000


async def test_worker_process_that_dies_stops_the_upload_without_leaking_values(
    facebook, sandbox, tmp_path, hash_in_processes, monkeypatch
):
    """A worker that ends without its closing frame after batches were sent: the upload stops with one line naming
    the error's type only (its message could hold a customer's value), and how much was sent before."""
    crashing = tmp_path / "crashing_worker.py"
    crashing.write_text(
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(fb_hashing.__file__).rsplit('/', 1)[0]!r})\n"
        "import fb_hashing\n"
        "job = json.loads(sys.argv[1])\n"
        "class Out:  # the second and third parts: every batch, then a crash instead of the closing frame\n"
        "    def write(self, data):\n"
        "        if job['first_row'] > 2 and data.startswith(b'{\"done\"'):\n"
        "            time.sleep(2)  # the first part's batches go first\n"
        "            raise ValueError('could not read secret.person@example.org')\n"
        "        sys.stdout.buffer.write(data)\n"
        "    def flush(self):\n"
        "        sys.stdout.buffer.flush()\n"
        "fb_hashing.work(job, Out())\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(fb_hashing, "__file__", str(crashing))
    path = tmp_path / "big.csv"
    write_csv(path, 9_000)
    result = await facebook.call("add_users", {"audience_id": await _new_list(facebook), "source": str(path)})
    assert not result.ok and "a hashing process stopped early (ValueError)" in result.text
    assert "secret.person" not in result.text and "Run the same upload again" in result.text
    assert "were sent before it" in result.text and result.data["rows_sent"] > 0


@pytest.mark.parametrize(
    "content, line",
    [(b"email\na@b.co\nx@y.co\xc3", 3), (b"email\na@b.co\n\xff@y.co\nc@d.co\n", 3), (b"em\xe4il\na@b.co\n", 1)],
)
async def test_small_file_that_is_not_utf8_is_refused_with_its_line(facebook, sandbox, tmp_path, content, line):
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("add_users", {"audience_id": await _new_list(facebook), "source": str(path)})
    assert not result.ok and "not UTF-8 text" in result.text and "CSV UTF-8" in result.text
    assert f"Line {line} of the file is not UTF-8 text" in result.text
    assert _users_requests(await sandbox.stats()) == 0


# ---------------------------------------------------------------------------------------------------------------
# Lost answers: the upload session's count decides; a batch is sent again only when the session shows it missing
# ---------------------------------------------------------------------------------------------------------------

USERS_POST = r"^\d+/users$"


async def _session_of(graph, audience_id: str) -> dict:
    sessions = (await graph.get(f"{audience_id}/sessions"))["data"]
    assert len(sessions) == 1, sessions
    return sessions[0]


@pytest.fixture
async def quick_facebook(store, sandbox, demo_token, demo_accounts):
    """The product over the sandbox with a Graph client that gives up after three seconds (a 10,000-row batch takes
    well under that, even on a loaded machine)."""
    from fb_utils import GraphClient
    from fi_facebook import Facebook
    from testkit import sandbox_clock

    client = GraphClient(
        demo_token["access_token"], app_secret=demo_token["app_secret"], base_url=sandbox.url, timeout=3.0
    )
    workspace = await store.ensure_workspace("quick")
    await store.set_selection(workspace.id, "ad_account", demo_accounts["USD"])
    try:
        yield Facebook(store, client, workspace, clock=sandbox_clock(sandbox))
    finally:
        await client.close()


@pytest.mark.parametrize(
    "fault", [{"kind": "drop"}, {"kind": "timeout", "delay_ms": 6000}], ids=["dropped", "timed-out"]
)
@pytest.mark.parametrize("op", ["add_users", "replace_users"])
async def test_last_batch_whose_answer_is_lost_is_confirmed_by_the_session(
    quick_facebook, sandbox, graph, tmp_path, fault, op
):
    facebook = quick_facebook
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    write_csv(path, 12_000)
    await sandbox.fault(**fault, when="after", method="POST", path=r"^\d+/users(replace)?$", count=1, skip=1)
    await sandbox.control("POST", "stats/reset")
    progress = []
    token = set_progress_handler(lambda label, sent, total: progress.append((sent, total)))
    try:
        result = await facebook.call(op, {"audience_id": audience_id, "source": str(path)})
    finally:
        reset_progress_handler(token)
    assert result.ok, result.text
    assert progress == [(10_000, 12_000), (12_000, 12_000)]
    assert "The answer to batch 2 was lost; Facebook's upload session shows 12,000 rows received" in result.text
    assert result.data["confirmed_by_session"] == [2] and result.data["batches"] == 2
    assert result.data["num_received"] == 12_000 and result.data["session"]["num_received"] == "12000"
    assert _users_requests(await sandbox.stats()) == 2  # the last batch was not sent again
    assert (await _session_of(graph, audience_id))["num_received"] == "12000"  # every row counted once
    assert len(_members(sandbox, audience_id)) == 12_000


async def test_lost_middle_batches_one_arrived_one_missing(facebook, sandbox, graph, tmp_path, monkeypatch):
    """Batch 2's answer is lost after Facebook stored it: counted, not re-sent. Batch 3's connection drops before
    Facebook reads it: the session still lacks it after the late-write wait, so it (and only it) goes again. One batch
    travels at a time here, so each loss is settled alone (two lost batches of one size in flight together, one of
    them arrived, is a count the session cannot explain: see test_arrived_subset)."""
    monkeypatch.setattr(facebook.graph, "settle_window", 0.2)  # the late-write wait: short here
    monkeypatch.setattr(fb_audience, "BATCHES_IN_FLIGHT", 1)
    audience_id = await _new_list(facebook)
    path = tmp_path / "list.csv"
    write_csv(path, 35_000)
    await sandbox.fault(kind="drop", when="after", method="POST", path=USERS_POST, count=1, skip=1)
    await sandbox.fault(kind="drop", when="before", method="POST", path=USERS_POST, count=1, skip=2)
    await sandbox.control("POST", "stats/reset")
    result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    assert result.ok, result.text
    assert result.data["confirmed_by_session"] == [2] and result.data["retried_batches"] == [3]
    assert result.data["batches"] == 4 and result.data["rows_sent"] == 35_000
    assert _users_requests(await sandbox.stats()) == 5  # 4 batches + batch 3 once more
    assert (await _session_of(graph, audience_id))["num_received"] == "35000"
    assert len(_members(sandbox, audience_id)) == 35_000


def test_arrived_subset():
    assert fb_audience.arrived_subset(0, [10_000]) == ()
    assert fb_audience.arrived_subset(10_000, [10_000]) == (0,)
    assert fb_audience.arrived_subset(2_000, [10_000, 2_000]) == (1,)
    assert fb_audience.arrived_subset(12_000, [10_000, 2_000]) == (0, 1)
    assert fb_audience.arrived_subset(10_000, [10_000, 10_000]) is None  # which one? the count cannot say
    assert fb_audience.arrived_subset(5_000, [10_000]) is None and fb_audience.arrived_subset(-1, [10_000]) is None


async def test_session_that_cannot_be_read_leaves_the_outcome_unknown(facebook, sandbox, graph, store, tmp_path):
    graph.max_retries = 0
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    try:
        audience_id = await _new_list(facebook)
        path = tmp_path / "list.csv"
        emails = write_csv(path, 12_000)
        await sandbox.fault(kind="drop", when="after", method="POST", path=USERS_POST, count=1, skip=1)
        await sandbox.fault(kind="http_500", method="GET", path=r"^\d+/sessions$", count=1)
        await sandbox.control("POST", "stats/reset")
        result = await facebook.call("add_users", {"audience_id": audience_id, "source": str(path)})
    finally:
        configure_logging()
    assert not result.ok
    line = result.text.splitlines()[0]
    assert line.startswith(
        f"ERROR outcome_unknown: The answer to batch 2 (the last) of the upload to audience "
        f"{audience_id} (2,000 rows) was lost (the connection dropped before the answer came) and the upload session could "
        "not be read: Facebook may have received it. 1 earlier batch(es) (10,000 rows) arrived; "
        "nothing was sent again."
    )
    assert "Fix: See in a few hours whether the audience grew" in line and "run the same /add_users again" in line
    assert "run the same add_users again" in result.llm_text  # the LLM reads the op, the person the command
    assert "fail" not in result.text.lower()
    assert result.data["outcome"] == "unknown" and result.data["lost_batches"] == [2] and result.data["last_batch_lost"]
    assert "read_error" in result.data["session"]
    assert _users_requests(await sandbox.stats()) == 2  # nothing re-sent
    produced = stream.getvalue() + result.text + json.dumps(result.data, default=str)
    produced += json.dumps([vars(e) for e in await store.list_audit(facebook.workspace.id, limit=5)], default=str)
    assert [e for e in emails[:50] + emails[-50:] if e in produced or e.lower() in produced] == []
    assert "Zoë1" not in produced and "650 001 0001" not in produced


async def test_refusal_naming_the_session_is_checked_against_it(facebook, sandbox, graph, tmp_path):
    """Facebook answers the last batch with a refusal blamed on the session (as for a session already finished): when
    the session holds the batch's rows it arrived after all; when it does not, the refusal stands."""
    finished = {
        "kind": "error",
        "method": "POST",
        "path": USERS_POST,
        "count": 1,
        "skip": 1,
        "code": 100,
        "message": "(#100) The session is already finished",
        "blame_field": "session",
    }
    path = tmp_path / "list.csv"
    write_csv(path, 12_000)
    arrived_id = await _new_list(facebook, "arrived")
    await sandbox.fault(**finished, when="after")
    arrived = await facebook.call("add_users", {"audience_id": arrived_id, "source": str(path)})
    assert arrived.ok, arrived.text
    assert arrived.data["confirmed_by_session"] == [2] and len(_members(sandbox, arrived_id)) == 12_000
    refused_id = await _new_list(facebook, "refused")
    await sandbox.fault(**finished, when="before")
    await sandbox.control("POST", "stats/reset")
    refused = await facebook.call("add_users", {"audience_id": refused_id, "source": str(path)})
    assert not refused.ok and refused.text.startswith("ERROR") and "already finished" in refused.text
    assert refused.data.get("outcome") != "unknown" and refused.data["failed_batch_seq"] == 2
    assert _users_requests(await sandbox.stats()) == 2  # a clear refusal is not sent again
    assert (await _session_of(graph, refused_id))["num_received"] == "10000"
