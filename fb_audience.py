"""Ops: custom audiences (customer lists, website, engagement), lookalikes and saved audiences.

Customer-list uploads read a CSV file (or a list of rows) a block at a time, normalize every value by Facebook's
rules and SHA-256 it (fb_hashing: EXTERN_ID and MADID are sent as they are; values that already are 64-hex SHA-256
pass through), and send them in sessions of at most 10,000 rows a request. A large quote-free CSV file is hashed by
worker processes, one per core, each on its own part of the file, while this process only sends. Raw values never
leave the hashing: not in logs, not in results, not in the audit log (the plan shows counts only). Invalid rows are
counted and reported by row number, never by value, and never sent.

Writes are replay-safe. A users batch whose answer is lost is never sent again blindly: the upload session's count
(GET /{audience_id}/sessions) says whether it arrived (counted), is missing (sent again) or cannot tell (the upload
stops, its outcome unknown). Every Conversions API event carries an event_id (the caller's, or one derived from its
content: derived_event_id), so the same events sent again after a lost answer are dropped by Facebook as duplicates.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import itertools
import json
import os
import re
import secrets
import sys
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from facebook_business.adobjects.adspixel import AdsPixel
from facebook_business.adobjects.adspixelstats import AdsPixelStats
from facebook_business.adobjects.adspixelstatsresult import AdsPixelStatsResult
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.adobjects.customaudiencesession import CustomAudienceSession
from facebook_business.adobjects.customconversion import CustomConversion
from facebook_business.adobjects.savedaudience import SavedAudience
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.normalize import Normalize
from pydantic import BaseModel, Field, field_validator, model_validator

import fb_hashing
from fb_hashing import (  # the pure customer-data layer (and its worker processes); see fb_hashing's text
    _GENDERS,
    MAX_BATCH_ROWS,
    MAX_REPORTED_INVALID,
    NOT_UTF8_FIX,
    SCHEMA_KEYS,
    Chunk,
    CustomerFileError,
    InvalidRow,
    Schema,
    Span,
    _chunk_of_rows,
    _country,
    hash_chunk,
    hashed_batches,
    payload_json,
    schema_key,
    span_chunks,
)
from fb_utils import (
    NOT_DONE,
    USERS_SESSION_LOOKUP,
    Change,
    EditedObject,
    FacebookError,
    GraphRequest,
    NetworkError,
    OpArgs,
    OpContext,
    OpData,
    OpKind,
    OpResult,
    OpSet,
    OutcomeUnknownError,
    RawJSON,
    TaskGroup,
    ValidationError,
    WritePlan,
    absent_key,
    add_lookup,
    backoff_delay,
    changed_data,
    check_object_id,
    counted,
    get_logger,
    graph_object,
    is_ambiguous,
    lost_answer_cause,
    output_file,
    report_progress,
    sdk_enum_values,
    update_plan,
)

ops = OpSet("fb_audience")
log = get_logger("fb_audience")

# ---------------------------------------------------------------------------------------------------------------
# Reading customer files row by row (pure)
# ---------------------------------------------------------------------------------------------------------------

MAX_CHUNK_ATTEMPTS = 3
BATCHES_IN_FLIGHT = 2  # a second batch travels while Facebook stores the first
BATCHES_AHEAD = 2  # hashed batches waiting to be sent (bounds memory: about 1.5 MB each)


def detect_schema(header: list[Any]) -> Schema:
    keys: list[str] = []
    columns: list[int] = []
    ignored: list[str] = []
    for index, cell in enumerate(header):
        key = schema_key(str(cell)) if cell is not None else None
        if key == "DOB":
            key = None
        if key is None:
            ignored.append(str(cell)[:40])
            continue
        if key in keys:
            raise ValidationError(
                f"Two columns mean {key} ({header[columns[keys.index(key)]]!s:.40} and {cell!s:.40})",
                fix="Keep one column for each kind of customer data",
                blame_field="source",
            )
        keys.append(key)
        columns.append(index)
    if not keys:
        raise ValidationError(
            "No customer data column recognized in the header",
            fix=f"Name the columns with Facebook's keys ({', '.join(SCHEMA_KEYS)}) or common names like email, phone, first_name",
            blame_field="source",
        )
    return Schema(keys, columns, ignored)


@dataclass
class Prepared:
    """One row ready to send (hashed values) or the reason it is not (field names only)."""

    row: int
    values: list[str] | None
    bad_fields: list[str] = dataclass_field(default_factory=list)


def hash_rows(schema: Schema, numbers: list[int], rows: list[list[Any]]) -> tuple[list[list[str]], list[InvalidRow]]:
    columns, invalid = hash_chunk(schema, _chunk_of_rows(schema, numbers, rows))
    return [list(row) for row in zip(*columns)], invalid


def prepare_row(schema: Schema, row_number: int, cells: list[Any]) -> Prepared:
    sent, invalid = hash_rows(schema, [row_number], [cells])
    return Prepared(row_number, sent[0]) if sent else Prepared(row_number, None, invalid[0].fields)


def _open_csv(path: str) -> Any:
    full = os.path.expanduser(path)
    if not os.path.isfile(full):
        raise ValidationError(
            f"No file at {path}", fix="Pass the path of a CSV file with a header row, or rows", blame_field="source"
        )
    return open(full, newline="", encoding="utf-8-sig")


@contextlib.contextmanager
def _customer_file_errors() -> Iterator[None]:
    """A file that cannot be read as it is becomes one ValidationError with its fix (never a value from it)."""
    try:
        yield
    except CustomerFileError as error:
        raise ValidationError(str(error), fix=error.fix, blame_field="source") from None
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text", fix=NOT_UTF8_FIX, blame_field="source") from None


def _csv_header(path: str) -> list[str]:
    _csv_shape(path)  # a file that is not UTF-8 is refused by its line first (the scan is kept for the upload)
    with _open_csv(path) as handle, _customer_file_errors():
        header = next(csv.reader(handle), None)
    if not header:
        raise ValidationError(
            f"{path} is empty", fix="The first row must name the columns (email, phone, …)", blame_field="source"
        )
    return header


@dataclass(frozen=True)
class CsvShape:
    rows: int  # data rows (csv.reader records after the header, blank lines included)
    simple: bool  # no quote character and no lone carriage return: every line is one record, split at commas
    data: Span | None = None  # a simple file's data lines: from the line after the header to the end


_CSV_SHAPES: dict[tuple[str, int, int], CsvShape] = {}


def _scan_csv(handle: Any, size: int) -> CsvShape:
    """Count the records of a CSV file reading bytes (fast); a file with quotes is counted by csv.reader (exact)."""
    lines, simple, last, data_start = 0, True, b"\n", None
    raw, text = handle.buffer, codecs.getincrementaldecoder("utf-8")()
    while chunk := raw.read(1 << 20):
        if data_start is None and b"\n" in chunk:
            data_start = raw.tell() - len(chunk) + chunk.index(b"\n") + 1
        try:  # refused here, before anything is sent, rather than halfway through the upload
            text.decode(chunk)
        except UnicodeDecodeError as error:
            line = lines + chunk.count(b"\n", 0, max(0, error.start)) + 1
            raise CustomerFileError(f"Line {line} of the file is not UTF-8 text", NOT_UTF8_FIX) from None
        lines += chunk.count(b"\n")
        simple = simple and b'"' not in chunk and chunk.count(b"\r") == chunk.count(b"\r\n")
        last = chunk[-1:]
    lines += last != b"\n"  # a last line without a line break
    try:
        text.decode(b"", final=True)
    except UnicodeDecodeError:  # the file ends inside a character
        raise CustomerFileError(f"Line {lines} of the file is not UTF-8 text", NOT_UTF8_FIX) from None
    if simple:
        return CsvShape(max(0, lines - 1), True, Span(size if data_start is None else data_start, size, 2))
    raw.seek(0)
    handle.seek(0)
    return CsvShape(max(0, sum(1 for _ in csv.reader(handle)) - 1), False)


def _csv_shape(path: str) -> CsvShape:
    with _open_csv(path) as handle:
        stat = os.fstat(handle.fileno())
        key = (os.path.abspath(os.path.expanduser(path)), stat.st_mtime_ns, stat.st_size)
        if key in _CSV_SHAPES:  # the plan and the upload of one add_users both ask: scan an unchanged file once
            return _CSV_SHAPES[key]
        with _customer_file_errors():
            shape = _scan_csv(handle, stat.st_size)
    if len(_CSV_SHAPES) > 64:
        _CSV_SHAPES.clear()
    _CSV_SHAPES[key] = shape
    return shape


def source_header(source: str | list[Any]) -> list[str]:
    if isinstance(source, str):
        return _csv_header(source)
    if not source:
        raise ValidationError("rows is empty", fix="Pass at least one row", blame_field="source")
    first = source[0]
    if isinstance(first, dict):
        return [str(k) for k in first]
    return [str(c) for c in first]


def source_total(source: str | list[Any]) -> int:
    if isinstance(source, str):
        return _csv_shape(source).rows
    return len(source) if isinstance(source[0], dict) else len(source) - 1


def _list_rows(rows: list[Any]) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of each row of a list: a list of dicts numbered from 1, a list of lists as in the list
    (its header is row 1)."""
    if isinstance(rows[0], dict):
        header = list(rows[0])
        for number, row in enumerate(rows, start=1):
            yield number, [row.get(name, "") if isinstance(row, dict) else "" for name in header]
        return
    for number, row in enumerate(rows[1:], start=2):
        yield number, list(row) if isinstance(row, (list, tuple)) else []


def _csv_chunks(schema: Schema, path: str, size: int) -> Iterator[Chunk]:
    """The rows of a CSV file, ``size`` records at a time. A file without quotes is read in blocks of lines split at
    commas (what csv.reader does with it, several times faster); any other through csv.reader."""
    shape, width = _csv_shape(path), len(_csv_header(path))
    if shape.simple and shape.data is not None:
        with open(os.path.expanduser(path), "rb") as raw, _customer_file_errors():
            yield from span_chunks(raw, shape.data, width, schema.columns, size)
        return
    with _open_csv(path) as handle, _customer_file_errors():
        records = csv.reader(handle)
        next(records, None)
        first = 2
        while rows := list(itertools.islice(records, size)):
            numbers = list(range(first, first + len(rows)))
            first += len(rows)
            if [] in rows:  # blank lines are not rows
                numbers, rows = [n for n, r in zip(numbers, rows) if r], [r for r in rows if r]
            yield _chunk_of_rows(schema, numbers, rows)


def _chunks(schema: Schema, source: str | list[Any], size: int) -> Iterator[Chunk]:
    """The source's rows, at most ``size`` at a time. CSV rows are numbered as in the file (the header is row 1)."""
    if isinstance(source, str):
        yield from _csv_chunks(schema, source, size)
        return
    rows_of = list(_list_rows(source))
    for start in range(0, len(rows_of), size):
        part = rows_of[start : start + size]
        yield _chunk_of_rows(schema, [n for n, _ in part], [r for _, r in part])


def marked_batches(
    schema: Schema,
    source: str | list[Any],
    invalid: list[InvalidRow],
    counts: dict[str, int],
    size: int = MAX_BATCH_ROWS,
) -> Iterator[tuple[list[list[str]], bool, int]]:
    """(batch, is it the last one, source rows read up to it) for batches of ``size`` hashed rows (the last one
    shorter), each batch a list of columns; invalid rows go to ``invalid`` (the first MAX_REPORTED_INVALID) and
    ``counts``. Reads ``size`` source rows at a time (and one batch ahead, to know which batch is the last), never the
    whole source."""
    batches = hashed_batches(schema, _chunks(schema, source, size), invalid, counts, size)
    batch, read = next(batches, None), counts["read"]
    while batch is not None:
        following, read_next = next(batches, None), counts["read"]
        yield batch, following is None, read
        batch, read = following, read_next


def iter_batches(
    schema: Schema,
    source: str | list[Any],
    invalid: list[InvalidRow],
    counts: dict[str, int],
    size: int = MAX_BATCH_ROWS,
) -> Iterator[list[list[str]]]:
    """Batches of ``size`` hashed rows (the last one shorter), row by row; see marked_batches."""
    return ([list(row) for row in zip(*batch)] for batch, _, _ in marked_batches(schema, source, invalid, counts, size))


