// The photo with the people the service found drawn over it (box, 2D skeleton, number); a click on a person, or
// their button, chooses whom to search with. The photo stays in this tab: shown from a blob: URL, sent only to
// the service, released when another replaces it.

const MAX_WIDTH = 900; // canvas pixels

export class PhotoOverlay {
  constructor(canvas, buttons, skeleton, onSelect) {
    this.canvas = canvas;
    this.buttons = buttons;
    this.skeleton = skeleton;
    this.onSelect = onSelect;
    this.image = null;
    this.url = null;
    this.people = [];
    this.selected = 0;
    canvas.addEventListener('click', (e) => this.click(e));
  }

  async show(file) {
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = URL.createObjectURL(file);
    const image = new Image();
    image.src = this.url;
    await image.decode();
    this.image = image;
    this.scale = Math.min(1, MAX_WIDTH / image.naturalWidth);
    this.canvas.width = Math.round(image.naturalWidth * this.scale);
    this.canvas.height = Math.round(image.naturalHeight * this.scale);
    this.setPeople([]);
  }

  // people: the service's Person list (box and keypoints in the upright image's pixels)
  setPeople(people, selected = 0) {
    this.people = people;
    this.selected = selected;
    this.buttons.replaceChildren();
    people.forEach((person, i) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'person';
      button.textContent = `Person ${i + 1}`;
      button.setAttribute('aria-pressed', String(i === selected));
      button.addEventListener('click', () => this.choose(i));
      this.buttons.append(button);
    });
    this.draw();
  }

  choose(i) {
    if (i === this.selected || i >= this.people.length) return;
    this.selected = i;
    [...this.buttons.children].forEach((b, j) => b.setAttribute('aria-pressed', String(j === i)));
    this.draw();
    this.onSelect(i);
  }

  click(e) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * (this.canvas.width / rect.width)) / this.scale;
    const y = ((e.clientY - rect.top) * (this.canvas.height / rect.height)) / this.scale;
    // the smallest box under the pointer: a person standing in front of another
    let best = -1;
    let bestArea = Infinity;
    this.people.forEach(({ box: [x0, y0, x1, y1] }, i) => {
      const area = (x1 - x0) * (y1 - y0);
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1 && area < bestArea) { best = i; bestArea = area; }
    });
    if (best >= 0) this.choose(best);
  }

  draw() {
    if (!this.image) return;
    const ctx = this.canvas.getContext('2d');
    const s = this.scale;
    ctx.drawImage(this.image, 0, 0, this.canvas.width, this.canvas.height);
    this.people.forEach((person, i) => {
      const chosen = i === this.selected;
      const [x0, y0, x1, y1] = person.box.map((v) => v * s);
      ctx.lineWidth = chosen ? 3 : 1.5;
      ctx.strokeStyle = chosen ? '#facc15' : 'rgba(255, 255, 255, 0.85)';
      ctx.setLineDash(chosen ? [] : [6, 4]);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.setLineDash([]);
      ctx.fillStyle = chosen ? '#facc15' : 'rgba(255, 255, 255, 0.85)';
      ctx.fillRect(x0, Math.max(0, y0 - 20), 24, 20);
      ctx.fillStyle = '#111827';
      ctx.font = 'bold 14px sans-serif';
      ctx.fillText(String(i + 1), x0 + 7, Math.max(0, y0 - 20) + 15);
      const kp = person.keypoints.map(([x, y]) => [x * s, y * s]);
      ctx.lineWidth = chosen ? 4 : 2.5;
      ctx.lineCap = 'round';
      for (const [parent, child] of this.skeleton.bones) {
        if (person.visibility[child] < 0.2 || person.visibility[parent] < 0.2) ctx.globalAlpha = 0.4;
        ctx.strokeStyle = this.skeleton.colour(child);
        ctx.beginPath();
        ctx.moveTo(...kp[parent]);
        ctx.lineTo(...kp[child]);
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
    });
  }
}
