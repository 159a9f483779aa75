"""Durable storage of a perceptual study in SQLite: participants, their planned trials, one row per answer.

Every answer is committed (WAL journal, synchronous=FULL) before the reply that leads to the next
trial, so a crash loses nothing that a participant was told was saved. A participant's trials are
planned once, when the participant is created, and stored; opening the link again continues at the
first unanswered trial. The primary key (participant, trial) rejects a second answer to a trial.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..security import UploadError, new_token
from .spec import SIDES, StudySpec, Trial, plan_trials
from .stats import Proportion, fooled_rates

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE, label TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    participant INTEGER NOT NULL REFERENCES participants(id), idx INTEGER NOT NULL, practice INTEGER NOT NULL,
    method TEXT NOT NULL, fake TEXT NOT NULL, real TEXT NOT NULL, fake_side TEXT NOT NULL,
    PRIMARY KEY (participant, idx));
CREATE TABLE IF NOT EXISTS answers (
    participant INTEGER NOT NULL, idx INTEGER NOT NULL, choice TEXT NOT NULL, fake_chosen INTEGER NOT NULL,
    response_ms REAL, answered REAL NOT NULL,
    PRIMARY KEY (participant, idx), FOREIGN KEY (participant, idx) REFERENCES trials(participant, idx));
"""

CSV_COLUMNS = ("participant", "label", "trial", "block", "method", "fake_image", "real_image", "fake_side",
               "choice", "fake_chosen_as_real", "correct", "response_ms", "answered_utc")


class AnswerError(UploadError):
    """An answer the store refuses; `status` is the HTTP status (404 unknown, 409 conflict, 400 bad)."""


@dataclass(frozen=True)
class Participant:
    id: int
    token: str
    label: str


class StudyStore:
    """A study's SQLite database. Safe to use from several threads (one connection per operation)."""

    def __init__(self, spec: StudySpec, path: str | Path | None = None) -> None:
        self.spec = spec
        self.path = Path(path or spec.database)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('spec', ?)", (json.dumps(spec.to_dict()),))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # explicit transactions below
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: checks and insert see the same state
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- participants ------------------------------------------------------------------------------

    def add_participant(self, label: str = "") -> Participant:
        """A new participant with a random token and their planned trials."""
        token = new_token()
        with self._transaction() as db:
            pid = db.execute("INSERT INTO participants (token, label, created) VALUES (?, ?, ?)",
                             (token, label[:200], time.time())).lastrowid
            trials = plan_trials(self.spec, pid)
            db.executemany(
                "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(pid, t.index, int(t.practice), t.method, t.fake, t.real, t.fake_side) for t in trials],
            )
        return Participant(pid, token, label[:200])

    def participant(self, token: str) -> Participant | None:
        with self._connect() as db:
            row = db.execute("SELECT id, token, label FROM participants WHERE token = ?", (token,)).fetchone()
        return Participant(*row) if row else None

    def participants(self) -> list[dict]:
        """Per participant: id, label, token, trials answered and planned."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT p.id, p.label, p.token, p.created, "
                "(SELECT COUNT(*) FROM answers a WHERE a.participant = p.id), "
                "(SELECT COUNT(*) FROM trials t WHERE t.participant = p.id) FROM participants p ORDER BY p.id"
            ).fetchall()
        return [dict(zip(("id", "label", "token", "created", "answered", "trials"), r)) for r in rows]

    # -- trials and answers ------------------------------------------------------------------------

    def trials(self, participant: int) -> list[Trial]:
        with self._connect() as db:
            rows = db.execute("SELECT idx, practice, method, fake, real, fake_side FROM trials WHERE participant = ? "
                              "ORDER BY idx", (participant,)).fetchall()
        return [Trial(i, bool(p), m, f, r, s) for i, p, m, f, r, s in rows]

    def next_trial(self, participant: int) -> Trial | None:
        """The first trial without an answer (None when all are answered)."""
        with self._connect() as db:
            return _next(db, participant)

    def answered(self, participant: int) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM answers WHERE participant = ?", (participant,)).fetchone()[0]

    def answer(self, participant: int, index: int, choice: str, response_ms: float | None = None) -> Trial:
        """Record that the participant took the image on side `choice` for the real one; returns the trial.

        Raises:
            AnswerError: 400 for a bad choice, 409 for a trial already answered or not the current one.
        """
        if choice not in SIDES:
            raise AnswerError(400, f"choice must be one of {', '.join(SIDES)}, got {choice!r}")
        if response_ms is not None and not 0 <= response_ms < 1e9:
            response_ms = None
        with self._transaction() as db:
            done = db.execute("SELECT 1 FROM answers WHERE participant = ? AND idx = ?", (participant, index)).fetchone()
            if done:
                raise AnswerError(409, f"trial {index} was already answered; answers cannot be changed")
            current = _next(db, participant)
            if current is None:
                raise AnswerError(409, "all trials are answered already")
            if current.index != index:
                raise AnswerError(409, f"trial {index} is not the current trial ({current.index})")
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                       (participant, index, choice, int(choice == current.fake_side), response_ms, time.time()))
        return current

    def answer_rows(self) -> list[dict]:
        """Every answer joined with its trial and participant, in answering order."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT a.participant, p.label, a.idx, t.practice, t.method, t.fake, t.real, t.fake_side, a.choice, "
                "a.fake_chosen, a.response_ms, a.answered FROM answers a "
                "JOIN trials t ON t.participant = a.participant AND t.idx = a.idx "
                "JOIN participants p ON p.id = a.participant ORDER BY a.answered, a.participant, a.idx"
            ).fetchall()
        keys = ("participant", "label", "trial", "practice", "method", "fake", "real", "fake_side", "choice",
                "fake_chosen", "response_ms", "answered")
        return [dict(zip(keys, r)) for r in rows]

    # -- results -----------------------------------------------------------------------------------

    def results(self) -> dict[str, Proportion]:
        """Per method (all of the study's, then any others found in the data), over scored trials."""
        rows = self.answer_rows()
        return fooled_rates(((r["method"], bool(r["fake_chosen"])) for r in rows if not r["practice"]),
                            self.spec.methods)

    def csv(self) -> str:
        """All answers (practice and scored) as CSV, one row per answer."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.answer_rows():
            writer.writerow([
                r["participant"], _cell(r["label"]), r["trial"], "practice" if r["practice"] else "scored",
                _cell(r["method"]), _cell(r["fake"]), _cell(r["real"]), r["fake_side"], r["choice"],
                int(r["fake_chosen"]), int(not r["fake_chosen"]),
                "" if r["response_ms"] is None else round(r["response_ms"]),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["answered"])),
            ])
        return out.getvalue()


def _next(db: sqlite3.Connection, participant: int) -> Trial | None:
    row = db.execute(
        "SELECT idx, practice, method, fake, real, fake_side FROM trials t WHERE participant = ? AND NOT EXISTS "
        "(SELECT 1 FROM answers a WHERE a.participant = t.participant AND a.idx = t.idx) ORDER BY idx LIMIT 1",
        (participant,),
    ).fetchone()
    return None if row is None else Trial(row[0], bool(row[1]), row[2], row[3], row[4], row[5])


def _cell(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