def line_spans(path: str, data: Span, parts: int) -> list[Span]:
    """``data`` (whole lines of a file) cut into about ``parts`` spans of similar byte size, each of whole lines: one
    forward pass counting line breaks up to each cut."""
    targets = [data.start + (data.end - data.start) * part // parts for part in range(1, parts)]
    cuts = [(data.start, data.first_row)]
    with open(os.path.expanduser(path), "rb") as raw:
        raw.seek(data.start)
        position, line, ends_line = data.start, data.first_row, True
        for target in targets:
            while position < target:
                piece = raw.read(min(1 << 20, target - position))
                if not piece:
                    break
                position, line, ends_line = position + len(piece), line + piece.count(b"\n"), piece.endswith(b"\n")
            while not ends_line:  # finish the line the cut fell in
                piece = raw.read(1 << 16)
                if not piece:
                    position, ends_line = data.end, True
                    break
                found = piece.find(b"\n")
                if found < 0:
                    position += len(piece)
                    continue
                position, line, ends_line = position + found + 1, line + 1, True
                raw.seek(position)
            if position < data.end and position > cuts[-1][0]:
                cuts.append((position, line))
    bounds = [*cuts, (data.end, 0)]
    return [Span(start, end, first) for (start, first), (end, _) in zip(bounds, bounds[1:]) if end > start]


# ---------------------------------------------------------------------------------------------------------------
# Shared argument pieces
# ---------------------------------------------------------------------------------------------------------------

AdAccountArg = Field(None, description="Ad account id (act_123…); default: the selected one.")
AudienceIdArg = Field(..., description="Custom audience id (digits); list_audiences shows them.")
CUSTOMER_FILE_SOURCES = sdk_enum_values(CustomAudience.CustomerFileSource)
CustomerFileSource = Literal[CUSTOMER_FILE_SOURCES]  # type: ignore[valid-type]
AUDIENCE_FIELDS = (
    "id,name,description,subtype,approximate_count_lower_bound,approximate_count_upper_bound,"
    "delivery_status,operation_status,customer_file_source,retention_days,rule,lookalike_spec,"
    "time_updated,account_id"
)
LIST_FIELDS = "id,name,subtype,approximate_count_lower_bound,approximate_count_upper_bound,delivery_status,time_updated"
SAVED_FIELDS = "id,name,description,targeting,approximate_count_lower_bound,approximate_count_upper_bound,sentence_lines,time_updated"


def _to_int(value: Any) -> int:
    """int() of a JSON value: TypeError for null, ValueError for text that is no number (callers catch both)."""
    return int(value)


def _size_text(obj: dict[str, Any]) -> str:
    low, high = obj.get("approximate_count_lower_bound"), obj.get("approximate_count_upper_bound")
    try:
        low_i, high_i = _to_int(low), _to_int(high)
    except (TypeError, ValueError):
        return "size unknown"
    if low_i < 0 or high_i < 0:
        return "size not yet known"
    return f"{low_i:,}–{high_i:,} people"


def _delivery_text(obj: dict[str, Any]) -> str:
    status = obj.get("delivery_status")
    if isinstance(status, dict):
        return str(status.get("description") or status.get("code") or "unknown")
    return str(status) if status else "unknown"


def audience_line(obj: dict[str, Any]) -> str:
    return f"{obj.get('name', '')} ({obj.get('id')}) {obj.get('subtype', '')}: {_size_text(obj)}; delivery {_delivery_text(obj)}"


class CreatedAudience(OpData):
    """A custom audience created (customer list, website or engagement): the answer of _create_plan."""

    id: str
    audience_id: str = Field(description="The new audience's id (same as id).")
    ad_account_id: str
    subtype: Literal["CUSTOM", "WEBSITE", "ENGAGEMENT"] = Field(description="CUSTOM: a customer list.")


def _create_plan(ctx: OpContext, account_id: str, payload: dict[str, Any], label: str, next_step: str) -> WritePlan:
    path = f"{account_id}/customaudiences"

    async def execute() -> OpResult:
        created = await ctx.graph.post(path, payload)
        return OpResult(
            text=f"Created {label} {payload['name']} ({created['id']}) in {account_id}. {next_step}",
            data={
                "id": created["id"],
                "audience_id": created["id"],
                "ad_account_id": account_id,
                "subtype": payload.get("subtype"),
            },
        )

    return WritePlan(
        summary=f"create {label} {payload['name']} in {account_id}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, payload)],
        changes=[Change(None, "customaudience", payload["name"], "subtype", None, payload.get("subtype"))],
        execute=execute,
    )


# ---------------------------------------------------------------------------------------------------------------
# Customer-list audiences
# ---------------------------------------------------------------------------------------------------------------


class CreateCustomerListAudienceArgs(OpArgs):
    """Create an empty customer-list custom audience; fill it with add_users (hashed emails, phones, …)."""

    ad_account_id: str | None = AdAccountArg
    name: str = Field(
        ..., min_length=1, max_length=200, description="Audience name.", examples=["Newsletter subscribers"]
    )
    description: str | None = Field(None, max_length=500, description="What the list is.")
    customer_file_source: CustomerFileSource = Field(
        "USER_PROVIDED_ONLY",
        description="Where the data came from: USER_PROVIDED_ONLY (your customers gave it to you), "
        "PARTNER_PROVIDED_ONLY or BOTH_USER_AND_PARTNER_PROVIDED.",
    )


@ops.op(
    OpKind.WRITE, group=TaskGroup.AUDIENCES_TRACKING, example={"name": "Newsletter subscribers"}, result=CreatedAudience
)
async def create_customer_list_audience(ctx: OpContext, args: CreateCustomerListAudienceArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    payload: dict[str, Any] = {
        "name": args.name,
        "subtype": "CUSTOM",
        "customer_file_source": args.customer_file_source,
    }
    if args.description:
        payload["description"] = args.description
    return _create_plan(
        ctx,
        account_id,
        payload,
        "customer list audience",
        "Next: add_users with a CSV file (email, phone, first_name, …).",
    )


class UsersArgs(OpArgs):
    """Add customers to a customer-list audience from a CSV file or rows (values are normalized and SHA-256 hashed here)."""

    audience_id: str = AudienceIdArg
    source: str | list[dict[str, Any]] | list[list[Any]] = Field(
        ...,
        description="Path of a CSV file whose header names the columns (EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, "
        "DOBY, DOBM, DOBD, GEN, EXTERN_ID, MADID or common names like email, phone_number, first_name), or rows: a list "
        "of objects keyed by those names, or a list of lists whose first row is the header.",
        json_schema_extra={"pii": "rows"},
    )

    @field_validator("audience_id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_object_id(value, "audience_id")

    @model_validator(mode="after")
    def _source(self) -> UsersArgs:
        if isinstance(self.source, list) and not self.source:
            raise ValueError("source has no rows")
        if isinstance(self.source, str) and not self.source.strip():
            raise ValueError("source: pass a CSV path or rows")
        return self


class RemoveUsersArgs(UsersArgs):
    """Remove customers from a customer-list audience (same CSV or rows as add_users; matched by their hashes)."""


class ReplaceUsersArgs(UsersArgs):
    """Replace all customers of a customer-list audience with the ones in a CSV file or rows (keeps the audience's ads learning)."""


@dataclass
class UploadOutcome:
    read: int = 0
    sent: int = 0  # rows of the batches known to have arrived (by their answer or by the session)
    invalid: int = 0
    received: int = 0
    invalid_by_facebook: int = 0
    batches: int = 0
    hash_processes: int = 0  # worker processes that hashed the file (0: a thread of this process)
    hash_process_peak_kb: int = 0  # the largest peak memory among them
    retried_batches: list[int] = dataclass_field(default_factory=list)
    invalid_rows: list[InvalidRow] = dataclass_field(default_factory=list)
    lost: list[LostBatch] = dataclass_field(default_factory=list)  # sent, answer lost: arrival not known yet
    attempts: dict[int, int] = dataclass_field(default_factory=dict)  # batch_seq -> times sent
    confirmed_by_session: list[int] = dataclass_field(default_factory=list)  # batches whose arrival the session proved
    session: dict[str, Any] | None = None  # the session as last read, when it was read


@dataclass(frozen=True)
class UsersSession:
    """One users session: where its batches go and what identifies it."""

    audience_id: str
    mode: str  # add, remove or replace
    schema: Schema
    session_id: int
    total: int  # source rows (estimated_num_total)

    @property
    def method(self) -> str:
        return "DELETE" if self.mode == "remove" else "POST"

    @property
    def path(self) -> str:
        return f"{self.audience_id}/{'usersreplace' if self.mode == 'replace' else 'users'}"


@dataclass
class LostBatch:
    """A batch sent whose answer never came (or was a refusal naming the session): the session's count decides."""

    seq: int
    batch: ReadyBatch
    error: FacebookError
    refused: bool = False  # Facebook answered with a clear refusal (e.g. the session is already finished)


async def _send_batch(
    ctx: OpContext, upload: UsersSession, params: dict[str, Any], seq: int, outcome: UploadOutcome
) -> dict:
    """Send one batch. A clean refusal that says trying again can work (a throttle, a transient code) is re-sent here,
    at most MAX_CHUNK_ATTEMPTS times in all; an ambiguous failure is never re-sent blindly: the caller reads the
    session (see settle_lost_batches)."""
    while True:
        outcome.attempts[seq] = outcome.attempts.get(seq, 0) + 1
        try:
            if upload.method == "DELETE":
                # A 10,000-row payload is far too long for a query string: it goes in the DELETE's body, as Meta's
                # Custom Audiences guide sends it (curl -X DELETE with the payload as form data). A POST carrying
                # method=DELETE (HTTP method override) is refused to apps created after 2026-11-04 (Graph API v27.0 blog).
                return await ctx.graph.delete(upload.path, data=params)
            return await ctx.graph.post(upload.path, params)
        except FacebookError as error:
            if is_ambiguous(error) or outcome.attempts[seq] >= MAX_CHUNK_ATTEMPTS or not error.retryable:
                raise
            _note_retry(outcome, seq, error)
            await asyncio.sleep(backoff_delay(outcome.attempts[seq] - 1, base=0.2, cap=5.0))


def _note_retry(outcome: UploadOutcome, seq: int, error: FacebookError) -> None:
    if seq not in outcome.retried_batches:
        outcome.retried_batches.append(seq)
    log.info("audience batch retry", batch_seq=seq, attempt=outcome.attempts.get(seq, 0) + 1, error_code=error.code)


def _failed_batch(error: FacebookError, seq: int, outcome: UploadOutcome, upload: UsersSession) -> FacebookError:
    """A batch Facebook did not take (its refusal is clear, or the session shows the batch missing)."""
    error.data = {
        **(error.data or {}),
        "failed_batch_seq": seq,
        "batches_done": outcome.batches,
        "rows_sent": outcome.sent,
        "session": {"session_id": upload.session_id},
    }
    return error


@dataclass
class ReadyBatch:
    """One batch as it is sent: the payload's JSON text (built in the worker thread), its size, whether it is the
    last one, and the number of rows read when it was complete."""

    payload: RawJSON
    rows: int
    last: bool
    read_so_far: int


def _next_ready(batches: Iterator[tuple[list[list[str]], bool, int]], schema: Schema) -> ReadyBatch | None:
    batch, last, read = next(batches, (None, True, 0))
    if batch is None:
        return None
    return ReadyBatch(RawJSON(payload_json(schema, batch)), len(batch[0]), last, read)


async def _prepare_ahead(
    batches: Iterator[tuple[list[list[str]], bool, int]],
    schema: Schema,
    ready: asyncio.Queue,
    working: list[asyncio.Future],
) -> None:
    """Read, hash and encode batches in a worker thread, BATCHES_AHEAD ahead of the sender; None marks the end, an
    exception (a file that cannot be read) is handed over as it is."""
    while True:
        working[:] = [asyncio.ensure_future(asyncio.to_thread(_next_ready, batches, schema))]
        try:
            item = await asyncio.shield(working[0])  # cancelled, the sender still waits for the thread's batch
        except Exception as error:  # noqa: BLE001 - the sender raises it
            await ready.put(error)
            return
        await ready.put(item)
        if item is None or item.last:
            return


async def _thread_batches(
    schema: Schema, source: str | list[Any], counts: dict[str, int], invalid: list[InvalidRow]
) -> AsyncGenerator[ReadyBatch, None]:
    """The source's batches, read, hashed and encoded in a thread of this process while earlier ones travel."""
    with _customer_file_errors():
        batches = marked_batches(schema, source, invalid, counts)
        ready: asyncio.Queue = asyncio.Queue(maxsize=BATCHES_AHEAD)
        working: list[asyncio.Future] = []
        preparing = asyncio.ensure_future(_prepare_ahead(batches, schema, ready, working))
        try:
            while (item := await ready.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
                if item.last:
                    return
        finally:  # let the thread finish its batch before the file is closed
            preparing.cancel()
            for future in (preparing, *working):
                with contextlib.suppress(BaseException):
                    await future


HASH_WORKERS_MAX = 4
ROWS_PER_HASH_WORKER = 50_000  # a smaller part is hashed sooner in a thread than a process starts


def hash_workers(shape: CsvShape) -> int:
    """How many worker processes hash a file of this shape: one per core, at most HASH_WORKERS_MAX, each with at least
    ROWS_PER_HASH_WORKER rows; 0 (a thread of this process does it) for small or quoted files and single cores."""
    count = min(os.cpu_count() or 1, HASH_WORKERS_MAX, shape.rows // ROWS_PER_HASH_WORKER)
    return count if shape.simple and shape.data is not None and count >= 2 else 0


class HashWorkerFailed(Exception):
    """A hashing worker process could not start (the upload falls back to a thread) or stopped without finishing."""


async def _start_worker(job: dict[str, Any]) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            fb_hashing.__file__,
            json.dumps(job),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
    except (OSError, ValueError) as error:
        raise HashWorkerFailed(f"a hashing process could not start ({type(error).__name__})") from None


async def _read_frame(worker: asyncio.subprocess.Process) -> tuple[dict[str, Any], bytes]:
    """One frame of a worker's output (see fb_hashing): its head and its payload."""
    try:
        line = await worker.stdout.readline()  # type: ignore[union-attr]
        head = json.loads(line) if line else None
        body = await worker.stdout.readexactly(head["bytes"]) if head and head.get("bytes") else b""  # type: ignore[union-attr]
    except (asyncio.IncompleteReadError, ValueError):
        head = None
    if head is None:  # the process ended without its closing frame: name its error's type, never its text
        await worker.wait()
        last = (await worker.stderr.read()).decode(errors="replace").strip().splitlines()[-1:]  # type: ignore[union-attr]
        kind = last[0].split(":", 1)[0][:80] if last else f"exit code {worker.returncode}"
        raise HashWorkerFailed(f"a hashing process stopped early ({kind})")
    return head, body


async def _worker_batches(
    path: str, shape: CsvShape, schema: Schema, workers: int, counts: dict[str, int], invalid: list[InvalidRow]
) -> AsyncGenerator[ReadyBatch, None]:
    """The file's batches, hashed by ``workers`` processes side by side (fb_hashing), each on its own part of the file.

    One batch is held back until another arrives or every worker has finished: the one left over is the last."""
    assert shape.data is not None
    spans = await asyncio.to_thread(line_spans, path, shape.data, workers)
    common = {
        "path": os.path.abspath(os.path.expanduser(path)),
        "width": len(_csv_header(path)),
        "keys": schema.keys,
        "columns": schema.columns,
        "size": MAX_BATCH_ROWS,
    }
    processes: list[asyncio.subprocess.Process] = []
    reading: dict[asyncio.Future, int] = {}
    try:
        for span in spans:
            processes.append(
                await _start_worker({**common, "start": span.start, "end": span.end, "first_row": span.first_row})
            )
        counts["processes"] = len(processes)
        read = [0] * len(processes)
        reading.update({asyncio.ensure_future(_read_frame(worker)): index for index, worker in enumerate(processes)})
        held: ReadyBatch | None = None
        while reading:
            done, _ = await asyncio.wait(reading, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                index = reading.pop(future)
                head, body = future.result()
                if head.get("done"):
                    if "error" in head:
                        raise ValidationError(head["error"], fix=head["fix"], blame_field="source")
                    counts["read"] += head["read"]
                    counts["invalid"] += head["invalid"]
                    invalid.extend(InvalidRow(row, fields) for row, fields in head["invalid_rows"])
                    counts["process_peak_kb"] = max(counts.get("process_peak_kb", 0), head.get("peak_rss_kb") or 0)
                    continue
                read[index] = head["read"]
                if held is not None:
                    yield held
                held = ReadyBatch(RawJSON(body.decode()), head["rows"], False, sum(read))
                reading[asyncio.ensure_future(_read_frame(processes[index]))] = index
        invalid.sort(key=lambda row: row.row)
        del invalid[MAX_REPORTED_INVALID:]
        if held is not None:
            held.last = True
            yield held
    finally:
        for future in reading:
            future.cancel()
        for worker in processes:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
            with contextlib.suppress(BaseException):
                await worker.wait()


async def _source_batches(
    schema: Schema, source: str | list[Any], counts: dict[str, int], invalid: list[InvalidRow]
) -> AsyncGenerator[ReadyBatch, None]:
    """The source's batches, from worker processes for a large quote-free CSV file (a thread if none can start),
    otherwise from a thread of this process."""
    shape = _csv_shape(source) if isinstance(source, str) else None
    workers = hash_workers(shape) if shape is not None else 0
    if workers:
        batches = _worker_batches(source, shape, schema, workers, counts, invalid)  # type: ignore[arg-type]
        try:
            first = await batches.__anext__()
        except StopAsyncIteration:
            return
        except HashWorkerFailed as error:  # nothing was sent yet: start again in a thread
            counts.update(read=0, invalid=0, processes=0)
            invalid.clear()
            log.info("hashing in a thread", reason=str(error))
        else:
            async with contextlib.aclosing(batches):
                yield first
                async for batch in batches:
                    yield batch
            return
    async with contextlib.aclosing(_thread_batches(schema, source, counts, invalid)) as batches:
        async for batch in batches:
            yield batch


async def upload_users(
    ctx: OpContext, audience_id: str, source: str | list[Any], mode: str
) -> tuple[UploadOutcome, Schema]:
    """Stream ``source`` to /{id}/users (add), DELETE /{id}/users (remove) or /{id}/usersreplace (replace).

    Batches are prepared (by worker processes or a thread) while earlier ones travel; at most BATCHES_IN_FLIGHT are
    sent at once. The first one (which opens the session) travels alone, and the last one (last_batch_flag, which
    closes it) only after all the others have arrived. A batch whose answer is lost is settled by reading the session
    before anything else is sent (settle_lost_batches)."""
    schema = detect_schema(source_header(source))
    upload = UsersSession(
        audience_id,
        mode,
        schema,
        secrets.randbelow(2**52) + 1,  # JSON-safe (JavaScript reads it)
        source_total(source),
    )
    outcome = UploadOutcome()
    counts = {"read": 0, "invalid": 0}
    sending: set[asyncio.Future] = set()

    def send(batch: ReadyBatch, seq: int) -> None:
        sending.add(asyncio.ensure_future(_send_one(ctx, upload, seq, batch, outcome)))

    async def settle(until: int) -> None:
        """Wait until at most ``until`` sends are in flight; a failed one raises its error. A lost answer stops
        everything until the session has said whether that batch arrived."""
        while len(sending) > until or (outcome.lost and sending):
            done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
            sending.difference_update(done)
            for task in done:
                task.result()
        if outcome.lost:
            await settle_lost_batches(ctx, upload, outcome)

    try:
        async with contextlib.aclosing(_source_batches(schema, source, counts, outcome.invalid_rows)) as batches:
            seq = 0
            async for batch in batches:
                seq += 1
                await settle(0 if batch.last else BATCHES_IN_FLIGHT - 1)
                send(batch, seq)
                if seq == 1:  # the first batch opens the session (a replace starts there): the others follow it
                    await settle(0)
            await settle(0)
    except HashWorkerFailed as error:
        raise FacebookError(
            f"Hashing the customer file stopped: {error}; {outcome.batches} batches "
            f"({outcome.sent:,} rows) were sent before it",
            fix="Run the same upload again: people already added are not counted twice",
            data={"batches_done": outcome.batches, "rows_sent": outcome.sent},
        ) from None
    finally:  # after a failure: stop sending
        for task in sending:
            task.cancel()
        for future in sending:
            with contextlib.suppress(BaseException):
                await future
    outcome.read, outcome.invalid = counts["read"], counts["invalid"]
    outcome.hash_processes, outcome.hash_process_peak_kb = counts.get("processes", 0), counts.get("process_peak_kb", 0)
    return outcome, schema


async def _send_one(ctx: OpContext, upload: UsersSession, seq: int, batch: ReadyBatch, outcome: UploadOutcome) -> None:
    """Send one batch of a users session and count it in ``outcome``; a lost answer, or a refusal naming the session,
    is kept in ``outcome.lost`` for the session to settle."""
    session = {
        "session_id": upload.session_id,
        "batch_seq": seq,
        "last_batch_flag": batch.last,
        "estimated_num_total": upload.total,
    }
    try:
        answer = await _send_batch(ctx, upload, {"payload": batch.payload, "session": session}, seq, outcome)
    except FacebookError as error:
        if not (is_ambiguous(error) or _names_the_session(error)):
            raise _failed_batch(error, seq, outcome, upload) from None
        outcome.lost.append(LostBatch(seq, batch, error, refused=not is_ambiguous(error)))
        log.info("audience batch answer lost", audience_id=upload.audience_id, batch_seq=seq, error_code=error.code)
        return
    _count_arrived(
        outcome, batch, int(answer.get("num_received", batch.rows) or 0), int(answer.get("num_invalid_entries", 0) or 0)
    )
    await report_progress(
        f"audience {upload.audience_id}: {upload.mode} users",
        upload.total if batch.last else batch.read_so_far,
        upload.total,
    )
    log.info("audience batch sent", audience_id=upload.audience_id, mode=upload.mode, batch_seq=seq, rows=batch.rows)


def _count_arrived(outcome: UploadOutcome, batch: ReadyBatch, received: int, invalid: int) -> None:
    outcome.batches += 1
    outcome.sent += batch.rows
    outcome.received += received
    outcome.invalid_by_facebook += invalid


def _names_the_session(error: FacebookError) -> bool:
    """A clear refusal blamed on the session parameter (e.g. the session is already finished: its last batch arrived).
    Whether our batch is in it, only the session's count can tell."""
    return (error.blame_field or "").split(".")[0] == "session"


# ---------------------------------------------------------------------------------------------------------------
# Lost answers: the upload session's count decides (never a blind re-send)
# ---------------------------------------------------------------------------------------------------------------
#
# Meta documents reading an upload session: GET /{custom-audience-id}/sessions?session_id=N answers CustomAudienceSession
# nodes whose num_received is the "Number of entries received in the current session" (Marketing API reference,
# "Custom Audience Sessions" and "Custom Audience Session", v25.0; the SDK's CustomAudience.get_sessions and
# CustomAudienceSession.Field agree). We take every row of a batch as an entry received, invalid ones included (the
# users answer counts those apart, in num_invalid_entries). So once no other batch is in flight, the session holds the
# rows of the batches known to have arrived, plus those of the lost batches that did arrive; any other count proves
# nothing and leaves the outcome unknown (so does a count that two lost batches of one size could both explain). Its stage is not used: the only value on record, "uploading", stays after the
# last batch (facebook-java-business-sdk issue #492). A refusal blamed on the session parameter (the sandbox's answer
# to a batch for a finished session) is checked the same way: Meta documents no text for it.

SESSION_FIELDS = "session_id,num_received,num_invalid_entries,num_matched,stage,start_time,end_time"


@dataclass
class SessionVerdict:
    """Which lost batches the session shows arrived, and which it shows missing."""

    arrived: list[LostBatch]
    missing: list[LostBatch]


def arrived_subset(extra_rows: int, rows: list[int]) -> tuple[int, ...] | None:
    """The one set of lost batches (their indexes in ``rows``) whose rows make up the ``extra_rows`` the session counts
    beyond the batches known to have arrived; None when no set does, or several do (two lost batches of one size, one
    of them arrived: the count cannot say which)."""
    fits = [
        combo
        for size in range(len(rows) + 1)
        for combo in itertools.combinations(range(len(rows)), size)
        if sum(rows[i] for i in combo) == extra_rows
    ]
    return fits[0] if len(fits) == 1 else None


def _may_land_late(lost: LostBatch) -> bool:
    """A request our side gave up on (timeout, dropped connection: no answer at all) may still be processed after we
    look; one Facebook answered, even with a server error, was done with when it answered."""
    return isinstance(lost.error, NetworkError) and lost.error.http_status is None and not lost.refused


async def read_upload_session(ctx: OpContext, upload: UsersSession) -> dict[str, Any] | None:
    """The session as Facebook holds it; None when Facebook has no such session (no batch of it arrived)."""
    return await read_session(ctx.graph, upload.audience_id, upload.session_id)


async def read_session(graph: Any, audience_id: str, session_id: int | str) -> dict[str, Any] | None:
    """One users session of an audience as Facebook holds it, or None when Facebook has no such session."""
    answer = await graph.get(f"{audience_id}/sessions", {"session_id": session_id, "fields": SESSION_FIELDS})
    for session in answer.get("data", []) if isinstance(answer, dict) else []:
        if str(session.get("session_id")) == str(session_id):
            return session
    return None


def _received(session: dict[str, Any] | None) -> int | None:
    if session is None:
        return 0
    try:
        return _to_int(session.get("num_received"))
    except (TypeError, ValueError):
        return None


async def session_verdict(ctx: OpContext, upload: UsersSession, outcome: UploadOutcome) -> SessionVerdict | None:
    """Which lost batches arrived, by the session's count, read while nothing else is in flight; None when the count
    cannot tell. A batch lost to a timeout or a dropped connection is believed missing only when a second read, the
    Graph client's settle window later (Facebook may finish a request after the client gave up), still shows it
    missing."""
    lost = outcome.lost
    verdict = None
    for attempt in range(2):
        if attempt:
            await ctx.graph.settle_pause()
        try:
            outcome.session = await read_upload_session(ctx, upload)
        except FacebookError as error:
            outcome.session = {"read_error": error.to_text()}
            return None
        received = _received(outcome.session)
        if received is None or (outcome.session is None and outcome.sent):
            return None  # no count, or batches arrived yet no session: nothing to judge by
        subset = arrived_subset(received - outcome.sent, [item.batch.rows for item in lost])
        if subset is None:
            return None
        verdict = SessionVerdict([lost[i] for i in subset], [item for i, item in enumerate(lost) if i not in subset])
        if not any(_may_land_late(item) for item in verdict.missing):
            break
    return verdict


async def settle_lost_batches(ctx: OpContext, upload: UsersSession, outcome: UploadOutcome) -> None:
    """Settle every lost batch before anything else is sent: counted when the session shows it arrived, sent again
    only when the session proves it missing; when the session cannot tell, the upload stops with its outcome unknown."""
    while outcome.lost:
        verdict = await session_verdict(ctx, upload, outcome)
        lost, outcome.lost = outcome.lost, []
        if verdict is None:
            raise users_outcome_unknown(upload, outcome, lost)
        if verdict.arrived:
            _count_confirmed(upload, outcome, verdict.arrived)
            done = (
                upload.total
                if any(i.batch.last for i in verdict.arrived)
                else max(i.batch.read_so_far for i in verdict.arrived)
            )
            await report_progress(f"audience {upload.audience_id}: {upload.mode} users", done, upload.total)
        for item in verdict.missing:  # proven missing: Facebook did not take it
            if item.refused:
                raise _failed_batch(item.error, item.seq, outcome, upload)
            if outcome.attempts.get(item.seq, 0) >= MAX_CHUNK_ATTEMPTS:
                raise batch_not_received(upload, outcome, item)
            _note_retry(outcome, item.seq, item.error)
            await asyncio.sleep(backoff_delay(outcome.attempts.get(item.seq, 1) - 1, base=0.2, cap=5.0))
            await _send_one(ctx, upload, item.seq, item.batch, outcome)


def _count_confirmed(upload: UsersSession, outcome: UploadOutcome, lost: list[LostBatch]) -> None:
    """Lost batches the session shows arrived: counted, with the session's own totals."""
    for item in lost:
        _count_arrived(outcome, item.batch, item.batch.rows, 0)
        outcome.confirmed_by_session.append(item.seq)
    session = outcome.session or {}
    with contextlib.suppress(TypeError, ValueError):
        outcome.received = _to_int(session.get("num_received"))
        outcome.invalid_by_facebook = _to_int(session.get("num_invalid_entries"))
    log.info(
        "audience batches confirmed by the session",
        audience_id=upload.audience_id,
        batch_seqs=[item.seq for item in lost],
    )


def batch_not_received(upload: UsersSession, outcome: UploadOutcome, item: LostBatch) -> NetworkError:
    """A batch whose answers were lost and that the upload session showed missing after each of its sends: Facebook
    did not take it (an error: the session proves it, whatever the lost answers were)."""
    sends = outcome.attempts.get(item.seq, 1)
    message = (
        f"Batch {item.seq} of the upload to audience {upload.audience_id} ({counted(item.batch.rows, 'row')}) was not "
        f"received: it was sent {sends} times and each time Facebook's upload session showed it missing (the last "
        f"answer: {lost_answer_cause(item.error)}). {outcome.batches} earlier batch(es) ({outcome.sent:,} rows) arrived"
    )
    return NetworkError(
        message,
        fix=f"Try again in a few minutes: {MODE_RERUN[upload.mode]}",
        http_status=item.error.http_status,
        fbtrace_id=item.error.fbtrace_id,
        data={
            "write_outcome": NOT_DONE,
            "failed_batch_seq": item.seq,
            "batches_done": outcome.batches,
            "rows_sent": outcome.sent,
            "session": {"session_id": upload.session_id},
        },
    )


def session_lookup(upload: UsersSession, outcome: UploadOutcome, lost: list[LostBatch]) -> dict[str, str]:
    """How reconcile settles lost batches later: the session's count, against the rows known to have arrived and the
    rows of the lost batches."""
    return {
        "kind": USERS_SESSION_LOOKUP,
        "path": f"{upload.audience_id}/sessions",
        "tag": str(upload.session_id),
        "name": f"{upload.mode} users of audience {upload.audience_id}",
        "rows_arrived": str(outcome.sent),
        "rows_lost": str(sum(item.batch.rows for item in lost)),
    }


async def lost_rows_shown(graph: Any, lookup: dict[str, str]) -> tuple[str, int | None]:
    """What the upload session shows of the lost batches a lookup names: "arrived" (all of them), "missing" (none) or
    "unclear" (a count neither explains), with the session's count."""
    audience_id = lookup["path"].split("/", 1)[0]
    received = _received(await read_session(graph, audience_id, lookup["tag"]))
    arrived, lost = int(lookup["rows_arrived"]), int(lookup["rows_lost"])
    if received == arrived + lost:
        return "arrived", received
    return ("missing" if received == arrived else "unclear"), received


MODE_RERUN = {
    "add": "run the same add_users again: people already in the list are not added twice",
    "remove": "run the same remove_users again: people already removed stay removed",
    "replace": "run the same replace_users again: the list ends up as one complete run leaves it",
}


def users_outcome_unknown(upload: UsersSession, outcome: UploadOutcome, lost: list[LostBatch]) -> OutcomeUnknownError:
    """The session cannot prove whether the lost batches arrived: say so, with what to do (nothing was re-sent)."""
    seqs = [item.seq for item in lost]
    last = any(item.batch.last for item in lost)
    which = f"batch {seqs[0]}" if len(seqs) == 1 else f"batches {', '.join(map(str, seqs))}"
    which += " (the last)" if last else ""
    session = outcome.session or {}
    them = "it" if len(lost) == 1 else "them"
    if "read_error" in session:
        why = "the upload session could not be read"
    elif outcome.session is None:
        why = f"Facebook shows no upload session for {them}"
    else:
        why = (
            f"the upload session's count ({session.get('num_received')} rows received) does not tell whether "
            f"{'it' if len(lost) == 1 else 'each'} arrived"
        )
    rows = sum(item.batch.rows for item in lost)
    what = f"{which} of the upload to audience {upload.audience_id} ({counted(rows, 'row')})"
    head = (
        f"Facebook refused {what} naming the upload session ({lost[0].error.message.rstrip('. ')})"
        if lost[0].refused
        else f"The answer to {what} was lost ({lost_answer_cause(lost[0].error)})"
    )
    message = (
        f"{head} and {why}: Facebook may have received {them}. "
        f"{outcome.batches} earlier batch(es) ({outcome.sent:,} rows) arrived; nothing was sent again"
    )
    fix = (
        f"See in a few hours whether the audience grew (get_audience audience_id={upload.audience_id}), or "
        f"{MODE_RERUN[upload.mode]}"
    )
    data = {
        "outcome": "unknown",
        "audience_id": upload.audience_id,
        "mode": upload.mode,
        "session_id": upload.session_id,
        "lost_batches": seqs,
        "last_batch_lost": last,
        "rows_in_lost_batches": rows,
        "batches_done": outcome.batches,
        "rows_sent": outcome.sent,
        "cause": lost[0].error.to_text(),
        "session": session or None,
        "safe_to_rerun": True,
    }
    return add_lookup(
        OutcomeUnknownError(
            message,
            fix=fix,
            http_status=lost[0].error.http_status,
            code=lost[0].error.code,
            fbtrace_id=lost[0].error.fbtrace_id,
            data=data,
        ),
        session_lookup(upload, outcome, lost),
    )


def confirmed_line(outcome: UploadOutcome) -> str:
    """The batches whose answers were lost and whose arrival the upload session showed, in words."""
    seqs = outcome.confirmed_by_session
    if not seqs:
        return ""
    which = f"batch {seqs[0]} was" if len(seqs) == 1 else f"batches {', '.join(map(str, seqs))} were"
    return (
        f" The answer to {which} lost; Facebook's upload session shows {outcome.received:,} rows received, "
        f"every row sent, so nothing was sent twice."
    )


def _source_label(source: str | list[Any]) -> str:
    return f"CSV {os.path.basename(source)}" if isinstance(source, str) else "rows"


# What add_users, remove_users and replace_users answer. The users session as Facebook holds it
# (GET /{audience_id}/sessions) is typed from Meta's spec: its counts are strings there.
UploadSession = graph_object(CustomAudienceSession, SESSION_FIELDS, name="UploadSession")


class InvalidRowData(BaseModel):
    """A row that was not sent, by number and the fields that failed (never its values)."""

    row: int = Field(description="Row number in the source (a CSV file's header is row 1).")
    fields: list[str] = Field(description="The schema keys whose values could not be normalized.")


class UsersUploaded(OpData):
    """add_users, remove_users or replace_users done: what was read, sent and what Facebook counted."""

    audience_id: str
    mode: Literal["add", "remove", "replace"]
    schema_: list[str] = Field(alias="schema", description="The schema keys sent (EMAIL, PHONE, FN, …), in order.")
    rows_read: int
    rows_sent: int = Field(description="Rows of the batches known to have arrived.")
    num_received: int = Field(description="Entries Facebook counted as received.")
    invalid_rows: int = Field(description="Rows not sent because a value could not be normalized.")
    invalid_row_numbers: list[InvalidRowData]
    num_invalid_entries: int = Field(description="Entries Facebook marked invalid.")
    batches: int
    retried_batches: list[int] = Field(description="batch_seq of the batches sent again after a failure.")
    ignored_columns: list[str] = Field(description="Header cells that name no schema key (not sent).")
    hash_processes: int = Field(description="Worker processes that hashed the file (0: a thread of this process).")
    hash_process_peak_rss_kb: int
    confirmed_by_session: list[int] = Field(
        description="batch_seq of the batches whose answer was lost and whose arrival the upload session showed."
    )
    session: UploadSession = Field(  # type: ignore[valid-type]
        None, description="The upload session as last read; only when confirmed_by_session is not empty."
    )


def _users_plan(ctx: OpContext, args: UsersArgs, mode: str) -> WritePlan:
    schema = detect_schema(source_header(args.source))  # refuse a bad header before anything is planned
    total = source_total(args.source)
    verb = {"add": "Added", "remove": "Removed", "replace": "Replaced the list with"}[mode]
    method, edge = {"add": ("POST", "users"), "remove": ("DELETE", "users"), "replace": ("POST", "usersreplace")}[mode]
    shown = {
        "payload": {"schema": schema.keys, "data": f"<{total} rows, normalized and SHA-256 hashed>"},
        "session": {"batches_of": MAX_BATCH_ROWS, "estimated_num_total": total},
    }

    async def execute() -> OpResult:
        outcome, sent_schema = await upload_users(ctx, args.audience_id, args.source, mode)
        rows = ", ".join(str(r.row) for r in outcome.invalid_rows[:20])
        more = f" (first: rows {rows}{'…' if outcome.invalid > 20 else ''})" if outcome.invalid else ""
        retried = (
            f" Batches {outcome.retried_batches} failed once and were re-sent alone." if outcome.retried_batches else ""
        )
        confirmed = confirmed_line(outcome)
        fb_invalid = (
            f" Facebook marked {outcome.invalid_by_facebook} entries invalid." if outcome.invalid_by_facebook else ""
        )
        ignored = f" Ignored columns: {', '.join(sent_schema.ignored)}." if sent_schema.ignored else ""
        text = (
            f"{verb} {outcome.sent} customers ({', '.join(schema.keys)}) {'to' if mode == 'add' else 'of' if mode == 'replace' else 'from'} "
            f"audience {args.audience_id} in {outcome.batches} batch(es); {outcome.invalid} invalid row(s) not sent{more}."
            f"{retried}{confirmed}{fb_invalid}{ignored} Facebook takes up to a few hours to match them: get_audience shows "
            "the size."
        )
        return OpResult(
            text=text,
            data={
                "audience_id": args.audience_id,
                "mode": mode,
                "schema": schema.keys,
                "rows_read": outcome.read,
                "rows_sent": outcome.sent,
                "num_received": outcome.received,
                "invalid_rows": outcome.invalid,
                "invalid_row_numbers": [{"row": r.row, "fields": r.fields} for r in outcome.invalid_rows],
                "num_invalid_entries": outcome.invalid_by_facebook,
                "batches": outcome.batches,
                "retried_batches": outcome.retried_batches,
                "ignored_columns": sent_schema.ignored,
                "hash_processes": outcome.hash_processes,
                "hash_process_peak_rss_kb": outcome.hash_process_peak_kb,
                "confirmed_by_session": outcome.confirmed_by_session,
                **({"session": outcome.session} if outcome.confirmed_by_session else {}),
            },
        )

    what = {"add": "add", "remove": "remove", "replace": "replace all users with"}[mode]
    return WritePlan(
        summary=f"{what} {total} customer rows ({', '.join(schema.keys)}) of {_source_label(args.source)} "
        f"{'to' if mode == 'add' else 'in' if mode == 'replace' else 'from'} audience {args.audience_id}",
        ad_account_id=None,
        requests=[GraphRequest(method, f"{args.audience_id}/{edge}", shown)],
        changes=[Change(args.audience_id, "customaudience", "", f"users_{mode}", None, total)],
        execute=execute,
    )


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={"audience_id": "23850000000000001", "source": "customers.csv"},
    result=UsersUploaded,
)
async def add_users(ctx: OpContext, args: UsersArgs) -> WritePlan:
    return _users_plan(ctx, args, "add")


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    idempotent=True,
    example={"audience_id": "23850000000000001", "source": "unsubscribed.csv"},
    result=UsersUploaded,
)
async def remove_users(ctx: OpContext, args: RemoveUsersArgs) -> WritePlan:
    return _users_plan(ctx, args, "remove")


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    destructive=True,
    example={"audience_id": "23850000000000001", "source": "customers.csv"},
    result=UsersUploaded,
)
async def replace_users(ctx: OpContext, args: ReplaceUsersArgs) -> WritePlan:
    return _users_plan(ctx, args, "replace")


# ---------------------------------------------------------------------------------------------------------------
# Website, engagement and lookalike audiences
# ---------------------------------------------------------------------------------------------------------------

# Website and engagement audiences answer CreatedAudience (_create_plan); a lookalike call answers these.


class SentLookalikeSpec(BaseModel):
    """The lookalike_spec sent for one audience (Meta's LookalikeSpec: ratio and starting_ratio are fractions)."""

    ratio: float = Field(description="Size as a fraction of the population, 0.01–0.20.")
    starting_ratio: float = absent_key(description="Tiers: where this band starts (absent for the first band).")
    country: str = absent_key(
        description="Two-letter country code (absent from API v27: the ad sets give the locations)."
    )


class CreatedLookalikeAudience(BaseModel):
    id: str
    name: str
    lookalike_spec: SentLookalikeSpec


class CreatedLookalikes(OpData):
    """create_lookalike done: one audience, or one per tier."""

    ad_account_id: str
    audiences: list[CreatedLookalikeAudience]
    audience_ids: list[str]


DAY = 86_400


def _rule(source_id: str, source_type: str, retention_days: int, filters: list[dict[str, Any]]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "event_sources": [{"id": source_id, "type": source_type}],
        "retention_seconds": retention_days * DAY,
    }
    if filters:
        rule["filter"] = {"operator": "and", "filters": filters}
    return {"inclusions": {"operator": "or", "rules": [rule]}}


class CreateWebsiteAudienceArgs(OpArgs):
    """Create a website custom audience: people whose browser fired the pixel on matching URLs or events."""

    ad_account_id: str | None = AdAccountArg
    name: str = Field(..., min_length=1, max_length=200, description="Audience name.")
    pixel_id: str = Field(..., description="Pixel (dataset) id that records the visits.")
    url_contains: str | None = Field(
        None, min_length=1, max_length=500, description="Only visits to URLs containing this text."
    )
    url_equals: str | None = Field(None, min_length=1, max_length=2000, description="Only visits to exactly this URL.")
    event: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Only people who fired this event, e.g. Purchase, AddToCart, ViewContent.",
    )
    retention_days: int = Field(
        30, ge=1, le=180, description="How long people stay in the audience after their visit (1–180 days)."
    )
    description: str | None = Field(None, max_length=500)

    @field_validator("pixel_id")
    @classmethod
    def _pixel(cls, value: str) -> str:
        return check_object_id(value, "pixel_id")

    @model_validator(mode="after")
    def _one_url_rule(self) -> CreateWebsiteAudienceArgs:
        if self.url_contains and self.url_equals:
            raise ValueError("pass url_contains or url_equals, not both")
        return self


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={"name": "Cart visitors 30d", "pixel_id": "123456789012345", "url_contains": "/cart"},
    result=CreatedAudience,
)
async def create_website_audience(ctx: OpContext, args: CreateWebsiteAudienceArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    filters: list[dict[str, Any]] = []
    if args.url_contains:
        filters.append({"field": "url", "operator": "i_contains", "value": args.url_contains})
    if args.url_equals:
        filters.append({"field": "url", "operator": "eq", "value": args.url_equals})
    if args.event:
        filters.append({"field": "event", "operator": "eq", "value": args.event})
    payload: dict[str, Any] = {
        "name": args.name,
        "subtype": "WEBSITE",
        "pixel_id": args.pixel_id,
        "retention_days": args.retention_days,
        "rule": json.dumps(_rule(args.pixel_id, "pixel", args.retention_days, filters)),
    }
    if args.description:
        payload["description"] = args.description
    return _create_plan(ctx, account_id, payload, "website audience", "It fills as the pixel sees matching visits.")


PAGE_EVENTS = (
    "page_engaged",
    "page_visited",
    "page_liked",
    "page_messaged",
    "page_cta_clicked",
    "page_or_post_save",
    "page_post_interaction",
)
IG_EVENTS = (
    "ig_business_profile_all",
    "ig_business_profile_engaged",
    "ig_business_profile_visit",
    "ig_user_messaged_business",
    "ig_business_profile_ad_saved",
    "ig_business_profile_post_saved",
)


class CreateEngagementAudienceArgs(OpArgs):
    """Create an engagement custom audience: people who interacted with a Facebook page or an Instagram account."""

    ad_account_id: str | None = AdAccountArg
    name: str = Field(..., min_length=1, max_length=200, description="Audience name.")
    source_type: Literal["page", "instagram"] = Field(
        "page", description="page (a Facebook page) or instagram (an Instagram business account)."
    )
    source_id: str | None = Field(None, description="Page id or Instagram account id; default: the selected one.")
    event: str = Field(
        "page_engaged",
        description=f"What people did. Page: {', '.join(PAGE_EVENTS)}. Instagram: {', '.join(IG_EVENTS)}.",
    )
    retention_days: int = Field(
        365, ge=1, le=730, description="How far back to look (1–365 days for pages, up to 730 for Instagram)."
    )
    description: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _event_fits_source(self) -> CreateEngagementAudienceArgs:
        if self.source_type == "instagram" and self.event == "page_engaged":
            self.event = "ig_business_profile_all"
        allowed = PAGE_EVENTS if self.source_type == "page" else IG_EVENTS
        if self.event not in allowed:
            raise ValueError(
                f"event {self.event!r} does not fit source_type {self.source_type}: use one of {', '.join(allowed)}"
            )
        if self.source_type == "page" and self.retention_days > 365:
            raise ValueError("page engagement audiences look back at most 365 days")
        return self


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={"name": "Page engagers 1y", "source_type": "page", "event": "page_engaged"},
    result=CreatedAudience,
)
async def create_engagement_audience(ctx: OpContext, args: CreateEngagementAudienceArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    selected = ctx.page_id if args.source_type == "page" else ctx.instagram_account_id
    source_id = args.source_id or selected
    if not source_id:
        raise ValidationError(
            f"No {args.source_type} given and none selected",
            fix=f"Pass source_id (the {'page' if args.source_type == 'page' else 'Instagram account'} id) or select one with /use",
            blame_field="source_id",
        )
    source_id = check_object_id(source_id, "source_id")
    source_kind = "page" if args.source_type == "page" else "ig_business"
    payload: dict[str, Any] = {
        "name": args.name,
        "subtype": "ENGAGEMENT",
        "rule": json.dumps(
            _rule(
                source_id, source_kind, args.retention_days, [{"field": "event", "operator": "eq", "value": args.event}]
            )
        ),
    }
    if args.description:
        payload["description"] = args.description
    return _create_plan(ctx, account_id, payload, "engagement audience", "Facebook fills it over the next hours.")


def lookalike_takes_country(api_version: str) -> bool:
    """True before API v27.0, when lookalike_spec still takes (and needs) a country."""
    match = re.match(r"v(\d+)", api_version or "")
    return not match or int(match.group(1)) < 27


class CreateLookalikeArgs(OpArgs):
    """Create a lookalike audience of people similar to a source audience (one size or several tiers); before API v27 in one country."""

    ad_account_id: str | None = AdAccountArg
    origin_audience_id: str = Field(
        ..., description="Source custom audience id (at least 100 matched people in the country)."
    )
    country: str | None = Field(
        None,
        description="Two-letter country code (or name) where to find similar people, e.g. US. "
        "Needed before API v27; from v27 Facebook takes the locations from the ad sets that use the lookalike, so it is not sent.",
    )
    ratio: int = Field(
        1, ge=1, le=20, description="Size as a percent of the country's population, 1–20 (1 = most similar)."
    )
    tiers: list[int] | None = Field(
        None,
        min_length=2,
        max_length=6,
        description="Several sizes in percent, e.g. [1, 3, 5]: "
        "one audience per tier, each the band between the previous tier and this one (0–1 %, 1–3 %, 3–5 %).",
    )
    name: str | None = Field(
        None, max_length=200, description="Name (tiers add their band); default: 'Lookalike (US, 1%) - <origin id>'."
    )

    @field_validator("origin_audience_id")
    @classmethod
    def _origin(cls, value: str) -> str:
        return check_object_id(value, "origin_audience_id")

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = _country(value)
        if code is None:
            raise ValueError(f"{value!r} is not a country: use a two-letter ISO code such as US")
        return code.upper()

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if any(not 1 <= t <= 20 for t in value) or len(set(value)) != len(value):
            raise ValueError("tiers are distinct percents from 1 to 20")
        return sorted(value)


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={"origin_audience_id": "23850000000000001", "country": "US", "tiers": [1, 3, 5]},
    result=CreatedLookalikes,
)
async def create_lookalike(ctx: OpContext, args: CreateLookalikeArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    path = f"{account_id}/customaudiences"
    # v27.0+: lookalike_spec no longer takes country or location_spec; locations come from the ad sets that target
    # the lookalike (Meta Business SDK v27.0.0 release note,
    # https://github.com/meta/facebook-nodejs-business-sdk/releases/tag/v27.0.0). Before v27 a country is required.
    located = lookalike_takes_country(ctx.graph.api_version)
    if located and not args.country:
        raise ValidationError(
            f"A lookalike needs a country on API {ctx.graph.api_version}",
            blame_field="country",
            fix="Pass country, e.g. US (from API v27 Facebook takes it from the ad sets instead)",
        )
    country = args.country if located else None
    note = (
        ""
        if located or not args.country
        else (
            f"\nCountry {args.country} was not sent: from API v27 a lookalike's locations come from the ad sets that target it."
        )
    )
    where = f" in {country}" if country else " (locations from the ad sets that use it)"
    bands = list(zip([0] + (args.tiers or [])[:-1], args.tiers)) if args.tiers else [(0, args.ratio)]
    payloads = []
    for start, end in bands:
        spec: dict[str, Any] = {"ratio": round(end / 100, 2)}
        if country:
            spec["country"] = country
        band = f"{end}%" if start == 0 else f"{start}-{end}%"
        if start:
            spec["starting_ratio"] = round(start / 100, 2)
        base = args.name or (
            f"Lookalike ({country}, {{band}}) - {args.origin_audience_id}"
            if country
            else f"Lookalike ({{band}}) - {args.origin_audience_id}"
        )
        name = base.replace("{band}", band) if "{band}" in base else (f"{base} {band}" if args.tiers else base)
        payloads.append(
            {
                "name": name,
                "subtype": "LOOKALIKE",
                "origin_audience_id": args.origin_audience_id,
                "lookalike_spec": json.dumps(spec),
            }
        )

    async def execute() -> OpResult:
        made = []
        for payload in payloads:
            created = await ctx.graph.post(path, payload)
            made.append(
                {"id": created["id"], "name": payload["name"], "lookalike_spec": json.loads(payload["lookalike_spec"])}
            )
        lines = [f"Created {len(made)} lookalike audience(s) of {args.origin_audience_id}{where}:"]
        lines += [f"  {m['name']} ({m['id']})" for m in made]
        lines.append("Facebook builds them over 6–24 hours; get_audience shows the size." + note)
        return OpResult(
            text="\n".join(lines),
            data={"ad_account_id": account_id, "audiences": made, "audience_ids": [m["id"] for m in made]},
        )

    return WritePlan(
        summary=f"create {len(payloads)} lookalike audience(s) of {args.origin_audience_id}{where}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, p) for p in payloads],
        changes=[Change(None, "customaudience", p["name"], "subtype", None, "LOOKALIKE") for p in payloads],
        execute=execute,
    )


# ---------------------------------------------------------------------------------------------------------------
# Reading, updating and deleting
# ---------------------------------------------------------------------------------------------------------------


ListedAudience = graph_object(CustomAudience, LIST_FIELDS, name="ListedAudience")
AudienceObject = graph_object(CustomAudience, AUDIENCE_FIELDS, name="AudienceObject")
ChangedAudience = changed_data("audience_id")
# The SDK types sentence_lines as a bare "list" (SavedAudience._field_types), which graph_object reads as an object
# (it knows list<…> only): typed here as the list the spec names.
SavedAudienceObject = graph_object(
    SavedAudience, SAVED_FIELDS, name="SavedAudienceObject", extra_fields={"sentence_lines": list[Any]}
)


class AudienceList(OpData):
    ad_account_id: str
    audiences: list[ListedAudience]  # type: ignore[valid-type]


class AudienceData(OpData):
    audience: AudienceObject  # type: ignore[valid-type]


class DeletedAudience(OpData):
    audience_id: str
    deleted: Literal[True]


class SavedAudienceList(OpData):
    ad_account_id: str
    saved_audiences: list[SavedAudienceObject]  # type: ignore[valid-type]


class SavedAudienceData(OpData):
    saved_audience: SavedAudienceObject  # type: ignore[valid-type]


class ListAudiencesArgs(OpArgs):
    """List the custom and lookalike audiences of an ad account with their size and delivery status."""

    ad_account_id: str | None = AdAccountArg
    limit: int = Field(50, ge=1, le=500, description="Most audiences to show.")


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=AudienceList)
async def list_audiences(ctx: OpContext, args: ListAudiencesArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    audiences = await ctx.graph.get_all(
        f"{account_id}/customaudiences", {"fields": LIST_FIELDS, "limit": min(args.limit, 100)}, limit=args.limit
    )
    if not audiences:
        text = f"No custom audiences in {account_id}. Next: create_customer_list_audience or create_website_audience."
    else:
        text = "\n".join(
            [f"Custom audiences in {account_id}, {len(audiences)} shown:"]
            + ["  " + audience_line(a) for a in audiences]
        )
    return OpResult(text=text, data={"ad_account_id": account_id, "audiences": audiences})


class GetAudienceArgs(OpArgs):
    """Show one custom audience: type, size range, delivery and operation status, rule or lookalike spec."""

    audience_id: str = AudienceIdArg


async def _read_audience(ctx: OpContext, audience_id: str) -> dict[str, Any]:
    return await ctx.graph.get(check_object_id(audience_id, "audience_id"), {"fields": AUDIENCE_FIELDS})


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=AudienceData)
async def get_audience(ctx: OpContext, args: GetAudienceArgs) -> OpResult:
    audience = await _read_audience(ctx, args.audience_id)
    lines = [audience_line(audience)]
    if audience.get("description"):
        lines.append(f"Description: {audience['description']}")
    operation = audience.get("operation_status")
    if isinstance(operation, dict) and operation.get("description"):
        lines.append(f"Operation: {operation['description']}")
    if audience.get("retention_days"):
        lines.append(f"Retention: {audience['retention_days']} days")
    if audience.get("lookalike_spec"):
        lines.append(f"Lookalike spec: {json.dumps(audience['lookalike_spec'], default=str)}")
    return OpResult(text="\n".join(lines), data={"audience": audience})


class UpdateAudienceArgs(OpArgs):
    """Rename a custom audience, change its description, or (website audiences) its retention."""

    audience_id: str = AudienceIdArg
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=500)
    retention_days: int | None = Field(
        None, ge=1, le=180, description="Website audiences: days people stay in (1–180)."
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateAudienceArgs:
        if not self.model_dump(exclude={"audience_id"}, exclude_none=True):
            raise ValueError("nothing to change: pass name, description or retention_days")
        return self


def _edited(audience: dict[str, Any]) -> EditedObject:
    account = audience.get("account_id")
    return EditedObject(
        audience,
        "customaudience",
        "audience",
        "audience_id",
        f"act_{account}" if account and not str(account).startswith("act_") else account,
        None,
    )


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    idempotent=True,
    example={"audience_id": "23850000000000001", "name": "VIP customers"},
    result=ChangedAudience,
)
async def update_audience(ctx: OpContext, args: UpdateAudienceArgs) -> WritePlan | OpResult:
    audience = await _read_audience(ctx, args.audience_id)
    updates = args.model_dump(exclude={"audience_id"}, exclude_none=True)
    return update_plan(ctx, _edited(audience), updates, "Updated")


