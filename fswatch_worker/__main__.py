import sys

from fswatch_worker.runtime import main

sys.exit(main())
