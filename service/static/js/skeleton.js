// The h36m17 skeleton as data (names and parents come from /info), the page's colours, frame changes and the
// editor's preset poses.

export const COLOURS = { left: '#2f7de1', right: '#e8772e', centre: '#6b7280' };

export class Skeleton {
  constructor(names, parents) {
    this.names = names;
    this.parents = parents;
    this.bones = parents.map((p, j) => [p, j]).filter(([p]) => p >= 0); // (16,) [parent, child]
    this.sides = names.map((n) => (n.startsWith('l_') ? 'left' : n.startsWith('r_') ? 'right' : 'centre'));
  }

  colour(joint) { return COLOURS[this.sides[joint]]; }
}

// The canonical h36m17 order, used until /info answers.
export const H36M17 = new Skeleton(
  ['pelvis', 'r_hip', 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle', 'spine', 'thorax', 'neck_nose',
    'head_top', 'l_shoulder', 'l_elbow', 'l_wrist', 'r_shoulder', 'r_elbow', 'r_wrist'],
  [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15],
);

// camera frame (OpenCV: x right, y down, z forward) -> Y-up (x right, y up, z towards the viewer)
export function cameraToYUp(pose) { return pose.map(([x, y, z]) => [x, -y, -z]); }

// Preset 2D poses, h36m17 order, as offsets from the pelvis in units of about 1/1000 of a 1.7 m body's image,
// the person facing the camera (their right on the image's left).
const STAND = [[0, 0], [-25, 5], [-20, 140], [-18, 280], [25, -5], [20, 140], [18, 280], [2, -80], [5, -160],
  [7, -200], [8, -260], [50, -155], [80, -80], [95, -10], [-40, -155], [-70, -80], [-85, -10]];

function variant(changes) {
  const pose = STAND.map((p) => [...p]);
  for (const [joint, xy] of Object.entries(changes)) pose[joint] = xy;
  return pose;
}

export const PRESETS = {
  Stand: STAND,
  'T-pose': variant({ 12: [130, -155], 13: [210, -155], 15: [-120, -155], 16: [-200, -155] }),
  'Wave right': variant({ 15: [-105, -210], 16: [-115, -300] }),
  'Arms up': variant({ 12: [75, -235], 13: [85, -315], 15: [-65, -235], 16: [-75, -315] }),
  Walk: variant({ 2: [-45, 135], 3: [-85, 270], 5: [40, 140], 6: [70, 272], 12: [70, -85], 13: [60, -15],
    15: [-60, -85], 16: [-45, -20] }),
  Squat: variant({ 2: [-75, 60], 3: [-50, 160], 5: [75, 60], 6: [50, 160], 12: [100, -120], 13: [140, -100],
    15: [-95, -120], 16: [-135, -100] }),
};

export const PRESET_SCALE = 0.6; // preset units -> editor pixels

// A preset in editor pixels, pelvis at (cx, cy).
export function presetPixels(name, cx, cy) {
  return PRESETS[name].map(([x, y]) => [cx + x * PRESET_SCALE, cy + y * PRESET_SCALE]);
}
