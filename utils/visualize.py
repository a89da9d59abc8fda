"""Command alias: `python -m utils.visualize` (the command of earlier releases) runs `python -m pose_extraction.visualize`.

Nothing imports this module; the code lives in pose_extraction/visualize.py.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("pose_extraction.visualize", run_name="__main__", alter_sys=True)