class DeleteAudienceArgs(OpArgs):
    """Delete a custom or lookalike audience (ad sets using it lose that targeting)."""

    audience_id: str = AudienceIdArg


@ops.op(OpKind.WRITE, group=TaskGroup.AUDIENCES_TRACKING, destructive=True, idempotent=True, result=DeletedAudience)
async def delete_audience(ctx: OpContext, args: DeleteAudienceArgs) -> WritePlan:
    audience = await _read_audience(ctx, args.audience_id)
    name, audience_id = audience.get("name", ""), audience["id"]

    async def execute() -> OpResult:
        await ctx.graph.delete(audience_id)
        return OpResult(
            text=f"Deleted audience {name} ({audience_id}).", data={"audience_id": audience_id, "deleted": True}
        )

    return WritePlan(
        summary=f"delete audience {name} ({audience_id})",
        ad_account_id=_edited(audience).ad_account_id,
        requests=[GraphRequest("DELETE", audience_id, {})],
        changes=[Change(audience_id, "customaudience", name, "status", "ACTIVE", "DELETED")],
        execute=execute,
    )


class ListSavedAudiencesArgs(OpArgs):
    """List the saved audiences (stored targeting specs) of an ad account."""

    ad_account_id: str | None = AdAccountArg
    limit: int = Field(50, ge=1, le=500, description="Most saved audiences to show.")


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=SavedAudienceList)
async def list_saved_audiences(ctx: OpContext, args: ListSavedAudiencesArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    saved = await ctx.graph.get_all(
        f"{account_id}/saved_audiences", {"fields": SAVED_FIELDS, "limit": min(args.limit, 100)}, limit=args.limit
    )
    if not saved:
        text = f"No saved audiences in {account_id}."
    else:
        text = "\n".join(
            [f"Saved audiences in {account_id}, {len(saved)} shown:"]
            + [f"  {s.get('name', '')} ({s.get('id')}): {_size_text(s)}" for s in saved]
        )
    return OpResult(text=text, data={"ad_account_id": account_id, "saved_audiences": saved})


class GetSavedAudienceArgs(OpArgs):
    """Show one saved audience: its targeting spec and size."""

    saved_audience_id: str = Field(..., description="Saved audience id; list_saved_audiences shows them.")


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=SavedAudienceData)
async def get_saved_audience(ctx: OpContext, args: GetSavedAudienceArgs) -> OpResult:
    saved = await ctx.graph.get(check_object_id(args.saved_audience_id, "saved_audience_id"), {"fields": SAVED_FIELDS})
    lines = [f"{saved.get('name', '')} ({saved.get('id')}): {_size_text(saved)}"]
    sentences = saved.get("sentence_lines")
    if isinstance(sentences, list):
        for line in sentences:
            if isinstance(line, dict):
                lines.append(f"  {line.get('content', '')} {', '.join(map(str, line.get('children', [])))}".rstrip())
    if saved.get("targeting"):
        lines.append(f"Targeting: {json.dumps(saved['targeting'], default=str)}")
    return OpResult(text="\n".join(lines), data={"saved_audience": saved})


