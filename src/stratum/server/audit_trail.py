"""The audit chain's key and its anchor outside the store.

The key: an audit key file (mode 0600) or $STRATUM_AUDIT_KEYS, newest first, beside the
secret key file and in the same format, but apart from it: the keys that seal credentials
rotate and retire, while a record must stay verifiable for as long as it is kept, so an
audit key is only ever added in front (records name the key they were signed with). It
never enters the database, so whoever can write the database cannot recompute the chain.
The anchor: a small file (mode 0600) holding the head's sequence and hash, signed
with that key, so that deleting the newest records shows as well.

The anchor follows the head from a thread: woken after each write this server makes, and
every ANCHOR_SECONDS for writes made by other replicas (each replica keeps its own file),
and once more at shutdown. The trade-off: records appended in the last moments before an
attacker truncates the log (well under a second here, up to ANCHOR_SECONDS for another
replica's writes) are not yet anchored, and their deletion is not detected; anchoring in
the write's own transaction would close that gap but put a file write, and a failure mode,
on every API write. The anchor only moves forward along the chain: if the log shrank or
the anchored record changed, it stays where it is and the next `audit verify` says so.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from stratum.core.audit import Anchor, AuditKey, Verification, audit_keys, verify
from stratum.core.errors import Invalid, StratumError
from stratum.core.secrets import Keyring
from stratum.server.secrets import read_key_file
from stratum.server.settings import ServerSettings
from stratum.store import audit
from stratum.store.objects import ObjectStore

log = logging.getLogger("stratum.server.audit")

ANCHOR_SECONDS = 1.0
DEFAULT_ANCHOR_FILE = "audit-anchor.json"
DEFAULT_AUDIT_KEY_FILE = "audit.key"
ENV_AUDIT_KEYS = "STRATUM_AUDIT_KEYS"


def load_audit_keys(*, key_file: Path | None, keys: str | None) -> tuple[AuditKey, ...]:
    """The key file if given, else the keys text (else $STRATUM_AUDIT_KEYS), else none."""
    if key_file is not None:
        return audit_keys(read_key_file(key_file).keys)
    if keys is None:
        keys = os.environ.get(ENV_AUDIT_KEYS)
    if not keys or not keys.strip():
        return ()
    try:
        return audit_keys(Keyring.parse(keys).keys)
    except ValueError as err:
        raise Invalid(f"{ENV_AUDIT_KEYS}: {err}") from None


class UnreadableAnchor(ValueError):
    """The anchor file exists but is not an anchor this server can use."""


class AuditTrail:
    """Signs the chain (through the store) and keeps its anchor file up to date."""

    def __init__(self, store: ObjectStore, keys: tuple[AuditKey, ...], anchor_file: Path | None):
        self.store = store
        self.keys = keys
        # Without a key an anchor could be forged by anyone who can write the file.
        self.anchor_file = anchor_file if keys else None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._complaint: str | None = None  # said once, not every second

    @classmethod
    def configure(
        cls, store: ObjectStore, keys: tuple[AuditKey, ...], anchor_file: Path | None
    ) -> AuditTrail:
        """The trail of a server: every record appended through `store` is signed with the
        newest of `keys` from now on."""
        audit.use_key(store, keys[0] if keys else None)
        if not keys:
            log.warning(
                "no audit key (%s or --audit-key-file): audit records are hash-chained "
                "without a key, so whoever can write the database can rewrite them undetected",
                ENV_AUDIT_KEYS,
            )
        return cls(store, keys, anchor_file)

    @classmethod
    def for_server(cls, store: ObjectStore, settings: ServerSettings) -> AuditTrail:
        keys = load_audit_keys(key_file=settings.audit_key_file, keys=settings.audit_keys)
        return cls.configure(store, keys, settings.audit_anchor_file)

    # -- the anchor ------------------------------------------------------------------------
    def read_anchor(self) -> Anchor | None:
        """The anchor in the file; None when there is none; UnreadableAnchor when broken."""
        if self.anchor_file is None:
            return None
        try:
            text = self.anchor_file.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise UnreadableAnchor(f"{self.anchor_file}: {err.strerror}") from None
        try:
            return Anchor.from_wire(json.loads(text))
        except (ValueError, AttributeError) as err:
            raise UnreadableAnchor(f"{self.anchor_file}: {err}") from None

    def advance(self) -> Anchor | None:
        """Move the anchor to the chain's head, if the head follows from it."""
        if self.anchor_file is None:
            return None
        with self._lock:
            current = self.read_anchor()
            by_id = {k.id: k for k in self.keys}
            if current is not None and not current.signed_by(by_id):
                raise UnreadableAnchor(
                    f"{self.anchor_file} is not signed by any configured audit key: it is "
                    "left as it is; `stratum audit verify` reports it"
                )
            with self.store.read() as tx:
                head = audit.head(tx)
                if head is None:
                    return current
                if current is not None:
                    if head == (current.sequence, current.hash):
                        return current
                    if head[0] < current.sequence or audit.hash_at(tx, current.sequence) != (
                        current.hash
                    ):
                        raise UnreadableAnchor(
                            f"the audit log no longer continues from the anchor (record "
                            f"{current.sequence}): the anchor stays; run `stratum audit verify`"
                        )
                now = tx.clock.now().isoformat().replace("+00:00", "Z")
            anchor = Anchor.sign(head[0], head[1], self.keys[0], now)
            _write_private(self.anchor_file, json.dumps(anchor.to_wire(), indent=1) + "\n")
            return anchor

    def verify(self) -> Verification:
        """The chain checked with the keys and against the anchor (read first, so that it
        never runs ahead of the records read after it)."""
        problem: str | None = None
        try:
            anchor = self.read_anchor()
        except UnreadableAnchor as err:
            anchor, problem = None, str(err)
        with self.store.read() as tx:
            result = verify(
                audit.records(tx),
                expected=audit.appended(tx),
                keys=self.keys,
                anchor=anchor,
                anchor_expected=self.anchor_file is not None,
            )
        if problem is not None:
            notes = (*result.notes, f"the anchor file is unreadable: {problem}")
            return Verification(
                records=result.records,
                expected=result.expected,
                head=result.head,
                problems=result.problems,
                notes=notes,
                unkeyed=result.unkeyed,
                anchored=result.anchored,
            )
        return result

    # -- the thread that keeps it up to date -------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.anchor_file is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None
        self._advance_logged()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._advance_logged()
            self._wake.wait(ANCHOR_SECONDS)
            self._wake.clear()

    def _advance_logged(self) -> None:
        try:
            self.advance()
            self._complaint = None
        except UnreadableAnchor as err:
            self._complain(logging.ERROR, f"audit anchor: {err}")
        except (StratumError, OSError) as err:  # the store or the disk is away: next time
            self._complain(logging.WARNING, f"audit anchor not updated: {err}")

    def _complain(self, level: int, message: str) -> None:
        if message != self._complaint:
            self._complaint = message
            log.log(level, "%s", message)


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
