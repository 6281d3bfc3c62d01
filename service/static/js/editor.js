// The 2D skeleton editor: a canvas whose joints the user drags (mouse, touch, pen) or moves with the arrow keys
// after picking one; onChange(keypoints) fires after every change. Keypoints are canvas pixels, h36m17 order.

import { presetPixels, PRESETS } from './skeleton.js';

const GRAB_RADIUS = 16; // canvas pixels
const STEP = 4;
const BIG_STEP = 16;

export class SkeletonEditor {
  constructor(canvas, select, presetGroup, skeleton, onChange) {
    this.canvas = canvas;
    this.select = select;
    this.skeleton = skeleton;
    this.onChange = onChange;
    this.selected = 0;
    this.dragging = null;
    this.keypoints = this.preset('Stand');

    skeleton.names.forEach((name, j) => select.append(new Option(name.replace(/_/g, ' '), String(j))));
    select.addEventListener('change', () => { this.selected = Number(select.value); this.draw(); });
    for (const name of Object.keys(PRESETS)) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = name;
      button.dataset.preset = name;
      button.addEventListener('click', () => this.setKeypoints(this.preset(name)));
      presetGroup.append(button);
    }
    canvas.addEventListener('pointerdown', (e) => this.grab(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', () => { this.dragging = null; });
    canvas.addEventListener('pointercancel', () => { this.dragging = null; });
    canvas.addEventListener('keydown', (e) => this.key(e));
    this.draw();
  }

  get imageSize() { return [this.canvas.width, this.canvas.height]; }

  preset(name) { return presetPixels(name, this.canvas.width / 2, this.canvas.height * 0.45); }

  setKeypoints(keypoints) {
    this.keypoints = keypoints.map(([x, y]) => [x, y]);
    this.draw();
    this.onChange(this.keypoints);
  }

  // a pointer event -> canvas pixels (the canvas may be scaled by CSS)
  point(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) * (this.canvas.width / rect.width),
      (e.clientY - rect.top) * (this.canvas.height / rect.height)];
  }

  grab(e) {
    const [x, y] = this.point(e);
    let best = -1;
    let bestDistance = GRAB_RADIUS * (this.canvas.width / this.canvas.getBoundingClientRect().width);
    this.keypoints.forEach(([jx, jy], j) => {
      const d = Math.hypot(jx - x, jy - y);
      if (d < bestDistance) { best = j; bestDistance = d; }
    });
    if (best < 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.dragging = best;
    this.selected = best;
    this.select.value = String(best);
    this.draw();
  }

  move(e) {
    if (this.dragging === null) return;
    const [x, y] = this.point(e);
    this.moveJoint(this.dragging, x, y);
  }

  key(e) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const step = e.shiftKey ? BIG_STEP : STEP;
    const [x, y] = this.keypoints[this.selected];
    this.moveJoint(this.selected, x + moves[e.key][0] * step, y + moves[e.key][1] * step);
  }

  moveJoint(joint, x, y) {
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    this.keypoints[joint] = [clamp(x, this.canvas.width), clamp(y, this.canvas.height)];
    this.draw();
    this.onChange(this.keypoints);
  }

  draw() {
    const ctx = this.canvas.getContext('2d');
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.lineCap = 'round';
    ctx.lineWidth = 6;
    for (const [parent, child] of this.skeleton.bones) {
      ctx.strokeStyle = this.skeleton.colour(child);
      ctx.beginPath();
      ctx.moveTo(...this.keypoints[parent]);
      ctx.lineTo(...this.keypoints[child]);
      ctx.stroke();
    }
    this.keypoints.forEach(([x, y], j) => {
      ctx.fillStyle = j === this.selected ? '#111827' : '#ffffff';
      ctx.strokeStyle = this.skeleton.colour(j);
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(x, y, j === this.selected ? 8 : 6, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    });
  }
}