# ===============================================================================================================
# Pixels, custom conversions, the Conversions API and the Google Tag Manager export
# ===============================================================================================================

STANDARD_EVENTS = (
    "PageView",
    "ViewContent",
    "Search",
    "AddToCart",
    "AddToWishlist",
    "InitiateCheckout",
    "AddPaymentInfo",
    "Purchase",
    "Lead",
    "CompleteRegistration",
    "Contact",
    "CustomizeProduct",
    "Donate",
    "FindLocation",
    "Schedule",
    "StartTrial",
    "SubmitApplication",
    "Subscribe",
)
_STANDARD_BY_LOWER = {name.lower(): name for name in STANDARD_EVENTS}
StandardEvent = Literal[STANDARD_EVENTS]  # type: ignore[valid-type]

# Custom conversion event types (the SDK's CustomConversion.CustomEventType) for each standard event.
EVENT_TYPE_OF = {
    "ViewContent": "CONTENT_VIEW",
    "Search": "SEARCH",
    "AddToCart": "ADD_TO_CART",
    "AddToWishlist": "ADD_TO_WISHLIST",
    "InitiateCheckout": "INITIATED_CHECKOUT",
    "AddPaymentInfo": "ADD_PAYMENT_INFO",
    "Purchase": "PURCHASE",
    "Lead": "LEAD",
    "CompleteRegistration": "COMPLETE_REGISTRATION",
    "Contact": "CONTACT",
    "CustomizeProduct": "CUSTOMIZE_PRODUCT",
    "Donate": "DONATE",
    "FindLocation": "FIND_LOCATION",
    "Schedule": "SCHEDULE",
    "StartTrial": "START_TRIAL",
    "SubmitApplication": "SUBMIT_APPLICATION",
    "Subscribe": "SUBSCRIBE",
    "PageView": "OTHER",
}
assert set(EVENT_TYPE_OF.values()) <= set(sdk_enum_values(CustomConversion.CustomEventType))

