// A 3D skeleton in a three.js view the user turns with the mouse, touch or keyboard (OrbitControls).
// Poses are (17, 3) mm, Y up. Renders on demand (after a change), not every frame.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const BONE_RADIUS = 18; // mm
const JOINT_RADIUS = 26; // mm
const UP = new THREE.Vector3(0, 1, 0);

export function webglAvailable() {
  try {
    const canvas = document.createElement('canvas');
    return Boolean(canvas.getContext('webgl2') || canvas.getContext('webgl'));
  } catch {
    return false;
  }
}

export class SkeletonView {
  // container: an element sized by CSS; skeleton: a Skeleton (bones, sides, colours)
  constructor(container, skeleton) {
    this.container = container;
    this.skeleton = skeleton;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0xf4f6f8);
    this.renderer.domElement.tabIndex = 0;
    this.renderer.domElement.setAttribute('aria-label', 'Arrow keys turn the skeleton');
    container.appendChild(this.renderer.domElement);

    this.scene = new THREE.Scene();
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x8899aa, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.4);
    sun.position.set(1, 2, 3);
    this.scene.add(sun);
    this.grid = new THREE.GridHelper(3000, 12, 0xb8c0cc, 0xdde2e8);
    this.scene.add(this.grid);

    this.camera = new THREE.PerspectiveCamera(35, 1, 10, 50000);
    this.camera.position.set(0, 0, 4200);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = false;
    this.controls.listenToKeyEvents(this.renderer.domElement);
    this.controls.addEventListener('change', () => this.render());

    this.materials = {};
    for (const side of ['left', 'right', 'centre']) {
      const colour = new THREE.Color(skeleton.colour(skeleton.sides.indexOf(side)));
      this.materials[side] = new THREE.MeshLambertMaterial({ color: colour });
    }
    const boneGeometry = new THREE.CylinderGeometry(BONE_RADIUS, BONE_RADIUS, 1, 10); // unit height, scaled
    const jointGeometry = new THREE.SphereGeometry(JOINT_RADIUS, 12, 8);
    this.body = new THREE.Group();
    this.bones = skeleton.bones.map(([, child]) => {
      const mesh = new THREE.Mesh(boneGeometry, this.materials[skeleton.sides[child]]);
      this.body.add(mesh);
      return mesh;
    });
    this.joints = skeleton.names.map((_, j) => {
      const mesh = new THREE.Mesh(jointGeometry, this.materials[skeleton.sides[j]]);
      this.body.add(mesh);
      return mesh;
    });
    this.body.visible = false;
    this.scene.add(this.body);

    this.framed = false;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.resize();
  }

  resize() {
    const width = Math.max(1, this.container.clientWidth);
    const height = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  // pose: (17, 3) mm, Y up; frame: aim the camera at it (the first pose, or when asked)
  setPose(pose, { frame = !this.framed } = {}) {
    const points = pose.map(([x, y, z]) => new THREE.Vector3(x, y, z));
    this.skeleton.bones.forEach(([parent, child], b) => {
      const a = points[parent];
      const d = new THREE.Vector3().subVectors(points[child], a);
      const length = d.length();
      const mesh = this.bones[b];
      mesh.visible = length > 1e-3;
      mesh.position.copy(a).addScaledVector(d, 0.5);
      mesh.scale.set(1, Math.max(length, 1e-3), 1);
      if (length > 1e-3) mesh.quaternion.setFromUnitVectors(UP, d.normalize());
    });
    points.forEach((p, j) => this.joints[j].position.copy(p));
    this.body.visible = true;
    const lowest = Math.min(...points.map((p) => p.y));
    this.grid.position.y = lowest - JOINT_RADIUS;
    if (frame) this.frame(points);
    this.render();
  }

  // the camera in front of the pose (looking along -z), its whole height in view
  frame(points) {
    const box = new THREE.Box3().setFromPoints(points);
    const centre = box.getCenter(new THREE.Vector3());
    const size = box.getSize(new THREE.Vector3());
    const extent = Math.max(size.y, size.x / Math.max(this.camera.aspect, 0.3), 1200);
    const distance = (extent * 0.75) / Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2));
    this.controls.target.copy(centre);
    this.camera.position.set(centre.x + distance * 0.25, centre.y + distance * 0.12, centre.z + distance);
    this.controls.update();
    this.framed = true;
  }

  clear() {
    this.body.visible = false;
    this.framed = false;
    this.render();
  }

  render() { this.renderer.render(this.scene, this.camera); }

  dispose() {
    this.resizeObserver.disconnect();
    this.controls.dispose();
    this.renderer.dispose();
    this.renderer.domElement.remove();
  }
}
