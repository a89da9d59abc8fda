"""Command alias: `python -m utils.pose_extraction` (the command of earlier releases) runs `python -m pose_extraction.extract`.

Nothing imports this module; the code lives in pose_extraction/extract.py.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("pose_extraction.extract", run_name="__main__", alter_sys=True)
