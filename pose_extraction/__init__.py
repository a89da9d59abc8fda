"""Video -> COCO-WholeBody pose files: keypoint mapping, extractor backends, video reading, batch runner, and
skeleton rendering.

`python -m pose_extraction` (pose_extraction/extract.py) is the command-line front end; `python -m
pose_extraction.visualize` renders a pose file as a skeleton video; docs/video_to_text.md describes both.
"""
