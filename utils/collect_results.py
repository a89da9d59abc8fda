"""Command alias: `python -m utils.collect_results` (the command of earlier releases) runs `python -m evaluation.collect_results`.

Nothing imports this module; the code lives in evaluation/collect_results.py.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("evaluation.collect_results", run_name="__main__", alter_sys=True)
