"""Prepare existing users for Entra sign-in (dry run unless --execute)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.migrate_users_to_entra import INACTIVE_POLICY, Batch, NotReady, Report, run_exclusively
from core.db.locks import LockBusy

MAX_BATCH_SIZE = 1_000_000


class Command(BaseCommand):
    help = (
        "After `migrate`: create default preferences for users without them, flag every user not yet linked "
        "to Entra as requiring Entra migration, and delete password-era sign-in data (refresh tokens, sessions "
        "of users not signed in with Entra). Dry run by default: prints what --execute would change and changes "
        "nothing. Batched by primary key, one transaction per batch; safe to re-run after an interruption."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--execute", action="store_true", help="Apply the changes (default: dry run).")
        parser.add_argument("--batch-size", type=int, default=10_000, help="Users per batch (default 10000).")
        parser.add_argument("--report", type=Path, help="Also write the report as JSON to this path.")
        parser.add_argument(
            "--max-listed", type=int, default=100, help="At most this many users listed per problem kind."
        )

    def handle(self, *args, execute: bool, batch_size: int, report: Path | None, max_listed: int, **options):
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}")
        if max_listed < 0:
            raise CommandError("--max-listed must be 0 or more")
        if report is not None:
            self._check_writable(report)

        progress = self._progress()
        try:
            result = run_exclusively(
                execute=execute, batch_size=batch_size, max_listed=max_listed, on_batch=progress.update
            )
        except LockBusy as exc:
            raise CommandError(f"Not running: {exc}. Nothing was changed.") from exc
        except NotReady as exc:
            raise CommandError(f"Not running: {exc}. Nothing was changed.") from exc
        finally:
            progress.close()

        self._summary(result)
        if report is not None:
            report.write_text(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
            self.stdout.write(f"Report written to {report}")

    def _check_writable(self, path: Path) -> None:
        """Fail before changing anything if the report cannot be written."""
        existed = path.exists()
        try:
            with path.open("a"):
                pass
        except OSError as exc:
            raise CommandError(f"--report {path}: cannot write there ({exc.strerror}). Nothing was changed.") from exc
        if not existed:
            path.unlink()

    def _progress(self):
        if sys.stdout.isatty() and self.stdout._out is sys.stdout:
            return _BarProgress()
        return _LineProgress(self.stdout)

    def _summary(self, r: Report) -> None:
        w = self.stdout.write
        verb = "Would" if r.mode == "dry-run" else "Did"
        title = "DRY RUN: nothing was changed" if r.mode == "dry-run" else "EXECUTED"
        w(self.style.MIGRATE_HEADING(f"migrate_users_to_entra: {title} ({r.database}, {r.users_total} users)"))
        w(f"  {verb} create preferences for      {r.preferences_created:>10} user(s)")
        w(f"  {verb} flag as requiring Entra     {r.users_flagged:>10} user(s)")
        w(f"  {verb} delete legacy refresh tokens {r.refresh_tokens_deleted:>9}")
        w(f"  {verb} delete sign-in sessions     {r.sessions_deleted:>10} (users not signed in with Entra)")
        w(f"  Left as they are: {r.users_already_linked} linked to Entra, {r.users_already_flagged} already flagged")
        if r.sample_to_flag and r.mode == "dry-run":
            sample = ", ".join(f"{u['email']} (#{u['id']})" for u in r.sample_to_flag[:5])
            w(f"  Sample to flag: {sample}")
        w(self.style.MIGRATE_HEADING("Needs an operator (reported, not changed):"))
        w(f"  Email collisions (case-insensitive): {r.email_collision_users} user(s)")
        for group in r.email_collisions[:10]:
            w(f"    {', '.join(u['email'] + ' (#' + str(u['id']) + ')' for u in group['users'])}")
        w(f"  Without a usable email: {r.unusable_email_users} user(s)")
        for user in r.unusable_emails[:10]:
            w(f"    #{user['id']} {user['email']!r}")
        w(f"  Inactive: {r.inactive_users_total} user(s). {INACTIVE_POLICY}")
        timing = ", ".join(f"{k} {v:.2f}s" for k, v in r.timings_s.items())
        w(f"  Batches: {r.batches} of up to {r.batch_size} users. Timings: {timing}")
        if r.mode == "dry-run":
            w(self.style.WARNING("Dry run. Run again with --execute to apply."))
        elif r.changes == 0:
            w(self.style.SUCCESS("Nothing to do: every user is already prepared for Entra sign-in."))
        else:
            w(self.style.SUCCESS(f"Done: {r.changes} change(s) applied."))


class _LineProgress:
    """Plain progress lines for logs and CI: about every tenth of the run."""

    def __init__(self, out) -> None:
        self.out = out

    def update(self, batch: Batch) -> None:
        step = max(1, batch.total // 10)
        if batch.number == 1 or batch.number % step == 0 or batch.number == batch.total:
            self.out.write(
                f"batch {batch.number}/{batch.total}: users {batch.first_id}-{batch.last_id} "
                f"({100 * batch.number // batch.total}%)"
            )
            self.out.flush()

    def close(self) -> None:
        pass


class _BarProgress:
    """A progress bar on a terminal."""

    def __init__(self) -> None:
        self.bar = None

    def update(self, batch: Batch) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=batch.total, unit="batch", file=sys.stderr, disable=os.environ.get("CI") == "true")
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
