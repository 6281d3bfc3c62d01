"""A motion-search query from the command line: 3 s of a library clip, seen by a camera 40 degrees round, played at
half speed, sent to /retrieve as 2D poses at 30 fps (the README's example).

    .venv/bin/python scripts/motion_query.py [URL] [CLIP]

URL defaults to http://localhost:8000, CLIP to dataset-2_walk-turn-left_normal_014 (in the default bundle). Only
the standard library and numpy.
"""

import json
import sys
import urllib.request

import numpy as np

URL = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
CLIP = sys.argv[2] if len(sys.argv) > 2 else "dataset-2_walk-turn-left_normal_014"

clip = json.load(urllib.request.urlopen(f"{URL}/clips/{CLIP}/motion?start=1&end=4"))
world = np.array(clip["pose3d"])  # (31, 17, 3) mm, world Y-up, at the clip's indexed 10 fps
times = np.arange(0, 3.0 / 0.5, 1 / 30)  # half speed: 6 s, sampled at 30 fps
position = times * 0.5 * clip["fps"]
lo = np.minimum(position.astype(int), len(world) - 2)
frac = (position - lo)[:, None, None]
poses = world[lo] * (1 - frac) + world[lo + 1] * frac
turn = np.radians(40)  # the camera: 40 degrees round the vertical, 5 m away, OpenCV axes (y down)
rotation = np.array([[np.cos(turn), 0, -np.sin(turn)], [0, -1, 0], [-np.sin(turn), 0, -np.cos(turn)]])
camera = poses @ rotation.T + [0, 0, 5000]
pixels = camera[..., :2] / camera[..., 2:] * 1145 + 500
lens = {"focal": [1145, 1145], "principal_point": [500, 500]}  # the camera's, so the fit can use its perspective
frames = [{"keypoints": p.round(1).tolist(), "image_size": [1000, 1000], "camera": lens} for p in pixels]
request = urllib.request.Request(f"{URL}/retrieve", json.dumps({"sequence": {"frames": frames, "fps": 30},
                                                                 "k": 3}).encode(),
                                 {"Content-Type": "application/json"})
print(json.dumps(json.load(urllib.request.urlopen(request)), separators=(",", ":")))