ACTION_SOURCES = tuple(sorted(source.value for source in ActionSource))
ActionSourceName = Literal[ACTION_SOURCES]  # type: ignore[valid-type]
STATS_AGGREGATIONS = sdk_enum_values(AdsPixelStatsResult.Aggregation)
StatsAggregation = Literal[STATS_AGGREGATIONS]  # type: ignore[valid-type]

CAPI_BATCH = 1_000
MAX_EVENT_AGE = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=1)
MAX_EVENTS_PER_CALL = 100_000

# user_data: normalized then hashed (the SDK's UserData.normalize rules) vs sent as they are.
HASHED_FIELDS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
PLAIN_FIELDS = (
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "lead_id",
    "anon_id",
    "fb_login_id",
    "madid",
    "page_id",
    "ctwa_clid",
)
PLAIN_LIST_FIELDS = ("external_id",)
USER_DATA_ALIASES = {
    "email": "em",
    "phone": "ph",
    "first_name": "fn",
    "last_name": "ln",
    "date_of_birth": "db",
    "birthday": "db",
    "gender": "ge",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "zip_code": "zp",
    "postal_code": "zp",
    "country_code": "country",
    "ip": "client_ip_address",
    "user_agent": "client_user_agent",
}
FIELD_WORDS = {
    "em": "email",
    "ph": "phone number",
    "fn": "first name",
    "ln": "last name",
    "db": "date of birth",
    "ge": "gender",
    "ct": "city",
    "st": "state",
    "zp": "zip code",
    "country": "country code",
}
FIELD_FIXES = {
    "em": "Send an email address like name@example.com (or its SHA-256 hex)",
    "ph": "Send the phone number with its country code, e.g. +1 650 555 1234 (or its SHA-256 hex)",
    "db": "Send the date of birth as YYYYMMDD or YYYY-MM-DD, e.g. 19900131 (or its SHA-256 hex)",
    "ge": "Send m or f (male/female accepted) or its SHA-256 hex",
    "country": "Send a 2-letter ISO 3166-1 country code, e.g. us (or its SHA-256 hex)",
}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d")
_CUSTOM_EVENT_RE = re.compile(r"^[A-Za-z0-9_\-. ]{1,50}$")

