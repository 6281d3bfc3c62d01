"""The published Human3.6M camera parameters, as typed data, and the world -> camera transform they define.

Source: facebookresearch/VideoPose3D, ``common/h36m_dataset.py`` (``h36m_cameras_intrinsic_params`` and
``h36m_cameras_extrinsic_params``), copied digit for digit. VideoPose3D has no extrinsics for S2, S3 and S4 (their
entries are empty there), so they are absent here too.

Conventions, as VideoPose3D uses them:
- ``orientation`` is a unit quaternion (w, x, y, z), real part first, that rotates camera-frame vectors into the
  H36M world frame; ``translation`` is the camera centre in the world, mm. VideoPose3D's ``world_to_camera``
  computes ``qrot(qinverse(q), X - t)``, i.e. ``X_cam = R(q)^T (X - t)`` with ``R(q)`` the usual rotation matrix
  of q. ``H36mCamera.rotation`` is that ``R(q)^T``.
- the camera frame has OpenCV axes: x right, y down, z forward (depth); pixels are
  ``u = fx * x / z + cx``, ``v = fy * y / z + cy`` before lens distortion.
- the H36M world frame is Z up; ``h36m_camera(..., world="yup")`` re-expresses the extrinsics in our Y-up world
  frame (``index_builder.datasets.h36m.ZUP_TO_YUP``), so that poses from ``load_h36m_3d`` go through them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index_builder.datasets.h36m import NUM_CAMERAS, ZUP_TO_YUP
from index_builder.ingest.rotations import (
    quaternion_to_matrix,  # used to be defined here; kept importable from this module
)
from model.pose.cameras import Camera, world_to_camera


@dataclass(frozen=True)
class H36mIntrinsics:
    """One physical camera, the same for every subject.

    id: the camera's serial number; center: (cx, cy) principal point, px; focal_length: (fx, fy), px;
    radial_distortion: (k1, k2, k3); tangential_distortion: (p1, p2); res_w, res_h: image size, px;
    azimuth: degrees, only used by VideoPose3D for visualisation.
    """

    id: str
    center: tuple[float, float]
    focal_length: tuple[float, float]
    radial_distortion: tuple[float, float, float]
    tangential_distortion: tuple[float, float]
    res_w: int
    res_h: int
    azimuth: float


@dataclass(frozen=True)
class H36mExtrinsics:
    """One camera's pose for one subject's sessions.

    orientation: (w, x, y, z) unit quaternion, camera -> H36M world rotation.
    translation: (3,) camera centre in the H36M world frame (Z up), mm.
    """

    orientation: tuple[float, float, float, float]
    translation: tuple[float, float, float]


INTRINSICS: tuple[H36mIntrinsics, ...] = (
    H36mIntrinsics(
        id="54138969",
        center=(512.54150390625, 515.4514770507812),
        focal_length=(1145.0494384765625, 1143.7811279296875),
        radial_distortion=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
        tangential_distortion=(-0.0009756988729350269, -0.00142447161488235),
        res_w=1000,
        res_h=1002,
        azimuth=70,
    ),
    H36mIntrinsics(
        id="55011271",
        center=(508.8486328125, 508.0649108886719),
        focal_length=(1149.6756591796875, 1147.5916748046875),
        radial_distortion=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
        tangential_distortion=(-0.0016190266469493508, -0.0027408944442868233),
        res_w=1000,
        res_h=1000,
        azimuth=-70,
    ),
    H36mIntrinsics(
        id="58860488",
        center=(519.8158569335938, 501.40264892578125),
        focal_length=(1149.1407470703125, 1148.7989501953125),
        radial_distortion=(-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
        tangential_distortion=(0.0014843869721516967, -0.0007599993259645998),
        res_w=1000,
        res_h=1000,
        azimuth=110,
    ),
    H36mIntrinsics(
        id="60457274",
        center=(514.9682006835938, 501.88201904296875),
        focal_length=(1145.5113525390625, 1144.77392578125),
        radial_distortion=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
        tangential_distortion=(-0.0005872055771760643, -0.0018133620033040643),
        res_w=1000,
        res_h=1002,
        azimuth=-110,
    ),
)

_E = H36mExtrinsics
EXTRINSICS: dict[str, tuple[H36mExtrinsics, ...]] = {
    "S1": (
        _E((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
           (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        _E((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
           (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        _E((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
           (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        _E((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
           (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    ),
    "S5": (
        _E((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
           (2097.3916015625, 4880.94482421875, 1605.732421875)),
        _E((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
           (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        _E((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
           (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        _E((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
           (-1637.1737060546875, -3867.3173828125, 1547.033203125)),
    ),
    "S6": (
        _E((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
           (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        _E((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
           (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        _E((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
           (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        _E((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
           (-1721.668701171875, -3884.13134765625, 1540.4879150390625)),
    ),
    "S7": (
        _E((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
           (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        _E((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
           (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        _E((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
           (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        _E((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
           (-1734.7105712890625, -3832.42138671875, 1548.5830078125)),
    ),
    "S8": (
        _E((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
           (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        _E((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
           (2219.965576171875, -5148.453125, 1613.0440673828125)),
        _E((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
           (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        _E((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
           (-1476.913330078125, -3896.7412109375, 1547.97216796875)),
    ),
    "S9": (
        _E((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
           (2044.45849609375, 4935.1171875, 1481.2275390625)),
        _E((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
           (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        _E((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
           (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        _E((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
           (-1696.04345703125, -3827.099853515625, 1591.4127197265625)),
    ),
    "S11": (
        _E((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
           (2098.440185546875, 4926.5546875, 1500.278564453125)),
        _E((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
           (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        _E((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
           (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        _E((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
           (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    ),
}
del _E

assert len(INTRINSICS) == NUM_CAMERAS and all(len(c) == NUM_CAMERAS for c in EXTRINSICS.values())

WORLD_FRAMES = ("h36m", "yup")


@dataclass(frozen=True)
class H36mCamera:
    """One camera of one subject's sessions, ready to use.

    rotation: (3, 3) float64, world -> camera; translation: (3,) float64, camera centre in the world, mm:
        ``X_cam = rotation @ (X_world - translation)``.
    focal: (2,) float64 (fx, fy), px; center: (2,) float64 (cx, cy), px; image_size: (res_w, res_h), px.
    radial_distortion: (3,) and tangential_distortion: (2,) as published (not applied by ``world_to_camera``).
    world: the world frame the extrinsics are in: 'h36m' (Z up) or 'yup' (ours, ``ZUP_TO_YUP``).
    """

    subject: str
    index: int
    id: str
    world: str
    rotation: np.ndarray
    translation: np.ndarray
    focal: np.ndarray
    center: np.ndarray
    image_size: tuple[int, int]
    radial_distortion: np.ndarray
    tangential_distortion: np.ndarray

    def as_camera(self) -> Camera:
        """The pinhole ``model.pose.cameras.Camera`` of this camera (no lens distortion); use world='yup' for a camera
        in the Y-up world frame that ``model.pose.cameras`` assumes."""
        return Camera(rotation=self.rotation, position=self.translation, focal=self.focal, center=self.center,
                      size=np.array(self.image_size, dtype=np.float64))

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """points: (..., 3) mm in ``self.world``; returns (..., 3) float64 mm, camera frame (x right, y down,
        z forward), through ``model.pose.cameras.world_to_camera``."""
        points = np.asarray(points, dtype=np.float64)
        assert points.shape[-1] == 3, points.shape
        return world_to_camera(points.reshape(-1, 3), self.as_camera()).reshape(points.shape)


def h36m_camera(subject: str, index: int, world: str = "h36m") -> H36mCamera:
    """The published camera ``index`` (0-3, the order of ``INTRINSICS``) for ``subject`` ('S1', ..., 'S11').

    world: 'h36m' for extrinsics in the H36M world frame (Z up), 'yup' for our Y-up world, in which
        ``index_builder.datasets.h36m.load_h36m_3d`` returns poses.
    raises: KeyError for a subject without published extrinsics, IndexError for a camera index outside 0-3,
        ValueError for an unknown world frame.
    """
    if subject not in EXTRINSICS:
        raise KeyError(f"no camera extrinsics for subject {subject!r}; known: {', '.join(EXTRINSICS)}")
    if not 0 <= index < NUM_CAMERAS:
        raise IndexError(f"camera index {index} outside 0..{NUM_CAMERAS - 1}")
    if world not in WORLD_FRAMES:
        raise ValueError(f"unknown world frame {world!r}; known: {', '.join(WORLD_FRAMES)}")
    intrinsics, extrinsics = INTRINSICS[index], EXTRINSICS[subject][index]
    rotation = quaternion_to_matrix(np.array(extrinsics.orientation)).T  # world -> camera: R(q)^T = R(q^-1)
    translation = np.array(extrinsics.translation, dtype=np.float64)
    if world == "yup":
        # X_yup = A X_h36m, so X_cam = R (A^T X_yup - t) = (R A^T)(X_yup - A t).
        rotation, translation = rotation @ ZUP_TO_YUP.T, ZUP_TO_YUP @ translation
    return H36mCamera(
        subject=subject,
        index=index,
        id=intrinsics.id,
        world=world,
        rotation=rotation,
        translation=translation,
        focal=np.array(intrinsics.focal_length, dtype=np.float64),
        center=np.array(intrinsics.center, dtype=np.float64),
        image_size=(intrinsics.res_w, intrinsics.res_h),
        radial_distortion=np.array(intrinsics.radial_distortion, dtype=np.float64),
        tangential_distortion=np.array(intrinsics.tangential_distortion, dtype=np.float64),
    )
