// The page: photo and skeleton search against this service, results as turnable 3D cards, clips played around
// each hit. Nothing is stored: the photo, the API key and the results live in this tab's memory only.

import { Api, describeError } from './api.js';
import { renderCards } from './cards.js';
import { SkeletonEditor } from './editor.js';
import { PhotoOverlay } from './photo.js';
import { ClipPlayer } from './player.js';
import { cameraToYUp, H36M17, Skeleton } from './skeleton.js';
import { SkeletonView, webglAvailable } from './view3d.js';

const EDIT_DEBOUNCE_MS = 150;
const MAX_K = 100;
const TABS = ['photo', 'skeleton', 'motion'];
const $ = (id) => document.getElementById(id);

const api = new Api();
const state = {
  mode: 'photo',
  skeleton: H36M17,
  photo: null, // {file, people, lifted}
  video: null, // the last video searched
  selected: 0,
  searches: 0,
  abort: null,
};
let overlay;
let editor;
let queryView = null;
let player;

// ---------------------------------------------------------------- status, errors, results

function showError(err) {
  const box = $('error');
  box.textContent = describeError(err);
  box.hidden = false;
  $('cards').replaceChildren(); // no stale results under an error
  $('licence').textContent = '';
  $('status').textContent = 'No results.';
  $('results').dataset.state = 'error';
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setModelVersion(version) {
  if (version) $('model-version').textContent = version;
}

function yUp(pose, frame) { return frame === 'camera' ? cameraToYUp(pose) : pose; }

// a segment's middle frame, for its card (world Y-up)
async function segmentPose(segment) {
  const middle = (segment.start + segment.end) / 2;
  const motion = await api.clipMotion(segment.clip, middle, segment.end);
  return motion.pose3d[0];
}

function showResults(results, answer, started) {
  const poses = results.map((r) => ({ ...r, pose3d: r.pose3d && yUp(r.pose3d, answer.pose_frame) }));
  const segments = answer.sequence !== undefined;
  renderCards($('cards'), state.skeleton, poses, (result) => player.open(result), segments ? segmentPose : null);
  const elapsed = performance.now() - started;
  const section = $('results');
  state.searches += 1;
  section.dataset.state = 'done';
  section.dataset.searches = String(state.searches);
  section.dataset.lastSearchMs = elapsed.toFixed(1);
  const what = segments ? 'library motions' : 'library poses';
  $('status').textContent = results.length
    ? `${results.length} ${what}, best first (${Math.round(elapsed)} ms).`
    : 'Nothing in the library matches these filters.';
  $('licence').textContent = answer.licence || '';
  setModelVersion(answer.model_version);
}

function showQueryPose(pose, frame, caption) {
  if (!queryView) return;
  queryView.setPose(yUp(pose, frame), { frame: true });
  $('query-caption').textContent = caption;
}

// ---------------------------------------------------------------- search options

function searchOptions() {
  const k = Math.min(MAX_K, Math.max(1, Math.round(Number($('k').value) || 12)));
  $('k').value = String(k);
  const include = {};
  for (const select of $('label-filters').querySelectorAll('select')) {
    const chosen = [...select.selectedOptions].map((o) => o.value);
    if (chosen.length) include[select.name] = chosen;
  }
  return { k, group_by_clip: $('group-by-clip').checked,
    filters: Object.keys(include).length ? { include } : null };
}

function buildFilters(labels) {
  const holder = $('label-filters');
  holder.replaceChildren();
  for (const [field, values] of Object.entries(labels || {})) {
    if (values.length < 2) continue;
    const label = document.createElement('label');
    label.append(`${field} `);
    const select = document.createElement('select');
    select.name = field;
    select.multiple = true;
    select.size = Math.min(4, values.length);
    values.forEach((v) => select.append(new Option(v, v)));
    select.addEventListener('change', () => rerun());
    label.append(select);
    holder.append(label);
  }
}

// a new search cancels the one running; answers to older searches are dropped
function begin() {
  state.abort?.abort();
  state.abort = new AbortController();
  clearError();
  $('results').dataset.state = 'searching';
  return state.abort.signal;
}

function failed(err) {
  if (err.name !== 'AbortError') showError(err);
}

// ---------------------------------------------------------------- photo search

async function searchPhoto(file, { lift = true } = {}) {
  const started = performance.now();
  const signal = begin();
  $('status').textContent = 'Finding people and searching…';
  if (lift) {
    state.photo = { file, people: [], lifted: null };
    state.selected = 0;
    $('photo-stage').hidden = false;
    queryView?.clear();
    await overlay.show(file);
    api.liftImage(file, signal).then((answer) => {
      if (state.photo?.file !== file) return;
      state.photo.lifted = answer.people;
      showLifted();
    }).catch(() => {}); // the search below reports the same failure in words
  }
  try {
    const answer = await api.retrieveImage(file, searchOptions(), signal);
    if (state.photo?.file !== file) return;
    state.photo.people = answer.people || [];
    state.photo.answer = answer;
    state.selected = Math.min(state.selected, Math.max(0, state.photo.people.length - 1));
    overlay.setPeople(state.photo.people, state.selected);
    showResults(state.photo.people[state.selected]?.results || answer.results, answer, started);
  } catch (err) {
    failed(err);
  }
}

function showLifted() {
  const lifted = state.photo?.lifted?.[state.selected];
  if (lifted) showQueryPose(lifted.pose3d, 'camera', `Person ${state.selected + 1} in 3D: drag to turn.`);
}

function selectPerson(i) {
  state.selected = i;
  const { answer, people } = state.photo;
  showResults(people[i].results, answer, performance.now());
  showLifted();
}

// ---------------------------------------------------------------- skeleton search

let editTimer = null;

function scheduleSkeletonSearch() {
  clearTimeout(editTimer);
  editTimer = setTimeout(searchSkeleton, EDIT_DEBOUNCE_MS);
}

async function searchSkeleton() {
  const started = performance.now();
  const signal = begin();
  const input = { keypoints: editor.keypoints.map(([x, y]) => [x, y]), layout: 'h36m17',
    image_size: editor.imageSize };
  api.lift(input, signal).then((answer) => showQueryPose(answer.pose3d, answer.frame, 'Your skeleton in 3D: drag '
    + 'to turn.')).catch(() => {});
  try {
    const answer = await api.retrieve({ modality: 'pose2d', ...input }, searchOptions(), signal);
    showResults(answer.results, answer, started);
  } catch (err) {
    failed(err);
  }
}

// ---------------------------------------------------------------- motion search (a video)

async function searchVideo(file) {
  const started = performance.now();
  const signal = begin();
  state.video = file;
  queryView?.clear();
  $('query-caption').textContent = 'Motion search: each result is a stretch of a library clip; play it.';
  $('status').textContent = 'Tracking the person and searching the library…';
  try {
    const answer = await api.retrieveVideo(file, searchOptions(), signal);
    if (state.video === file) showResults(answer.results, answer, started);
  } catch (err) {
    failed(err);
  }
}

// the current query again, with new options
function rerun() {
  if (state.mode === 'skeleton') scheduleSkeletonSearch();
  else if (state.mode === 'motion') { if (state.video) searchVideo(state.video); }
  else if (state.photo) searchPhoto(state.photo.file, { lift: false });
}

// ---------------------------------------------------------------- tabs, upload, set-up

function selectTab(mode) {
  state.mode = mode;
  for (const name of TABS) {
    const tab = $(`tab-${name}`);
    const active = name === mode;
    tab.setAttribute('aria-selected', String(active));
    tab.tabIndex = active ? 0 : -1;
    $(`panel-${name}`).hidden = !active;
  }
  if (mode === 'skeleton') scheduleSkeletonSearch();
  else if (mode === 'motion') { if (state.video) searchVideo(state.video); }
  else if (state.photo) {
    searchPhoto(state.photo.file, { lift: false });
    showLifted();
  }
}

function setUpTabs() {
  const tabs = TABS;
  tabs.forEach((name, i) => {
    const tab = $(`tab-${name}`);
    tab.addEventListener('click', () => selectTab(name));
    tab.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      selectTab(next);
      $(`tab-${next}`).focus();
    });
  });
}

