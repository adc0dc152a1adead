import sys

from lecturekit.course.cli import main

sys.exit(main())
