"""`python -m sonicwire.server` runs the gRPC server (same as `sonicwire serve`)."""

import sys

from sonicwire.server.cli import main

# Guarded: `--workers` starts workers with multiprocessing's spawn, which must not run this.
if __name__ == "__main__":
    sys.exit(main())