PixelIdArg = Field(
    ..., description="The pixel (dataset) id, digits; list_pixels shows them.", examples=["1234567890123456"]
)


# ---------------------------------------------------------------------------------------------------------------
# user_data normalization and hashing
# ---------------------------------------------------------------------------------------------------------------


def _bad_user_data(where: str, field: str, reason: str | None = None) -> ValidationError:
    # Never echoes the value: it is personal data.
    word = FIELD_WORDS.get(field, field)
    return ValidationError(
        f"{where}.{field} is not a valid {word}" + (f" ({reason})" if reason else ""),
        fix=FIELD_FIXES.get(field, f"Send {field} as text (or its SHA-256 hex)"),
        blame_field=f"{where}.{field}",
    )


def _prepare(field: str, value: str) -> str:
    """What the SDK's Normalize leaves to the caller: dates to YYYYMMDD, genders to m/f."""
    text = value.strip()
    if _HEX64.match(text):
        return text
    if field == "db":
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt).strftime("%Y%m%d")
            except ValueError:
                continue
        raise ValueError("date of birth")
    if field == "ge":
        gender = _GENDERS.get(text.lower())
        if gender is None:
            raise ValueError("gender")
        return gender
    return text


def hash_user_field(field: str, value: str, where: str = "user_data") -> str:
    """One user_data value normalized and SHA-256 hashed as the SDK does; a 64-hex value is taken as already hashed."""
    if not isinstance(value, str) or not value.strip():
        raise _bad_user_data(where, field, "empty or not text")
    try:
        hashed = Normalize.normalize_field(field, _prepare(field, value))
    except (TypeError, ValueError):
        raise _bad_user_data(where, field) from None
    if not hashed or not _HEX64.match(hashed):
        raise _bad_user_data(where, field)
    return hashed


def normalize_user_data(raw: Any, where: str = "user_data") -> dict[str, Any]:
    """user_data ready to send: hashed fields as lists of SHA-256 hex, the not-hashed ones as they are."""
    if not isinstance(raw, dict):
        raise ValidationError(
            f"{where} must be an object",
            fix='Send user_data like {"em": "name@example.com", "client_user_agent": "…"}',
            blame_field=where,
        )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        field = USER_DATA_ALIASES.get(str(key).lower(), str(key).lower())
        if value is None or value == [] or value == "":
            continue
        if field in HASHED_FIELDS:
            values = value if isinstance(value, list) else [value]
            hashed = [hash_user_field(field, v, where) for v in values]
            out[field] = list(dict.fromkeys(out.get(field, []) + hashed))
        elif field in PLAIN_FIELDS:
            if field in PLAIN_LIST_FIELDS:
                values = value if isinstance(value, list) else [value]
                out[field] = [str(v) for v in values]
            elif isinstance(value, (str, int)) and not isinstance(value, bool):
                out[field] = str(value)
            else:
                raise ValidationError(
                    f"{where}.{field} must be text", fix=f"Send {field} as a string", blame_field=f"{where}.{field}"
                )
        else:
            raise ValidationError(
                f"{where} has an unknown key {str(key)[:30]!r}",
                fix="Use em, ph, fn, ln, db, ge, ct, st, zp, country (hashed for you) or " + ", ".join(PLAIN_FIELDS),
                blame_field=f"{where}.{str(key)[:30]}",
            )
    if not out:
        raise ValidationError(
            f"{where} has no customer information",
            fix="Give at least one of em, ph, external_id, client_ip_address + client_user_agent, fbc or fbp",
            blame_field=where,
        )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------------------------

EVENT_IDS_SHOWN = 100  # the first event ids in a result's data (a call can hold 100,000 events)


class EventsRequestAnswer(BaseModel):
    """One request of CAPI_BATCH events and Facebook's answer to it."""

    batch: int = Field(description="The request's number, from 1.")
    events: int
    events_received: int
    fbtrace_id: str | None
    messages: list[Any]


class EventsSent(OpData):
    """send_events done: every request answered."""

    pixel_id: str
    events_sent: int
    events_received: int = Field(description="What Facebook counted as received (duplicates by event_id included).")
    requests: int
    batches: list[EventsRequestAnswer]
    event_counts: dict[str, int] = Field(description="Events sent per event_name.")
    test_event_code: str | None
    event_ids_derived: int = Field(description="Events whose event_id was derived from their content.")
    event_ids_given: int
    event_ids: list[str] = Field(description=f"The first {EVENT_IDS_SHOWN} event ids, in the events' order.")
    object_ids: list[str]


class ServerEvent(OpArgs):
    """One Conversions API event."""

    event_name: str = Field(
        ...,
        min_length=1,
        max_length=50,
        description="A standard event (" + ", ".join(STANDARD_EVENTS) + ") or a custom event name.",
        examples=["Purchase"],
    )
    event_time: int | float | str | None = Field(
        None,
        description="When it happened: unix seconds or ISO 8601 (default now). At most 7 days old, not in the future.",
    )
    event_id: str | None = Field(
        None,
        max_length=200,
        description="Id shared with the browser pixel event (eventID) so the two "
        "deduplicate, e.g. the order number. Without one, an id is derived from the event's content "
        "(name, time if given, hashed customer data, custom_data, source, URL): the same event sent "
        "again counts once. Give event_time or event_id to count two identical events apart.",
    )
    event_source_url: str | None = Field(
        None, max_length=2000, description="The page URL where it happened (website events)."
    )
    action_source: ActionSourceName = Field("website", description="Where the conversion happened.")
    user_data: dict[str, Any] = Field(
        ...,
        description="Customer information, raw or SHA-256 hashed: em, ph, fn, ln, db, ge, ct, st, "
        "zp, country (normalized and hashed for you); external_id, client_ip_address, "
        "client_user_agent, fbc, fbp (sent as they are).",
    )
    custom_data: dict[str, Any] | None = Field(
        None, description="value, currency (3 letters), content_ids, content_type, contents, num_items, order_id, …"
    )
    opt_out: bool | None = Field(None, description="true: use this event for attribution only, not ad optimization.")


