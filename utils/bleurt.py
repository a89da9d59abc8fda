"""Command alias: `python -m utils.bleurt` (the command of earlier releases) runs `python -m evaluation.bleurt`.

Nothing imports this module; the code lives in evaluation/bleurt.py.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("evaluation.bleurt", run_name="__main__", alter_sys=True)
