"""customer journeys: person.email_hash and the analyst views v_customer_journey and
v_conversation_emotion

Revision ID: 0010
Revises: 0009

`person.email_hash` (HMAC-SHA256 of the lower-cased address, journey.identity) lets one
customer's conversations in two helpdesks form one journey without storing the address;
`identity_salt` holds the HMAC key when CJM_EMAIL_HASH_KEY is not set;
`conversation.organization_id` (the requester's organisation) allows journeys by organisation. The
views come from `journey.journey_views` (not `journey.views`, which migration 0003 calls: a view
added there would be created before the columns it reads exist).
"""

import sqlalchemy as sa
from alembic import op

from journey.journey_views import create_journey_views, drop_journey_views

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_salt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organization_id", sa.String(), nullable=True))
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(), nullable=True))
        batch_op.create_index("ix_person_email_hash", ["email_hash"], unique=False)
    create_journey_views(op.get_bind())


def downgrade() -> None:
    drop_journey_views(op.get_bind())
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_index("ix_person_email_hash")
        batch_op.drop_column("email_hash")
    op.drop_table("identity_salt")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("organization_id")
