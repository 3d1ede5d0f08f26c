"""``python -m replicate_qwen_sdk``: the command line."""

import sys

from .cli import main

sys.exit(main())
