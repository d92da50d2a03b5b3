import sys

from fswatch_supervisor.cli import main

sys.exit(main())
