"""CSL-News-style data curation: broadcast video + timed text -> cropped sign clips + CSL-News labels.

Modules (see docs/curation.md):
  timed_text  subtitles (SRT, WebVTT, JSON word timestamps) and FunASR behind one interface
  segment     split timed text at punctuation into clips (duration rules, text normalisation)
  crop        signer-region crop boxes, presets, cutting clips to files
  pipeline    the resumable, parallel CLI that ties them together and writes the manifest and labels
  stats       corpus statistics and histograms (paper Figure 2)
  demo        a small synthetic broadcast to try the pipeline without data
"""


class CurationError(ValueError):
    """Bad curation input or a failed step; the message names the file (and cue/line) and the problem."""
