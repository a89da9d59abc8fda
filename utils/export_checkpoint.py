"""Command alias: `python -m utils.export_checkpoint` (the command of earlier releases) runs `python -m models.export_checkpoint`.

Nothing imports this module; the code lives in models/export_checkpoint.py.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("models.export_checkpoint", run_name="__main__", alter_sys=True)
