"""The full-image camera: people predicted in their crops' virtual cameras placed in one image camera, drawn on their
own pixels, ordered by depth; OpenCV's projectPoints and single-mesh renders are the oracles."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from common.utils.render import MeshRenderer, MeshSpec
from demo.camera import PinholeCamera, original_image_camera, person_crop
from demo.full_image_camera import (
    drawn_vertices,
    image_camera,
    mesh_pivot,
    network_matched_focal,
    place_in_image_camera,
)
from demo.render_people import person_colour, render_people_overlay, side_view_camera_frame
from main.config import load_config
from tool.make_synthetic_video import pose_synthetic_people

IMG_HW = (480, 640)
# People boxes (x, y, w, h): at the left border, in the middle, at the right border, small and far.
BOXES = [(5.0, 100.0, 120.0, 300.0), (260.0, 60.0, 110.0, 330.0), (540.0, 150.0, 95.0, 250.0), (300, 300, 40, 100)]


def _project_cv2(points_m: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """(N, 3) -> (N, 2) pixels with OpenCV (an implementation independent of ours)."""
    points = np.asarray(points_m, dtype=np.float64).reshape(-1, 1, 3)
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), camera.matrix(), None)
    return pixels.reshape(-1, 2)


@pytest.fixture(scope="module")
def bodies(synthetic_body_model_dir) -> list[np.ndarray]:
    """Three posed stand-in bodies (walking, arms and legs apart), each centred on its bounding box, metres."""
    people = pose_synthetic_people(synthetic_body_model_dir, frames=1, people=3, size_hw=(120, 160))
    return [vertices[0] - mesh_pivot(vertices[0]) for vertices in people.vertices_m]


def _virtual_people(bodies: list[np.ndarray]):
    """Hand4Whole's default geometry: each body in the virtual camera of a box's crop, filling it as the network
    is trained to (its height over the body input's height / 1.25), slightly off the crop's axis."""
    m = load_config(None).model
    for body in bodies:
        for box in BOXES:
            crop = person_crop(box, IMG_HW, m.input_img_shape)
            camera_person = original_image_camera(m.focal, m.princpt, m.input_body_shape, crop)
            depth = m.focal[1] * np.ptp(body[:, 1]) / (m.input_body_shape[0] / 1.25)
            cam_trans = np.array([0.004 * depth, -0.003 * depth, depth])
            yield body + cam_trans, cam_trans, camera_person, crop


def test_image_camera_focal_from_the_field_of_view_and_centre() -> None:
    camera = image_camera(IMG_HW, fov_deg=90.0)  # half the longer side over tan(45 degrees)
    assert camera.focal == pytest.approx((320.0, 320.0)) and camera.princpt == (319.5, 239.5)
    assert image_camera(IMG_HW).focal[0] == pytest.approx(320.0 / math.tan(math.radians(30.0)))  # 60 by default
    assert image_camera(IMG_HW, focal_px=1000.0, fov_deg=90.0).focal == (1000.0, 1000.0)  # a focal wins
    with pytest.raises(ValueError, match="field of view"):
        image_camera(IMG_HW, fov_deg=180.0)
    with pytest.raises(ValueError, match="focal"):
        image_camera(IMG_HW, focal_px=-1.0)


def test_network_matched_focal_spreads_the_virtual_camera_over_the_image() -> None:
    # 5000 px on a 192-px-wide input: 1280 / 192 input widths across a 1280-px image (720 / 256 is less).
    assert network_matched_focal((720, 1280), (5000.0, 5000.0), (256, 192)) == pytest.approx(5000.0 * 1280 / 192)


def test_rigid_placement_keeps_the_pivot_pixel_and_its_size(bodies: list[np.ndarray]) -> None:
    camera = image_camera(IMG_HW)
    m = load_config(None).model
    for mesh, cam_trans, camera_person, crop in _virtual_people(bodies):
        placed = place_in_image_camera(mesh, cam_trans, camera_person, camera)
        translation = placed.translation_m
        np.testing.assert_allclose(placed.mesh_m, mesh + translation, atol=1e-4)  # one translation, mesh and cam_trans
        np.testing.assert_allclose(placed.cam_trans_m, cam_trans + translation, atol=1e-5)
        pivot = (mesh.min(0) + mesh.max(0)) / 2.0
        np.testing.assert_allclose(
            _project_cv2(pivot + translation, camera), _project_cv2(pivot, camera_person), atol=1e-6
        )
        # The depth scales by f / F, F = 5000 x (crop width / 192): the same pixels per metre at the pivot.
        person_focal = m.focal[0] * crop.bbox_xywh_img[2] / m.input_body_shape[1]
        assert (pivot + translation)[2] / pivot[2] == pytest.approx(camera.focal[0] / person_focal, rel=1e-6)


def test_rigid_residual_is_the_stated_expression_and_shrinks_with_a_longer_focal(bodies: list[np.ndarray]) -> None:
    m = load_config(None).model
    lens_60 = image_camera(IMG_HW)
    matched = image_camera(IMG_HW, network_matched_focal(IMG_HW, m.focal, m.input_body_shape))
    worst = {}
    for name, camera in (("60 degrees", lens_60), ("network-matched", matched)):
        residuals = []
        for mesh, cam_trans, camera_person, _ in _virtual_people(bodies):
            placed = place_in_image_camera(mesh, cam_trans, camera_person, camera)
            measured = _project_cv2(placed.mesh_m, camera) - _project_cv2(mesh, camera_person)  # (V, 2)
            # The module docstring's expression: p [(d - a' d_z) / (1 + d_z / T'_z) - (d - a d_z) / (1 + d_z / T_z)]
            pivot, pivot_img = (mesh.min(0) + mesh.max(0)) / 2.0, placed.pivot_m
            d = mesh.astype(np.float64) - pivot
            p = camera.focal[0] / pivot_img[2]
            slope_img, slope_virtual = pivot_img[:2] / pivot_img[2], pivot[:2] / pivot[2]
            stated = p * (
                (d[:, :2] - slope_img * d[:, 2:]) / (1 + d[:, 2:] / pivot_img[2])
                - (d[:, :2] - slope_virtual * d[:, 2:]) / (1 + d[:, 2:] / pivot[2])
            )
            np.testing.assert_allclose(measured, stated, atol=2e-3)  # float32 meshes 40-300 m away
            assert placed.residual_px == pytest.approx(np.linalg.norm(measured, axis=1).max(), abs=1e-3)
            residuals.append(placed.residual_px)
        worst[name] = max(residuals)
    # Measured: about 38 px at the border with a 60-degree lens, 1.5 px with the network's angle per pixel.
    assert worst["60 degrees"] > 10.0 and worst["network-matched"] < 2.0, worst


def test_drawn_meshes_land_on_each_persons_own_pixels_at_their_rigid_depths(bodies: list[np.ndarray]) -> None:
    for camera in (image_camera(IMG_HW), image_camera(IMG_HW, 3000.0), image_camera(IMG_HW, fov_deg=100.0)):
        for mesh, cam_trans, camera_person, _ in _virtual_people(bodies):
            placed = place_in_image_camera(mesh, cam_trans, camera_person, camera)
            drawn = drawn_vertices(placed.mesh_m, placed.depth_ratio, placed.virtual_slope)
            error = np.linalg.norm(_project_cv2(drawn, camera) - _project_cv2(mesh, camera_person), axis=1)
            assert error.max() < 0.5, error.max()  # measured: under 1e-3 px (float32 vertices)
            np.testing.assert_array_equal(drawn[:, 2], placed.mesh_m[:, 2])
            # Without the person's perspective (weak perspective) the drawing is off by up to about a pixel.
            weak = _project_cv2(drawn_vertices(placed.mesh_m), camera) - _project_cv2(mesh, camera_person)
            assert np.linalg.norm(weak, axis=1).max() < 2.0


@pytest.fixture(scope="module")
def renderer():
    with MeshRenderer(160, 120) as shared:
        yield shared


def test_overlay_shows_the_nearer_person_where_two_overlap(
    bodies: list[np.ndarray], renderer: MeshRenderer, synthetic_body_model_dir
) -> None:
    from common.body_models import get_body_models

    faces = get_body_models(synthetic_body_model_dir).faces
    camera = PinholeCamera((150.0, 150.0), (79.5, 59.5))
    near = bodies[0] + np.array([0.05, 0.0, 3.0])  # overlapping in the image: the far one is bigger and behind
    far = bodies[1] * 1.3 + np.array([0.0, 0.0, 3.6])
    black = np.zeros((120, 160, 3), dtype=np.uint8)
    for order in ((near, far), (far, near)):  # the list order does not matter, the depth does
        ids = [0, 1] if order[0] is near else [1, 0]
        together = render_people_overlay(black, list(order), faces, camera, renderer, ids, alpha=1.0)
        alone = {
            i: renderer.render(MeshSpec(mesh, faces, color=person_colour(i)), camera.focal, camera.princpt)
            for i, mesh in zip(ids, order, strict=True)
        }
        kernel = np.ones((5, 5), np.uint8)  # away from the silhouettes' anti-aliased edges
        both = cv2.erode((alone[0].mask & alone[1].mask).astype(np.uint8), kernel).astype(bool)
        near_first = both & (alone[0].depth < alone[1].depth - 0.05)
        assert near_first.sum() > 50 and (both & ~near_first).sum() == 0
        expected = np.rint(alone[0].color * 255.0)
        assert (np.abs(together.astype(float) - expected)[near_first].max(axis=-1) <= 2).mean() > 0.99


def test_side_view_frames_the_group_and_lays_depth_out_across(bodies: list[np.ndarray]) -> None:
    camera = image_camera((120, 160))
    near, far = bodies[0] + [0.0, 0.0, 3.0], bodies[1] + [0.3, 0.0, 6.0]
    framed = side_view_camera_frame([near, far], camera, (120, 160))
    for mesh in framed:
        pixels = _project_cv2(mesh, PinholeCamera(camera.focal, (79.5, 59.5)))
        assert (mesh[:, 2] > 0).all() and (pixels >= 0).all() and (pixels <= [159, 119]).all()
    # Turned 90 degrees about the vertical: what was farther from the camera now lies to the right.
    assert framed[1][:, 0].mean() - framed[0][:, 0].mean() == pytest.approx(3.0, abs=0.35)
