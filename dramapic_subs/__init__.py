"""dramapic-subs: subtitle what a video's soundtrack holds.

Speech / song / music / noise / nature and female / male probabilities per
window, written as SRT/VTT/JSON captions and optionally burned into the video.
"""
__version__ = "0.1.0"
