"""webhook credentials: one `credential` row per (source, kind) instead of per source

Revision ID: 0009
Revises: 0008

`cjm setup-webhook` stores the Zendesk webhook signing secret encrypted beside the source's
rotated OAuth pair, with the same Fernet key (`credential_key_env`). The table was unique on
`source_name` alone (one OAuth row per source); it becomes unique on (source_name, kind), so a
source holds an "oauth" row and a "webhook_secret" row. Existing rows are all "oauth".
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_index("ix_credential_source_name")
        batch_op.create_index("ix_credential_source_name", ["source_name"], unique=False)
        batch_op.create_unique_constraint("uq_credential_source_kind", ["source_name", "kind"])


def downgrade() -> None:
    op.execute("DELETE FROM credential WHERE kind <> 'oauth'")
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_constraint("uq_credential_source_kind", type_="unique")
        batch_op.drop_index("ix_credential_source_name")
        batch_op.create_index("ix_credential_source_name", ["source_name"], unique=True)
