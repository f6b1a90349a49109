"""Offline verification: one engine shared by the bundle verifier and the full-ledger audit.

Imports only the standard library, `cryptography`, `rfc8785`, `domain` and the driver-free parts
of `ledger` (canonical JSON, envelopes, keys, leaves, Merkle, notes): never FastAPI, eventsourcing,
psycopg or sqlite3.

The public surface is ``__all__``: code outside this package imports only these names (and the
modules ``bundle_format``, the bundle's layout shared with the writer, ``web``, the in-browser
verifier page the writer ships, and ``state_dir``, the client state directory), never the modules behind
them (checked by ``tests/test_layering.py``); the modules of the package import each other by
module, never through this package. Every name but ``bundle_format`` and ``web`` (standard library only) is imported from its module on
first use (PEP 562), so an importer pays only for what it takes: the pin-file commands load the
pin-file reader alone, and the service, which writes bundles, loads no verifier at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.verify import bundle_format, web

if TYPE_CHECKING:
    from ledger.verify.bundle import verify_bundle
    from ledger.verify.bundle_files import BundleUnusable
    from ledger.verify.bundle_model import VerifyOptions
    from ledger.verify.engine import (
        CaseTrack,
        Entry,
        EntryChecker,
        check_entries,
        public_keys_in,
        verify_signatures,
    )
    from ledger.verify.findings import Finding
    from ledger.verify.forked import can_fork
    from ledger.verify.log_checks import (
        CheckpointInput,
        KnownCheckpoint,
        check_checkpoints,
        checkpoint_sizes,
        scan_tree,
        verify_known,
    )
    from ledger.verify.log_match import EventRow, LogRow, Matched, match_log, order_findings
    from ledger.verify.log_server import LogServer
    from ledger.verify.memory import CheckpointMemory, Observation
    from ledger.verify.pipeline import check_pipelined, parse_all
    from ledger.verify.previous import PreviousComparison, compare_previous
    from ledger.verify.receipt_check import (
        BrokenPromise,
        ReceiptStatus,
        check_receipt,
        log_checkpoint,
        receipt_status,
    )
    from ledger.verify.receipt_store import (
        Equivocation,
        check_append_receipt,
        keep_receipt,
        receipt_key,
        stored_receipts,
        warn_once,
    )
    from ledger.verify.report import exit_code, render_text, report_json
    from ledger.verify.report_html import render_html
    from ledger.verify.tiled import TilesAudit, audit_tiles, tiles_proofs, tiles_source
    from ledger.verify.trust import (
        HEX64,
        LogPin,
        PinFile,
        PinFileError,
        check_origin,
        load_pins,
        pin_file_path,
        read_pin_file,
        render_pin_file,
    )

__all__ = [
    "HEX64",
    "BrokenPromise",
    "BundleUnusable",
    "CaseTrack",
    "CheckpointInput",
    "CheckpointMemory",
    "Entry",
    "EntryChecker",
    "Equivocation",
    "EventRow",
    "Finding",
    "KnownCheckpoint",
    "LogPin",
    "LogRow",
    "LogServer",
    "Matched",
    "Observation",
    "PinFile",
    "PinFileError",
    "PreviousComparison",
    "ReceiptStatus",
    "TilesAudit",
    "VerifyOptions",
    "audit_tiles",
    "bundle_format",
    "can_fork",
    "check_append_receipt",
    "check_checkpoints",
    "check_entries",
    "check_origin",
    "check_pipelined",
    "check_receipt",
    "checkpoint_sizes",
    "compare_previous",
    "exit_code",
    "keep_receipt",
    "load_pins",
    "log_checkpoint",
    "match_log",
    "order_findings",
    "parse_all",
    "pin_file_path",
    "public_keys_in",
    "read_pin_file",
    "receipt_key",
    "receipt_status",
    "render_html",
    "render_pin_file",
    "render_text",
    "report_json",
    "scan_tree",
    "state_dir",
    "stored_receipts",
    "tiles_proofs",
    "tiles_source",
    "verify_bundle",
    "verify_known",
    "verify_signatures",
    "warn_once",
    "web",
]

if not TYPE_CHECKING:  # type checkers read the imports above; at run time a name is imported when used

    def __getattr__(name: str) -> Any:
        if name == "state_dir":  # a public module (standard library only), imported on first use
            import ledger.verify.state_dir as public_module

            return public_module
        if name == "verify_bundle":
            from ledger.verify import bundle as module
        elif name == "BundleUnusable":
            from ledger.verify import bundle_files as module
        elif name == "VerifyOptions":
            from ledger.verify import bundle_model as module
        elif name in ("CaseTrack", "Entry", "EntryChecker", "check_entries", "public_keys_in", "verify_signatures"):
            from ledger.verify import engine as module
        elif name == "Finding":
            from ledger.verify import findings as module
        elif name == "can_fork":
            from ledger.verify import forked as module
        elif name in (
            "CheckpointInput",
            "KnownCheckpoint",
            "check_checkpoints",
            "checkpoint_sizes",
            "scan_tree",
            "verify_known",
        ):
            from ledger.verify import log_checks as module
        elif name in ("EventRow", "LogRow", "Matched", "match_log", "order_findings"):
            from ledger.verify import log_match as module
        elif name in ("check_pipelined", "parse_all"):
            from ledger.verify import pipeline as module
        elif name in ("BrokenPromise", "ReceiptStatus", "check_receipt", "log_checkpoint", "receipt_status"):
            from ledger.verify import receipt_check as module
        elif name in (
            "Equivocation", "check_append_receipt", "keep_receipt", "receipt_key", "stored_receipts", "warn_once"
        ):
            from ledger.verify import receipt_store as module
        elif name in ("exit_code", "render_text", "report_json"):
            from ledger.verify import report as module
        elif name == "render_html":
            from ledger.verify import report_html as module
        elif name in ("CheckpointMemory", "Observation"):
            from ledger.verify import memory as module
        elif name == "LogServer":
            from ledger.verify import log_server as module
        elif name in ("TilesAudit", "audit_tiles", "tiles_proofs", "tiles_source"):
            from ledger.verify import tiled as module
        elif name in ("PreviousComparison", "compare_previous"):
            from ledger.verify import previous as module
        elif name in (
            "HEX64",
            "LogPin",
            "PinFile",
            "PinFileError",
            "check_origin",
            "load_pins",
            "pin_file_path",
            "read_pin_file",
            "render_pin_file",
        ):
            from ledger.verify import trust as module
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(module, name)
        globals()[name] = value  # the next lookup finds it without this function
        return value
