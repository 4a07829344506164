from alembic_preflight.cli import main

raise SystemExit(main())
