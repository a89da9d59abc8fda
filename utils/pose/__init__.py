"""Video -> COCO-WholeBody pose files: keypoint mapping, extractor backends, video reading, batch runner.

`python -m utils.pose_extraction` is the command-line front end; docs/video_to_text.md describes it.
"""
