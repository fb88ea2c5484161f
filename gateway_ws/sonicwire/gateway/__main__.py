"""``python -m sonicwire.gateway`` runs the gateway (same as ``sonicwire gateway``)."""

import sys

from sonicwire.gateway.cli import main

sys.exit(main())
