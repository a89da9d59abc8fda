"""`python -m pose_extraction`: see pose_extraction/extract.py."""
import sys

from pose_extraction.extract import main

if __name__ == "__main__":
    sys.exit(main())
