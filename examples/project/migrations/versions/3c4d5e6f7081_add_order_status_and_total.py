"""add order status and total

Revision ID: 3c4d5e6f7081
Revises: 2b3c4d5e6f70
Create Date: 2026-10-20 11:47:31.008412

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "3c4d5e6f7081"
down_revision: Union[str, Sequence[str], None] = "2b3c4d5e6f70"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

order_status = sa.Enum("new", "paid", "shipped", name="order_status")


def upgrade() -> None:
    """Upgrade schema."""
    order_status.create(op.get_bind())
    op.add_column(
        "orders", sa.Column("status", order_status, server_default="new", nullable=False)
    )
    op.add_column(
        "orders", sa.Column("total_cents", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_column("orders", "total_cents")
    op.drop_column("orders", "status")
    order_status.drop(op.get_bind())