def _event_time(value: Any, now: float, where: str) -> int:
    if value is None:
        return int(now)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{9,11}", text):
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{where}.event_time {text[:40]!r} is not a time",
            fix="Use unix seconds or ISO 8601, e.g. 2026-03-01T12:00:00Z",
            blame_field=f"{where}.event_time",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _iso(ts: int) -> str:
    """A unix time as a UTC date; the number itself when no calendar date has it (year 0 or past 9999)."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return f"{ts} (unix seconds, no calendar date)"


def prepare_event(event: ServerEvent, index: int, now: float) -> dict[str, Any]:
    """One event as Facebook takes it, checked: time window, names, custom_data; user_data hashed."""
    where = f"events[{index}]"
    name = _STANDARD_BY_LOWER.get(event.event_name.strip().lower(), event.event_name.strip())
    if name not in STANDARD_EVENTS and not _CUSTOM_EVENT_RE.match(name):
        raise ValidationError(
            f"{where}.event_name {name[:50]!r} is neither a standard event nor a valid custom name",
            fix="Use a standard event (e.g. Purchase) or a custom name of letters, digits, _ - . and spaces",
            blame_field=f"{where}.event_name",
        )
    ts = _event_time(event.event_time, now, where)
    if ts < now - MAX_EVENT_AGE.total_seconds():
        raise ValidationError(
            f"{where} ({name}) happened at {_iso(ts)}, more than 7 days ago: Facebook refuses events older than 7 days",
            fix="Drop that event or send only events from the last 7 days",
            blame_field=f"{where}.event_time",
        )
    if ts > now + MAX_FUTURE.total_seconds():
        raise ValidationError(
            f"{where} ({name}) has event_time {_iso(ts)}, in the future",
            fix="Send the time the event happened (unix seconds, UTC), not a later one",
            blame_field=f"{where}.event_time",
        )
    if event.action_source == "website" and not event.event_source_url:
        raise ValidationError(
            f"{where} ({name}) is a website event without event_source_url",
            fix="Add event_source_url (the page URL), or set action_source to where it happened",
            blame_field=f"{where}.event_source_url",
        )
    user_data = normalize_user_data(event.user_data, f"{where}.user_data")
    if event.action_source == "website" and "client_user_agent" not in user_data:
        raise ValidationError(
            f"{where} ({name}) is a website event without user_data.client_user_agent",
            fix="Add the browser's user agent as user_data.client_user_agent (Facebook requires it for website events)",
            blame_field=f"{where}.user_data.client_user_agent",
        )
    body: dict[str, Any] = {
        "event_name": name,
        "event_time": ts,
        "action_source": event.action_source,
        "user_data": user_data,
    }
    if event.event_source_url:
        body["event_source_url"] = event.event_source_url
    if event.opt_out is not None:
        body["opt_out"] = event.opt_out
    if event.custom_data:
        body["custom_data"] = _custom_data(event.custom_data, f"{where}.custom_data", name)
    body["event_id"] = event.event_id or derived_event_id(body, timed=event.event_time is not None)
    return body


# Meta counts a server event once: "If we find a match between events sent within 48 hours of each other, we only
# consider the first one", matching on event_name and event_id (Conversions API "Server Event Parameters", event_name
# and event_id; "Handling Duplicate Pixel and Conversions API Events", developers.facebook.com/docs/marketing-api/
# conversions-api/deduplicate-pixel-and-server-events, Graph API v25.0). So every event we send carries an event_id:
# the caller's, or this one, derived from what identifies the event, so that sending it again (after an answer was
# lost) is dropped as a duplicate instead of counted twice.
DERIVED_EVENT_ID_PREFIX = "am1-"  # "am": Ad Monster; "1": the derivation below (change it only with a new prefix)


def derived_event_id(body: dict[str, Any], *, timed: bool) -> str:
    """The id of an event the caller gave none: "am1-" and 32 hex digits of a SHA-256 over the event's identity.

    The identity is the event_name, the event_time when the caller gave one (a time filled in with "now" would differ
    on every re-send), the action_source, the event_source_url, the user_data with every value SHA-256 hashed (the
    normalized, already hashed fields as they are; the plain ones such as the IP address hashed here, so no personal
    data enters the id in the clear) and sorted, and the custom_data, all as canonical JSON (sorted keys). opt_out and
    test codes are not part of it: they say how to use an event, not which event it is."""
    user: dict[str, list[str]] = {}
    for field, value in body["user_data"].items():
        values = value if isinstance(value, list) else [value]
        user[field] = sorted(
            str(v) if field in HASHED_FIELDS else hashlib.sha256(str(v).encode()).hexdigest() for v in values
        )
    identity = {
        "event_name": body["event_name"],
        "event_time": body["event_time"] if timed else None,
        "action_source": body["action_source"],
        "event_source_url": body.get("event_source_url"),
        "user_data": user,
        "custom_data": body.get("custom_data"),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return DERIVED_EVENT_ID_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _custom_data(raw: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    data = dict(raw)
    if data.get("currency") is not None:
        currency = (
            Normalize.normalize_field_skip_hashing("currency", str(data["currency"]))
            if str(data["currency"]).strip()
            else None
        )
        if not currency or len(currency) != 3:
            raise ValidationError(
                f"{where}.currency must be a 3-letter code",
                fix="Use an ISO 4217 code, e.g. USD",
                blame_field=f"{where}.currency",
            )
        data["currency"] = currency.upper()
    if data.get("value") is not None:
        try:
            value = float(data["value"])
        except (TypeError, ValueError):
            raise ValidationError(
                f"{where}.value must be a number",
                fix="Send value as a number in major units, e.g. 49.99",
                blame_field=f"{where}.value",
            ) from None
        data["value"] = value
        if "currency" not in data:
            raise ValidationError(
                f"{where} has a value without currency", fix="Add currency, e.g. USD", blame_field=f"{where}.currency"
            )
    if name == "Purchase" and (data.get("value") is None or "currency" not in data):
        raise ValidationError(
            f"{where}: a Purchase needs value and currency",
            fix="Add custom_data.value and custom_data.currency",
            blame_field=where,
        )
    ids = data.get("content_ids")
    if ids is not None:
        data["content_ids"] = [str(i) for i in (ids if isinstance(ids, list) else [ids])]
    return data


class SendEventsArgs(OpArgs):
    """Send server events to a pixel through the Conversions API (user data normalized and SHA-256 hashed here; batches of 1,000)."""

    pixel_id: str = PixelIdArg
    events: list[ServerEvent] = Field(
        ...,
        min_length=1,
        max_length=MAX_EVENTS_PER_CALL,
        description="The events; every one is checked before any is sent.",
    )
    test_event_code: str | None = Field(
        None,
        max_length=100,
        description="Test code from Events Manager > Test events: the events show there and do not count.",
    )


def _event_summary(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in events:
        counts[e["event_name"]] = counts.get(e["event_name"], 0) + 1
    return counts


@dataclass
class EventsRun:
    """One send_events call as it goes: the prepared events, cut into requests of CAPI_BATCH, and what came back."""

    pixel_id: str
    bodies: list[dict[str, Any]]
    test_event_code: str | None
    derived_ids: int  # events whose event_id was derived from their content
    received: int = 0
    answers: list[dict[str, Any]] = dataclass_field(default_factory=list)

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [self.bodies[i : i + CAPI_BATCH] for i in range(0, len(self.bodies), CAPI_BATCH)]

    def span(self, number: int) -> tuple[int, int]:
        """events[first]–events[last] of request ``number`` (from 1)."""
        first = (number - 1) * CAPI_BATCH
        return first, min(len(self.bodies), first + CAPI_BATCH) - 1

    def id_data(self) -> dict[str, Any]:
        return {
            "event_ids_derived": self.derived_ids,
            "event_ids_given": len(self.bodies) - self.derived_ids,
            "event_ids": [b["event_id"] for b in self.bodies[:EVENT_IDS_SHOWN]],
        }


def event_ids_line(derived: int, total: int) -> str:
    """How the events got their ids, in words (empty when the caller gave every one)."""
    if not derived:
        return ""
    if derived == total:
        return (
            "Each event got an id derived from its content (you gave none), so sending the same event again "
            "counts it once."
        )
    return (
        f"{derived} of the {total} events got an id derived from their content (they had no event_id), so sending "
        "the same event again counts it once; the others carry yours."
    )


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={
        "pixel_id": "1234567890123456",
        "events": [
            {
                "event_name": "Purchase",
                "event_id": "order-1001",
                "event_source_url": "https://shop.example.com/thanks",
                "user_data": {
                    "em": "jane@example.com",
                    "client_ip_address": "203.0.113.7",
                    "client_user_agent": "Mozilla/5.0",
                },
                "custom_data": {"value": 49.99, "currency": "USD", "content_ids": ["SKU-1"]},
            }
        ],
    },
    result=EventsSent,
)
async def send_events(ctx: OpContext, args: SendEventsArgs) -> WritePlan:
    pixel_id = check_object_id(args.pixel_id, "pixel_id")
    now = (await ctx.now()).timestamp()
    bodies = [prepare_event(event, index, now) for index, event in enumerate(args.events)]
    run = EventsRun(pixel_id, bodies, args.test_event_code, derived_ids=sum(1 for e in args.events if not e.event_id))
    batches = run.batches
    path = f"{pixel_id}/events"
    extra = {"test_event_code": args.test_event_code} if args.test_event_code else {}
    counts = _event_summary(bodies)
    shown_counts = ", ".join(f"{n} {name}" for name, n in counts.items())

    async def execute() -> OpResult:
        for number, batch in enumerate(batches, start=1):
            try:
                answer = await ctx.graph.post(path, {"data": batch, **extra})
            except FacebookError as error:
                if is_ambiguous(error):
                    raise events_outcome_unknown(error, run, number) from None
                return _batch_failed(error, run, number)
            got = int(answer.get("events_received", 0) or 0)
            run.received += got
            run.answers.append(
                {
                    "batch": number,
                    "events": len(batch),
                    "events_received": got,
                    "fbtrace_id": answer.get("fbtrace_id"),
                    "messages": answer.get("messages", []),
                }
            )
        test = f" as test events (code {args.test_event_code})" if args.test_event_code else ""
        text = (
            f"Sent {len(bodies)} event(s) to pixel {pixel_id}{test} in {len(batches)} request(s): Facebook received "
            f"{run.received} ({shown_counts})."
        )
        if run.received != len(bodies):
            text += f" {len(bodies) - run.received} were not counted as received."
        ids_line = event_ids_line(run.derived_ids, len(bodies))
        return OpResult(
            text=f"{text}\n{ids_line}" if ids_line else text,
            data={
                "pixel_id": pixel_id,
                "events_sent": len(bodies),
                "events_received": run.received,
                "requests": len(batches),
                "batches": run.answers,
                "event_counts": counts,
                "test_event_code": args.test_event_code,
                **run.id_data(),
                "object_ids": [pixel_id],
            },
        )

    requests = [
        GraphRequest("POST", path, {"data": f"<{len(b)} events, user_data hashed, each with an event_id>", **extra})
        for b in batches
    ]
    return WritePlan(
        summary=f"send {len(bodies)} server event(s) ({shown_counts}) to pixel {pixel_id} in {len(batches)} request(s)",
        ad_account_id=None,
        requests=requests,
        changes=[Change(pixel_id, "pixel", pixel_id, "events_sent", None, len(bodies))],
        execute=execute,
    )


def _earlier_requests(run: EventsRun, number: int, total: int) -> tuple[str, str]:
    """What became of the requests before and after request ``number``, in words."""
    done = "Request 1 was" if number == 2 else f"Requests 1–{number - 1} were"
    before = f"{done} accepted ({run.received} events received)." if number > 1 else ""
    after = (
        ""
        if number == total
        else f" Request {total} was not sent."
        if number + 1 == total
        else f" Requests {number + 1}–{total} were not sent."
    )
    return before, after


def resend_command(run: EventsRun) -> str:
    test = f', "test_event_code": "{run.test_event_code}"' if run.test_event_code else ""
    return f'/tool send_events {{"pixel_id": "{run.pixel_id}"{test}, "events": [the same events]}}'


def events_outcome_unknown(error: FacebookError, run: EventsRun, number: int) -> OutcomeUnknownError:
    """Request ``number`` went out and its answer was lost: Facebook may have counted its events. Every event carries an
    event_id, so the same call again is safe (Facebook drops the repeats); that is what the person is told."""
    total = len(run.batches)
    first, last = run.span(number)
    size = last - first + 1
    before, after = _earlier_requests(run, number, total)
    message = (
        f"The answer to request {number} of {total} to pixel {run.pixel_id} (events[{first}]–events[{last}], "
        f"{counted(size, 'event')}) was lost ({lost_answer_cause(error)}): Facebook may have received them. "
        f"{before}{after}"
    ).strip()
    fix = (
        "Sending them again is safe: Facebook drops an event whose event_name and event_id it already has from the "
        f"last 48 hours, and every event here carries an event_id. Send the same call again: {resend_command(run)}"
    )
    data = {
        "outcome": "unknown",
        "safe_to_resend": True,
        "pixel_id": run.pixel_id,
        "unknown_batch": number,
        "batches_total": total,
        "unknown_events": [first, last],
        "events_sent": last + 1,
        "events_received": run.received,
        "events_not_sent": len(run.bodies) - last - 1,
        "batches": run.answers,
        "cause": error.to_text(),
        "fbtrace_id": error.fbtrace_id,
        "resend": {"op": "send_events", "same_arguments": True},
        **run.id_data(),
        "object_ids": [run.pixel_id],
    }
    return OutcomeUnknownError(
        message,
        fix=fix,
        http_status=error.http_status,
        code=error.code,
        error_subcode=error.error_subcode,
        fbtrace_id=error.fbtrace_id,
        data=data,
    )


def _batch_failed(error: FacebookError, run: EventsRun, number: int) -> OpResult:
    """Facebook refused request ``number`` with a clear error: none of its events were received."""
    total = len(run.batches)
    first, last = run.span(number)
    before, after = _earlier_requests(run, number, total)
    before = before or "Nothing was received."
    found = re.search(r"data\[(\d+)\]", f"{error.blame_field or ''} {error.user_message or ''} {error.message}")
    culprit = f" The bad event is events[{first + int(found.group(1))}] of your list." if found else ""
    reason = error.to_text().split(": ", 1)[-1]
    # An invalid event rejects its whole request; a throttle, an expired token or a missing permission rejects it too,
    # but then no event is to blame.
    why = "one invalid event rejects the whole request, so" if error.kind in ("facebook", "validation") else "so"
    text = (
        f"ERROR {error.kind}: Facebook refused request {number} of {total} to pixel "
        f"{run.pixel_id} (events[{first}]–events[{last}]); {why} none of those "
        f"{last - first + 1} events were received.{culprit} {before}{after} Facebook said: {reason}"
    )
    data = {
        **error.to_data(),
        "pixel_id": run.pixel_id,
        "failed_batch": number,
        "batches_total": total,
        "failed_event_index": first + int(found.group(1)) if found else None,
        "failed_events": [first, last],
        "events_sent": len(run.bodies),
        "events_received": run.received,
        "batches": run.answers,
        **run.id_data(),
        "object_ids": [run.pixel_id],
    }
    return OpResult(text=text, data=data, ok=False)


# ---------------------------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------------------------

PIXEL_FIELDS = "id,name,code,creation_time,last_fired_time,is_unavailable,owner_ad_account,data_use_setting"
PIXEL_LIST_FIELDS = "id,name,creation_time,last_fired_time,is_unavailable"
PERIODS = {
    "last_hour": timedelta(hours=1),
    "last_24h": timedelta(hours=24),
    "last_48h": timedelta(hours=48),
    "last_7d": timedelta(days=7),
    "last_28d": timedelta(days=28),
}
PERIOD_NAMES = tuple(PERIODS)
Period = Literal[PERIOD_NAMES]  # type: ignore[valid-type]

ListedPixel = graph_object(AdsPixel, PIXEL_LIST_FIELDS, name="ListedPixel")
PixelObject = graph_object(AdsPixel, PIXEL_FIELDS, name="PixelObject")
# GET /{pixel_id}/stats answers AdsPixelStatsResult buckets, each holding AdsPixelStats rows (Meta's spec types the
# bucket's data as list<AdsPixelStats>): both typed from the SDK, every field of each.
PixelStatsRow = graph_object(AdsPixelStats, list(AdsPixelStats._field_types), name="PixelStatsRow")
PixelStatsBucket = graph_object(
    AdsPixelStatsResult,
    list(AdsPixelStatsResult._field_types),
    name="PixelStatsBucket",
    extra_fields={"data": list[PixelStatsRow]},  # type: ignore[valid-type]
)


class CreatedPixel(OpData):
    pixel_id: str
    name: str
    ad_account_id: str
    object_ids: list[str]


class PixelList(OpData):
    ad_account_id: str
    pixels: list[ListedPixel]  # type: ignore[valid-type]


class PixelData(OpData):
    pixel_id: str
    pixel: PixelObject  # type: ignore[valid-type]


class PixelStats(OpData):
    pixel_id: str
    period: Period
    aggregation: StatsAggregation
    start_time: int = Field(description="Unix seconds.")
    end_time: int = Field(description="Unix seconds (exclusive).")
    totals: dict[str, int] = Field(description="Count per aggregated value (per event name for aggregation=event).")
    stats: list[PixelStatsBucket] = Field(  # type: ignore[valid-type]
        description="Facebook's answer: hourly buckets of counts."
    )


class CreatePixelArgs(OpArgs):
    """Create a Meta pixel (dataset) in the ad account, to receive browser and server events."""

    name: str = Field(..., min_length=1, max_length=100, description="Pixel name.", examples=["Shop pixel"])
    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.WRITE, group=TaskGroup.AUDIENCES_TRACKING, example={"name": "Shop pixel"}, result=CreatedPixel)
async def create_pixel(ctx: OpContext, args: CreatePixelArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    path = f"{account_id}/adspixels"

    async def execute() -> OpResult:
        made = await ctx.graph.post(path, {"name": args.name})
        pixel_id = str(made["id"])
        return OpResult(
            text=f"Created pixel {args.name} ({pixel_id}) in {account_id}. Next: gtm_export pixel_id={pixel_id} "
            f"for the browser tags, send_events for server events.",
            data={"pixel_id": pixel_id, "name": args.name, "ad_account_id": account_id, "object_ids": [pixel_id]},
        )

    return WritePlan(
        summary=f"create pixel {args.name} in {account_id}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, {"name": args.name})],
        changes=[Change(None, "pixel", args.name, "created", None, args.name)],
        execute=execute,
    )


class ListPixelsArgs(OpArgs):
    """List the ad account's pixels: id, name, when each last fired."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=PixelList)
async def list_pixels(ctx: OpContext, args: ListPixelsArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    pixels = await ctx.graph.get_all(f"{account_id}/adspixels", {"fields": PIXEL_LIST_FIELDS})
    if not pixels:
        return OpResult(
            text=f"No pixels in {account_id}. Create one with create_pixel.",
            data={"ad_account_id": account_id, "pixels": []},
        )
    lines = [f"Pixels in {account_id}:"]
    lines += [
        f"  {p.get('id')} · {p.get('name', '')} · last fired {p.get('last_fired_time') or 'never'}" for p in pixels
    ]
    return OpResult(text="\n".join(lines), data={"ad_account_id": account_id, "pixels": pixels})


class GetPixelArgs(OpArgs):
    """Show one pixel: name, base code, creation and last-fired time."""

    pixel_id: str = PixelIdArg


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=PixelData)
async def get_pixel(ctx: OpContext, args: GetPixelArgs) -> OpResult:
    pixel_id = check_object_id(args.pixel_id, "pixel_id")
    pixel = await ctx.graph.get(pixel_id, {"fields": PIXEL_FIELDS})
    text = (
        f"Pixel {pixel.get('name', '')} ({pixel_id}): created {pixel.get('creation_time', '?')}, "
        f"last fired {pixel.get('last_fired_time') or 'never'}."
    )
    return OpResult(text=text, data={"pixel_id": pixel_id, "pixel": pixel})


