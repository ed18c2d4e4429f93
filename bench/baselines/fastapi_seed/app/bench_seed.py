"""Bench only: creates the users table and SEED_USERS accounts sharing one bcrypt hash of SEED_PASSWORD.

The lab creates its tables with Alembic; the bench has no migration step, so it uses create_all.
"""
import os

from .database import Base, SessionLocal, engine
from .models import User
from .utils import get_password_hash


def main() -> None:
    count = int(os.environ["SEED_USERS"])
    hashed = get_password_hash(os.environ["SEED_PASSWORD"])
    Base.metadata.create_all(bind=engine)
    db = SessionLocal()
    try:
        db.add_all(
            User(email=f"bench-user-{i:06d}@example.com", hashed_password=hashed, is_active=True)
            for i in range(1, count + 1)
        )
        db.commit()
    finally:
        db.close()


if __name__ == "__main__":
    main()
