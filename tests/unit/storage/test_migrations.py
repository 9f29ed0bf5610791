"""A database migrated before a migration's comment was reworded still counts that migration as applied."""

from __future__ import annotations

import hashlib

from sensorpipe.storage.migrate import load_migrations


def test_the_first_migration_as_first_released_differs_only_in_the_design_pages_name() -> None:
    first = load_migrations()[0]
    released = first.text.replace("docs/design.md", "DESIGN" + ".md", 1)
    assert released != first.text
    assert first.matches(hashlib.sha256(released.encode()).hexdigest())


def test_a_migration_edited_after_it_was_applied_does_not_match() -> None:
    for migration in load_migrations():
        assert migration.matches(migration.checksum)
        assert not migration.matches(hashlib.sha256((migration.text + "\n-- edited").encode()).hexdigest())