class PixelStatsArgs(OpArgs):
    """Event counts a pixel received (browser and server, duplicates by event_id counted once), grouped by event or another aggregation."""

    pixel_id: str = PixelIdArg
    period: Period = Field("last_24h", description="How far back to count.")
    aggregation: StatsAggregation = Field("event", description="How to group the counts (event: per event name).")


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=PixelStats)
async def pixel_stats(ctx: OpContext, args: PixelStatsArgs) -> OpResult:
    pixel_id = check_object_id(args.pixel_id, "pixel_id")
    now = int((await ctx.now()).timestamp())
    start = now - int(PERIODS[args.period].total_seconds())
    end = now + int(MAX_FUTURE.total_seconds())  # the end is exclusive: include events stamped this very second
    answer = await ctx.graph.get(
        f"{pixel_id}/stats", {"aggregation": args.aggregation, "start_time": start, "end_time": end}
    )
    rows = answer.get("data", []) if isinstance(answer, dict) else []
    totals: dict[str, int] = {}
    for bucket in rows:
        for item in bucket.get("data", []) if isinstance(bucket, dict) else []:
            key = str(item.get("value"))
            try:
                totals[key] = totals.get(key, 0) + int(item.get("count", 0))
            except (TypeError, ValueError):
                continue
    if not totals:
        text = f"Pixel {pixel_id} received no events in the {args.period.replace('_', ' ')}."
    else:
        text = (
            f"Pixel {pixel_id}, {args.period.replace('_', ' ')}, by {args.aggregation}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]))
            + "."
        )
    return OpResult(
        text=text,
        data={
            "pixel_id": pixel_id,
            "period": args.period,
            "aggregation": args.aggregation,
            "start_time": start,
            "end_time": end,
            "totals": totals,
            "stats": rows,
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Custom conversions
# ---------------------------------------------------------------------------------------------------------------

CONVERSION_FIELDS = "id,name,custom_event_type,rule,pixel,default_conversion_value,is_archived"
ListedCustomConversion = graph_object(CustomConversion, CONVERSION_FIELDS, name="ListedCustomConversion")


class CreatedCustomConversion(OpData):
    """create_custom_conversion done: the new id and the fields sent."""

    custom_conversion_id: str
    name: str
    event_source_id: str = Field(description="The pixel.")
    custom_event_type: str
    rule: str = Field(description="The rule as sent (JSON text).")
    default_conversion_value: float = absent_key(description="Only when given.")
    description: str = absent_key(description="Only when given.")
    ad_account_id: str
    object_ids: list[str]


class CustomConversionList(OpData):
    ad_account_id: str
    custom_conversions: list[ListedCustomConversion]  # type: ignore[valid-type]


class DeletedCustomConversion(OpData):
    custom_conversion_id: str
    object_ids: list[str]


class ConversionRule(OpArgs):
    """Which events count: a URL rule or an event parameter rule (one of them)."""

    url_contains: str | None = Field(
        None, max_length=500, description="Count events whose page URL contains this (case-insensitive)."
    )
    url_equals: str | None = Field(None, max_length=2000, description="Count events whose page URL is exactly this.")
    parameter: str | None = Field(
        None, max_length=100, description="A custom_data parameter to test, e.g. value or content_category."
    )
    operator: Literal["eq", "neq", "contains", "gt", "gte", "lt", "lte"] = Field(
        "eq", description="How parameter is compared."
    )
    parameter_value: str | float | None = Field(None, description="What parameter is compared with.")


def conversion_rule(event: str, rule: ConversionRule) -> dict[str, Any]:
    parts: list[dict[Any, Any]] = [{"event": {"eq": event}}]
    given = [n for n in ("url_contains", "url_equals", "parameter") if getattr(rule, n) is not None]
    if len(given) != 1:
        raise ValidationError(
            "rule needs exactly one of url_contains, url_equals, parameter",
            blame_field="rule",
            fix='e.g. rule {"url_contains": "thank-you"} or {"parameter": "value", "operator": "gt", "parameter_value": 100}',
        )
    if rule.url_contains is not None:
        parts.append({"url": {"i_contains": rule.url_contains}})
    elif rule.url_equals is not None:
        parts.append({"url": {"eq": rule.url_equals}})
    else:
        if rule.parameter_value is None:
            raise ValidationError(
                "rule.parameter needs parameter_value",
                fix="Add parameter_value, e.g. 100",
                blame_field="rule.parameter_value",
            )
        op = "i_contains" if rule.operator == "contains" else rule.operator
        parts.append({rule.parameter: {op: rule.parameter_value}})
    return {"and": parts}


class CreateCustomConversionArgs(OpArgs):
    """Create a custom conversion: a pixel's standard event narrowed by a URL or parameter rule, usable as an optimization goal."""

    name: str = Field(..., min_length=1, max_length=100, description="Name.", examples=["Checkout thank-you"])
    pixel_id: str = PixelIdArg
    event: StandardEvent = Field("Purchase", description="The standard event it is built on.")
    rule: ConversionRule = Field(
        ..., description="url_contains, url_equals or parameter (+ operator, parameter_value)."
    )
    default_value: float | None = Field(
        None,
        ge=0,
        description="Value given to each conversion without its own, in the account currency's major units (e.g. 25.00).",
    )
    description: str | None = Field(None, max_length=500, description="Description.")
    ad_account_id: str | None = AdAccountArg


@ops.op(
    OpKind.WRITE,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={
        "name": "Checkout thank-you",
        "pixel_id": "1234567890123456",
        "event": "Purchase",
        "rule": {"url_contains": "thank-you"},
        "default_value": 25,
    },
    result=CreatedCustomConversion,
)
async def create_custom_conversion(ctx: OpContext, args: CreateCustomConversionArgs) -> WritePlan:
    account_id = ctx.require_ad_account(args.ad_account_id)
    pixel_id = check_object_id(args.pixel_id, "pixel_id")
    body: dict[str, Any] = {
        "name": args.name,
        "event_source_id": pixel_id,
        "custom_event_type": EVENT_TYPE_OF[args.event],
        "rule": json.dumps(conversion_rule(args.event, args.rule), separators=(",", ":")),
    }
    if args.default_value is not None:
        body["default_conversion_value"] = args.default_value
    if args.description:
        body["description"] = args.description
    path = f"{account_id}/customconversions"

    async def execute() -> OpResult:
        made = await ctx.graph.post(path, body)
        cc_id = str(made["id"])
        return OpResult(
            text=f"Created custom conversion {args.name} ({cc_id}) on pixel {pixel_id}: {args.event} where {body['rule']}.",
            data={"custom_conversion_id": cc_id, **body, "ad_account_id": account_id, "object_ids": [cc_id]},
        )

    return WritePlan(
        summary=f"create custom conversion {args.name} ({args.event}) on pixel {pixel_id}",
        ad_account_id=account_id,
        requests=[GraphRequest("POST", path, body)],
        changes=[Change(None, "customconversion", args.name, "created", None, args.name)],
        execute=execute,
    )


class ListCustomConversionsArgs(OpArgs):
    """List the ad account's custom conversions: id, name, event type, rule, pixel."""

    ad_account_id: str | None = AdAccountArg


@ops.op(OpKind.READ, group=TaskGroup.AUDIENCES_TRACKING, result=CustomConversionList)
async def list_custom_conversions(ctx: OpContext, args: ListCustomConversionsArgs) -> OpResult:
    account_id = ctx.require_ad_account(args.ad_account_id)
    items = await ctx.graph.get_all(f"{account_id}/customconversions", {"fields": CONVERSION_FIELDS})
    if not items:
        return OpResult(
            text=f"No custom conversions in {account_id}.", data={"ad_account_id": account_id, "custom_conversions": []}
        )
    lines = [f"Custom conversions in {account_id}:"]
    lines += [
        f"  {c.get('id')} · {c.get('name', '')} · {c.get('custom_event_type', '')} · {c.get('rule', '')}" for c in items
    ]
    return OpResult(text="\n".join(lines), data={"ad_account_id": account_id, "custom_conversions": items})


class DeleteCustomConversionArgs(OpArgs):
    """Delete a custom conversion (ad sets optimizing for it stop getting its signal)."""

    custom_conversion_id: str = Field(..., description="The custom conversion id (list_custom_conversions).")


@ops.op(
    OpKind.WRITE, group=TaskGroup.AUDIENCES_TRACKING, destructive=True, idempotent=True, result=DeletedCustomConversion
)
async def delete_custom_conversion(ctx: OpContext, args: DeleteCustomConversionArgs) -> WritePlan:
    cc_id = check_object_id(args.custom_conversion_id, "custom_conversion_id")
    current = await ctx.graph.get(cc_id, {"fields": "id,name"})
    name = current.get("name", "")

    async def execute() -> OpResult:
        await ctx.graph.delete(cc_id)
        return OpResult(
            text=f"Deleted custom conversion {name} ({cc_id}).",
            data={"custom_conversion_id": cc_id, "object_ids": [cc_id]},
        )

    return WritePlan(
        summary=f"delete custom conversion {name} ({cc_id})",
        ad_account_id=None,
        requests=[GraphRequest("DELETE", cc_id, {})],
        changes=[Change(cc_id, "customconversion", name, "status", "ACTIVE", "DELETED")],
        execute=execute,
    )


# ---------------------------------------------------------------------------------------------------------------
# Google Tag Manager export
# ---------------------------------------------------------------------------------------------------------------

GTM_DATA_LAYER_KEYS = ("value", "currency", "content_ids", "event_id")
GTM_EVENTS_WITH_VALUE = frozenset(
    {
        "ViewContent",
        "AddToCart",
        "AddToWishlist",
        "InitiateCheckout",
        "AddPaymentInfo",
        "Purchase",
        "Lead",
        "CompleteRegistration",
        "Subscribe",
        "StartTrial",
        "Donate",
        "Search",
    }
)
GTM_EVENTS_WITH_CONTENT = frozenset(
    {
        "ViewContent",
        "AddToCart",
        "AddToWishlist",
        "InitiateCheckout",
        "AddPaymentInfo",
        "Purchase",
        "CustomizeProduct",
        "Search",
    }
)
GTM_DEFAULT_DIR = "admonster-gtm"


class GtmExported(OpData):
    pixel_id: str
    events: list[str] = Field(description="The standard events tagged (duplicates dropped).")
    file: str = Field(description="The container JSON written (a workspace file for remote callers).")
    tags: int = Field(description="Tags in the container (the base code and one per event).")


def _dlv_name(key: str) -> str:
    return f"DLV - {key}"


def pixel_base_code(pixel_id: str) -> str:
    return (
        "<!-- Meta Pixel Code -->\n<script>\n"
        "!function(f,b,e,v,n,t,s){if(f.fbq)return;n=f.fbq=function(){n.callMethod?\n"
        "n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;\n"
        "n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;\n"
        "t.src=v;s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}(window,\n"
        "document,'script','https://connect.facebook.net/en_US/fbevents.js');\n"
        f"fbq('init', '{pixel_id}');\nfbq('track', 'PageView');\n</script>\n"
        f'<noscript><img height="1" width="1" style="display:none" '
        f'src="https://www.facebook.com/tr?id={pixel_id}&ev=PageView&noscript=1"/></noscript>\n<!-- End Meta Pixel Code -->'
    )


def event_tag_html(event: str) -> str:
    params = []
    if event in GTM_EVENTS_WITH_VALUE:
        params += [f"value: {{{{{_dlv_name('value')}}}}}", f"currency: {{{{{_dlv_name('currency')}}}}}"]
    if event in GTM_EVENTS_WITH_CONTENT:
        params += [f"content_ids: {{{{{_dlv_name('content_ids')}}}}}", "content_type: 'product'"]
    return (
        f"<script>\n  fbq('track', '{event}', {{{', '.join(params)}}}, "
        f"{{eventID: {{{{{_dlv_name('event_id')}}}}}}});\n</script>"
    )


def gtm_container(pixel_id: str, events: list[str], *, export_time: datetime | None = None) -> dict[str, Any]:
    """A GTM container export (exportFormatVersion 2): base pixel tag on All Pages, one tag per event on its dataLayer event."""
    ids = {"accountId": "0", "containerId": "0"}
    triggers: list[dict[str, Any]] = [{**ids, "triggerId": "1", "name": "All Pages", "type": "PAGEVIEW"}]
    variables = [
        {
            **ids,
            "variableId": str(n),
            "name": _dlv_name(key),
            "type": "v",
            "formatValue": {},
            "parameter": [
                {"type": "INTEGER", "key": "dataLayerVersion", "value": "2"},
                {"type": "BOOLEAN", "key": "setDefaultValue", "value": "false"},
                {"type": "TEMPLATE", "key": "name", "value": key},
            ],
        }
        for n, key in enumerate(GTM_DATA_LAYER_KEYS, start=1)
    ]
    base_name = "Meta Pixel - Base Code"
    tags: list[dict[str, Any]] = [
        {
            **ids,
            "tagId": "1",
            "name": base_name,
            "type": "html",
            "firingTriggerId": ["1"],
            "tagFiringOption": "ONCE_PER_LOAD",
            "parameter": [
                {"type": "TEMPLATE", "key": "html", "value": pixel_base_code(pixel_id)},
                {"type": "BOOLEAN", "key": "supportDocumentWrite", "value": "false"},
            ],
        }
    ]
    for event in events:
        if event == "PageView":
            continue  # the base code tracks PageView on every page
        trigger_id = str(len(triggers) + 1)
        triggers.append(
            {
                **ids,
                "triggerId": trigger_id,
                "name": f"Event - {event}",
                "type": "CUSTOM_EVENT",
                "customEventFilter": [
                    {
                        "type": "EQUALS",
                        "parameter": [
                            {"type": "TEMPLATE", "key": "arg0", "value": "{{_event}}"},
                            {"type": "TEMPLATE", "key": "arg1", "value": event},
                        ],
                    }
                ],
            }
        )
        tags.append(
            {
                **ids,
                "tagId": str(len(tags) + 1),
                "name": f"Meta Pixel - {event}",
                "type": "html",
                "firingTriggerId": [trigger_id],
                "tagFiringOption": "ONCE_PER_EVENT",
                "setupTag": [{"tagName": base_name, "stopOnSetupFailure": True}],
                "parameter": [
                    {"type": "TEMPLATE", "key": "html", "value": event_tag_html(event)},
                    {"type": "BOOLEAN", "key": "supportDocumentWrite", "value": "false"},
                ],
            }
        )
    when = export_time or datetime.now(UTC)
    return {
        "exportFormatVersion": 2,
        "exportTime": when.strftime("%Y-%m-%d %H:%M:%S"),
        "containerVersion": {
            "path": "accounts/0/containers/0/versions/0",
            **ids,
            "containerVersionId": "0",
            "name": f"Meta Pixel {pixel_id}",
            "container": {
                "path": "accounts/0/containers/0",
                **ids,
                "name": f"Meta Pixel {pixel_id}",
                "publicId": "GTM-XXXXXXX",
                "usageContext": ["WEB"],
            },
            "tag": tags,
            "trigger": triggers,
            "variable": variables,
            "builtInVariable": [
                {**ids, "type": "EVENT", "name": "Event"},
                {**ids, "type": "PAGE_URL", "name": "Page URL"},
            ],
        },
    }


class GtmExportArgs(OpArgs):
    """Write a Google Tag Manager container (JSON to import in GTM: Admin > Import Container) with the Meta Pixel base code and one tag per event, deduplicating with server events by event_id."""

    pixel_id: str = PixelIdArg
    events: list[StandardEvent] = Field(
        ...,
        min_length=1,
        max_length=len(STANDARD_EVENTS),
        description="Standard events to tag; each fires on a dataLayer event of the same name.",
        examples=[["ViewContent", "AddToCart", "Purchase"]],
    )
    out_dir: str | None = Field(
        None,
        max_length=1000,
        description=f"Folder inside the workspace's own files folder (relative; default {GTM_DEFAULT_DIR}).",
    )


@ops.op(
    OpKind.READ,
    group=TaskGroup.AUDIENCES_TRACKING,
    example={"pixel_id": "1234567890123456", "events": ["ViewContent", "AddToCart", "Purchase"]},
    result=GtmExported,
)
async def gtm_export(ctx: OpContext, args: GtmExportArgs) -> OpResult:
    pixel_id = check_object_id(args.pixel_id, "pixel_id")
    pixel = await ctx.graph.get(pixel_id, {"fields": "id,name"})
    events = list(dict.fromkeys(args.events))
    container = gtm_container(pixel_id, events)
    target = output_file(ctx, args.out_dir, GTM_DEFAULT_DIR, f"gtm-meta-pixel-{pixel_id}.json")
    target.write_text(json.dumps(container, indent=2, ensure_ascii=False), encoding="utf-8")
    tagged = [e for e in events if e != "PageView"]
    text = (
        f"Wrote {target}: GTM container for pixel {pixel.get('name', '')} ({pixel_id}) with the base code on All Pages"
        + (f" and tags for {', '.join(tagged)}" if tagged else "")
        + ". Import it in GTM (Admin > Import Container, merge). "
        "Each tag fires on dataLayer.push({event: '<EventName>', value, currency, content_ids, event_id}); send the same "
        "event_id with send_events so Facebook deduplicates browser and server events."
    )
    return OpResult(
        text=text,
        data={
            "pixel_id": pixel_id,
            "events": events,
            "file": str(target),
            "tags": len(container["containerVersion"]["tag"]),
        },
        files=[str(target)],
    )
