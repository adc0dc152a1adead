import sys

from lecturekit.cli import main

sys.exit(main())
