// Clip playback: a dialog that plays a library clip around a hit (GET /clips/{clip}/motion) in a 3D view.

import { describeError } from './api.js';
import { SkeletonView } from './view3d.js';

const AROUND = 1.5; // seconds each side of the hit
const SEGMENT_CONTEXT = 0.5; // seconds before and after a motion-search segment

export class ClipPlayer {
  constructor(dialog, api, skeleton) {
    this.dialog = dialog;
    this.api = api;
    this.skeleton = skeleton;
    this.title = dialog.querySelector('#player-title');
    this.toggle = dialog.querySelector('#player-toggle');
    this.seek = dialog.querySelector('#player-seek');
    this.time = dialog.querySelector('#player-time');
    this.viewElement = dialog.querySelector('#player-view');
    this.view = null;
    this.motion = null;
    this.playing = false;
    this.frame = 0;
    this.abort = null;
    dialog.querySelector('#player-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => this.stop());
    this.toggle.addEventListener('click', () => (this.playing ? this.pause() : this.play()));
    this.seek.addEventListener('input', () => { this.pause(); this.show(Number(this.seek.value)); });
  }

  // result: a pose result (metadata.time, metadata.frame) or a motion-search segment (start, end)
  async open(result) {
    const { clip, time } = result.metadata;
    const segment = time === undefined && result.start !== undefined;
    const hit = segment ? result.start : (time ?? 0);
    const [from, to] = segment ? [result.start - SEGMENT_CONTEXT, result.end + SEGMENT_CONTEXT]
      : [hit - AROUND, hit + AROUND];
    this.title.textContent = segment ? `${clip}, ${result.start.toFixed(1)}–${result.end.toFixed(1)} s`
      : `${clip} around ${hit.toFixed(1)} s`;
    this.time.textContent = 'loading…';
    this.dialog.showModal();
    if (!this.view) this.view = new SkeletonView(this.viewElement, this.skeleton);
    this.view.resize();
    this.abort?.abort();
    this.abort = new AbortController();
    try {
      this.motion = await this.api.clipMotion(clip, Math.max(0, from), to, this.abort.signal);
    } catch (err) {
      if (err.name === 'AbortError') return;
      this.time.textContent = describeError(err);
      return;
    }
    const hitFrame = segment ? result.metadata.first_frame : result.metadata.frame;
    this.hitFrame = Math.max(0, this.motion.frames.indexOf(hitFrame));
    this.seek.max = String(this.motion.pose3d.length - 1);
    this.view.framed = false;
    this.show(this.hitFrame);
    this.play();
  }

  show(i) {
    this.frame = i;
    this.seek.value = String(i);
    this.view.setPose(this.motion.pose3d[i]);
    const t = this.motion.start + (this.motion.frames[i] - this.motion.frames[0]) / this.motion.fps;
    this.time.textContent = `${t.toFixed(2)} s${i === this.hitFrame ? ' (the match)' : ''}`;
  }

  play() {
    if (!this.motion) return;
    this.playing = true;
    this.toggle.textContent = 'Pause';
    const period = 1000 / this.motion.fps;
    let last = performance.now();
    const step = (now) => {
      if (!this.playing) return;
      if (now - last >= period) {
        last = now;
        this.show((this.frame + 1) % this.motion.pose3d.length);
      }
      this.timer = requestAnimationFrame(step);
    };
    this.timer = requestAnimationFrame(step);
  }

  pause() {
    this.playing = false;
    this.toggle.textContent = 'Play';
    cancelAnimationFrame(this.timer);
  }

  stop() {
    this.pause();
    this.abort?.abort();
  }
}
