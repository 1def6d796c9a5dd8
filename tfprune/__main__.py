import sys

from tfprune.cli import main

sys.exit(main())
