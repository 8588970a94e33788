import sys

from memorygan.cli import main

sys.exit(main())
