"""`python -m sonicwire.server` runs the gRPC server (same as `sonicwire serve`)."""

import sys

from sonicwire.server.cli import main

sys.exit(main())