// a file input inside a drop zone: picking or dropping a file of `kind` ('image' or 'video') calls search(file)
function setUpUpload(input, drop, kind, search) {
  input.addEventListener('change', () => {
    if (input.files.length) search(input.files[0]);
    input.value = ''; // the same file again is a new search
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith(`${kind}/`)) || e.dataTransfer.files[0];
    if (file) search(file);
  });
}

async function loadInfo() {
  try {
    const info = await api.info();
    setModelVersion(info.model_version);
    if (info.joints?.names && info.joints?.parents) state.skeleton = new Skeleton(info.joints.names, info.joints.parents);
    buildFilters(info.labels);
    if (info.limits?.k) $('k').max = String(Math.min(MAX_K, info.limits.k[1]));
    if (info.limits?.max_video_seconds) {
      $('video-limits').textContent = `${info.limits.video_formats.join(', ')}; up to `
        + `${info.limits.max_video_seconds} s`;
    }
    return true;
  } catch (err) {
    showError(err);
    return false;
  }
}

async function start() {
  await loadInfo();
  overlay = new PhotoOverlay($('photo-canvas'), $('people'), state.skeleton, selectPerson);
  editor = new SkeletonEditor($('editor-canvas'), $('joint-select'), $('presets'), state.skeleton,
    scheduleSkeletonSearch);
  if (webglAvailable()) queryView = new SkeletonView($('query-view'), state.skeleton);
  else $('query-caption').textContent = 'This browser has no WebGL: the 3D view is off (the results still work).';
  player = new ClipPlayer($('player'), api, state.skeleton);
  setUpTabs();
  setUpUpload($('photo-input'), $('drop'), 'image', searchPhoto);
  setUpUpload($('video-input'), $('drop-video'), 'video', searchVideo);
  $('filters').addEventListener('submit', (e) => { e.preventDefault(); rerun(); });
  $('k').addEventListener('change', rerun);
  $('group-by-clip').addEventListener('change', rerun);
  $('api-key').addEventListener('change', async () => {
    api.key = $('api-key').value.trim();
    if (await loadInfo()) { clearError(); rerun(); }
  });
  document.body.dataset.ready = 'true';
}

start();
