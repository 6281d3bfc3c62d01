// Result cards: each library pose drawn as a small 3D skeleton (a 2D canvas, orthographic, turned by dragging or
// the arrow keys: one WebGL context per card would exhaust the browser's), with score, clip, time and labels.

const CARD_SIZE = 150; // canvas pixels (CSS scales it)
const TURN_STEP = Math.PI / 12;

// pose: (17, 3) mm, Y up, seen from azimuth (radians about Y) -> canvas drawing
export function drawPose(canvas, skeleton, pose, azimuth) {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const c = Math.cos(azimuth);
  const s = Math.sin(azimuth);
  const projected = pose.map(([x, y, z]) => [x * c - z * s, -y, x * s + z * c]); // [right, down, towards viewer]
  const xs = projected.map((p) => p[0]);
  const ys = projected.map((p) => p[1]);
  const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys), 1);
  const scale = (0.84 * Math.min(width, height)) / span;
  const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
  const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
  const at = (p) => [width / 2 + (p[0] - cx) * scale, height / 2 + (p[1] - cy) * scale];
  // far bones first
  const bones = [...skeleton.bones].sort((a, b) => (projected[a[0]][2] + projected[a[1]][2])
    - (projected[b[0]][2] + projected[b[1]][2]));
  ctx.lineCap = 'round';
  ctx.lineWidth = Math.max(2, width / 40);
  for (const [parent, child] of bones) {
    const [x0, y0] = at(projected[parent]);
    const [x1, y1] = at(projected[child]);
    ctx.strokeStyle = skeleton.colour(child);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
  }
  const [hx, hy] = at(projected[skeleton.names.indexOf('head_top')]);
  ctx.fillStyle = skeleton.colour(0);
  ctx.beginPath();
  ctx.arc(hx, hy, ctx.lineWidth * 1.6, 0, 2 * Math.PI);
  ctx.fill();
}

function turnable(canvas, redraw) {
  let azimuth = 0;
  let dragging = null;
  canvas.addEventListener('pointerdown', (e) => {
    dragging = { x: e.clientX, azimuth };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!dragging) return;
    azimuth = dragging.azimuth + (e.clientX - dragging.x) * 0.02;
    redraw(azimuth);
  });
  const stop = () => { dragging = null; };
  canvas.addEventListener('pointerup', stop);
  canvas.addEventListener('pointercancel', stop);
  canvas.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    azimuth += e.key === 'ArrowLeft' ? -TURN_STEP : TURN_STEP;
    redraw(azimuth);
  });
  redraw(azimuth);
}

function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return `${seconds.toFixed(1)} s`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// results: /retrieve results with pose3d already Y up, or motion-search segments (no pose3d: loadPose(result)
// resolves to the pose to draw); onPlay(result) opens the clip around the hit
export function renderCards(list, skeleton, results, onPlay, loadPose = null) {
  list.replaceChildren();
  results.forEach((result, rank) => {
    const meta = result.metadata;
    const card = element('li', 'card');
    card.dataset.score = String(result.score);
    card.dataset.clip = meta.clip;

    const canvas = element('canvas', 'card-pose');
    canvas.width = CARD_SIZE;
    canvas.height = CARD_SIZE;
    canvas.tabIndex = 0;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Result ${rank + 1}: ${meta.labels.content || 'pose'} from ${meta.clip}; `
      + 'drag or use the arrow keys to turn it');
    if (result.pose3d) turnable(canvas, (azimuth) => drawPose(canvas, skeleton, result.pose3d, azimuth));
    else if (loadPose) {
      loadPose(result).then((pose) => {
        if (pose) turnable(canvas, (azimuth) => drawPose(canvas, skeleton, pose, azimuth));
      }).catch(() => {});
    }
    card.append(canvas);

    const body = element('div', 'card-body');
    const score = element('p', 'card-score');
    score.append(element('span', 'rank', `#${rank + 1}`), ' ',
      element('span', 'score', `score ${result.score.toFixed(3)}`));
    if (result.confidence) {
      const err = element('span', 'confidence', ` ≈${Math.round(result.confidence.expected_error_mm)} mm`);
      err.title = 'expected 3D error of this match (PA-MPJPE)';
      score.append(err);
    }
    body.append(score);
    body.append(element('p', 'card-clip', meta.clip));
    let when = `at ${formatTime(meta.time)}, frame ${meta.frame}`;
    if (result.start !== undefined && result.start !== null) {
      when = `${formatTime(result.start)}–${formatTime(result.end)}`;
      if (meta.time !== undefined) when += ` (best ${formatTime(meta.time)})`;
    }
    body.append(element('p', 'card-time', when));
    const labels = element('p', 'card-labels');
    for (const [field, value] of Object.entries(meta.labels)) {
      const tag = element('span', 'tag', value);
      tag.title = field;
      labels.append(tag);
    }
    body.append(labels);
    const play = element('button', 'play', 'Play clip');
    play.type = 'button';
    play.setAttribute('aria-label', `Play ${meta.clip} around ${formatTime(meta.time ?? result.start)}`);
    play.addEventListener('click', () => onPlay(result));
    body.append(play);
    card.append(body);
    list.append(card);
  });
}
