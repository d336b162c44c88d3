"""Offscreen mesh rendering (common/utils/render.py), on the CPU through Mesa's EGL.

Nothing here is skipped: on a machine without EGL the renderer fixture raises RenderingUnavailableError,
whose message names the missing packages, so the tests fail with that message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import trimesh

from common.geometry import project_points
from common.paths import REPO_ROOT
from common.utils.render import (
    MeshRenderer,
    MeshSpec,
    RenderingUnavailableError,
    overlay,
    render_overlay,
    side_view,
)

H, W = 64, 80
FOCAL = (100.0, 110.0)  # fx != fy, to catch swapped axes
PRINCPT = (41.3, 29.6)  # off-centre and fractional, to catch a principal point read as W/2, H/2


def box(center: tuple[float, float, float], extents: tuple[float, float, float] = (1.0, 1.0, 1.0), **kw) -> MeshSpec:
    mesh = trimesh.creation.box(extents=extents)
    return MeshSpec(mesh.vertices + np.asarray(center), mesh.faces, **kw)


def sphere(center: tuple[float, float, float], radius: float, subdivisions: int = 3, **kw) -> MeshSpec:
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return MeshSpec(mesh.vertices + np.asarray(center), mesh.faces, **kw)


def project(points: np.ndarray, focal=FOCAL, princpt=PRINCPT) -> np.ndarray:
    """(N, 3) camera metres -> (N, 2) pixels with the pinhole formula."""
    return points[:, :2] / points[:, 2:] * np.asarray(focal) + np.asarray(princpt)


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


@pytest.fixture(scope="module")
def renderer():
    with MeshRenderer(W, H) as shared:
        yield shared


def test_mask_bbox_and_depth_match_the_pinhole_camera(renderer: MeshRenderer) -> None:
    cube = box((0.2, -0.1, 3.0))
    out = renderer.render([cube], FOCAL, PRINCPT)
    assert out.color.shape == (H, W, 3) and out.color.dtype == np.float32
    assert out.depth.shape == (H, W) and out.depth.dtype == np.float32 and out.mask.dtype == bool
    # The silhouette of a convex mesh is the hull of its projected vertices.
    uv = project(cube.vertices)
    expected = np.array([*uv.min(axis=0), *uv.max(axis=0)])
    np.testing.assert_allclose(mask_bbox(out.mask), expected, atol=2.0)
    # The ray through the front face's centre hits it at z = 2.5 m.
    u, v = project(np.array([[0.2, -0.1, 2.5]]))[0]
    assert out.depth[round(v), round(u)] == pytest.approx(2.5, abs=0.01)
    assert np.array_equal(out.mask, out.depth > 0)
    assert np.all(out.color[~out.mask] == 0) and out.color[out.mask].max() > 0.3


@pytest.mark.parametrize("distance_m", [0.05, 3.0, 110.0, 2000.0])
def test_near_and_far_meshes_render_with_their_depth(renderer: MeshRenderer, distance_m: float) -> None:
    # Hand4Whole's virtual camera puts people 50-110 m away; the clip planes follow the scene, so a mesh at any
    # depth renders, and its silhouette and depth scale with the distance as the pinhole model says.
    cube = box((0.0, 0.0, distance_m), extents=(distance_m / 3,) * 3)
    out = renderer.render(cube, FOCAL, PRINCPT)
    uv = project(cube.vertices)
    np.testing.assert_allclose(mask_bbox(out.mask), [*uv.min(axis=0), *uv.max(axis=0)], atol=2.0)
    u, v = project(np.array([[0.0, 0.0, distance_m * 5 / 6]]))[0]
    assert out.depth[round(v), round(u)] == pytest.approx(distance_m * 5 / 6, rel=1e-3)


def test_a_mesh_behind_the_camera_renders_nothing(renderer: MeshRenderer) -> None:
    assert not renderer.render(box((0.0, 0.0, -3.0)), FOCAL, PRINCPT).mask.any()


def projected_triangles_coverage(mesh: MeshSpec, focal=FOCAL, princpt=PRINCPT, size_hw=(H, W)) -> np.ndarray:
    """(H, W) bool: pixel centres inside some triangle projected with common.geometry's pinhole model."""
    uv = project_points(torch.from_numpy(mesh.vertices).double(), focal, princpt).numpy()  # (V, 2)
    shift = 8  # cv2 takes fixed-point coordinates: 1/256 px
    triangles = np.rint(uv[mesh.faces] * 2**shift).astype(np.int32)  # (F, 3, 2)
    coverage = np.zeros(size_hw, dtype=np.uint8)
    for triangle in triangles:  # one by one: fillPoly would cancel overlapping triangles out
        cv2.fillConvexPoly(coverage, triangle, 1, lineType=cv2.LINE_8, shift=shift)
    return coverage.astype(bool)


def test_mask_is_where_the_mesh_projects(renderer: MeshRenderer) -> None:
    # A torus seen at an angle is not convex: its hole and the gaps beside it must stay empty.
    torus = trimesh.creation.torus(major_radius=0.5, minor_radius=0.15, major_sections=48, minor_sections=16)
    torus.apply_transform(trimesh.transformations.rotation_matrix(np.radians(35.0), (1.0, 0.3, 0.0)))
    mesh = MeshSpec(torus.vertices + (0.1, 0.05, 3.0), torus.faces)
    mask = renderer.render(mesh, FOCAL, PRINCPT).mask
    coverage = projected_triangles_coverage(mesh)
    kernel = np.ones((3, 3), np.uint8)  # one pixel of slack for the MSAA sample offset at the silhouette
    inner = cv2.erode(coverage.astype(np.uint8), kernel).astype(bool)
    outer = cv2.dilate(coverage.astype(np.uint8), kernel).astype(bool)
    assert inner.sum() > 300 and (~outer).sum() > 300
    assert mask[inner].all(), "the mask is empty where the mesh projects"
    assert not mask[~outer].any(), "the mask covers pixels where no triangle projects"
    hole = tuple(np.rint(project_points(torch.tensor([[0.1, 0.05, 3.0]]), FOCAL, PRINCPT)[0].numpy()[::-1]).astype(int))
    assert not mask[hole] and not coverage[hole]


@pytest.mark.parametrize("point", [(0.0, 0.0, 2.0), (0.55, -0.3, 2.5), (-0.9, 0.6, 4.0), (0.2, 0.25, 1.5)])
def test_rendered_vertex_lands_on_its_projected_pixel(renderer: MeshRenderer, point: tuple) -> None:
    # A speck around the point (a sphere 2 px across) shows where the renderer puts it.
    radius_m = 1.0 * point[2] / FOCAL[0]
    out = renderer.render(sphere(point, radius_m, subdivisions=2), FOCAL, PRINCPT)
    ys, xs = np.nonzero(out.mask)
    assert 1 <= len(xs) <= 16
    expected = project_points(torch.tensor([point], dtype=torch.float64), FOCAL, PRINCPT)[0].numpy()
    np.testing.assert_allclose([xs.mean(), ys.mean()], expected, atol=1.0)


def test_unlit_renders_show_the_colours_exactly_and_repeat_bit_for_bit(renderer: MeshRenderer) -> None:
    colour = np.array([0.2, 0.6, 0.9], dtype=np.float32)
    mesh = sphere((0.1, 0.0, 3.0), 0.6, vertex_colors=np.tile(colour, (642, 1)))
    first = renderer.render(mesh, FOCAL, PRINCPT, lit=False)
    interior = cv2.erode(first.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_allclose(first.color[interior], np.broadcast_to(colour, (interior.sum(), 3)), atol=1.01 / 255)
    # Silhouette pixels are divided by their coverage (a multiple of 1/4 in 8 bits): a little less exact.
    np.testing.assert_allclose(first.color[first.mask], np.broadcast_to(colour, (first.mask.sum(), 3)), atol=0.02)
    lit = renderer.render(mesh, FOCAL, PRINCPT)
    assert np.array_equal(lit.mask, first.mask) and np.abs(lit.color[lit.mask] - colour).max() > 0.1  # shaded
    with MeshRenderer(W, H) as other:  # another context gives the same bytes
        again = other.render(mesh, FOCAL, PRINCPT, lit=False)
    assert np.array_equal(again.color, first.color) and np.array_equal(again.depth, first.depth)


def test_pixel_centres_at_integer_coordinates(renderer: MeshRenderer) -> None:
    # A sphere on the optical axis projects to a disc centred on the principal point. Under EGL the mask
    # comes from one MSAA sample, which moves it by about (+0.125, -0.375) px (see render._to_output);
    # OpenGL's half-pixel centres, left uncorrected, would add 0.5 px to both.
    out = renderer.render(sphere((0.0, 0.0, 3.0), 0.7, subdivisions=4), FOCAL, PRINCPT)
    ys, xs = np.nonzero(out.mask)
    np.testing.assert_allclose([xs.mean(), ys.mean()], PRINCPT, atol=0.5)


def test_silhouette_pixels_keep_the_mesh_colour(renderer: MeshRenderer) -> None:
    # A quad facing the camera is lit almost uniformly. Its right edge crosses pixel centres, so about half
    # the MSAA samples of those mask pixels see the black background: they would come out at half
    # brightness unless the colour is divided by the coverage.
    z, (u0, v0, u1, v1) = 2.0, (20.3, 10.6, 50.0, 40.0)
    x0, x1 = (np.array([u0, u1]) - PRINCPT[0]) * z / FOCAL[0]
    y0, y1 = (np.array([v0, v1]) - PRINCPT[1]) * z / FOCAL[1]
    corners = [[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]]
    out = renderer.render(MeshSpec(corners, [[0, 2, 1], [0, 3, 2]]), FOCAL, PRINCPT)  # normal towards -z
    back = renderer.render(MeshSpec(corners, [[0, 1, 2], [0, 2, 3]]), FOCAL, PRINCPT)
    assert np.array_equal(out.mask, back.mask)  # back faces are not culled
    interior = np.median(out.color[out.mask], axis=0)
    edge = out.mask & ~np.all([np.roll(out.mask, s, a) for s in (1, -1) for a in (0, 1)], axis=0)
    assert edge.sum() > 50
    np.testing.assert_allclose(out.color[edge], np.broadcast_to(interior, out.color[edge].shape), atol=0.08)


def test_opencv_frame_y_down_x_right(renderer: MeshRenderer) -> None:
    out = renderer.render(sphere((0.4, 0.4, 3.0), 0.2), FOCAL, PRINCPT)  # +y is down in OpenCV
    x1, y1, _, _ = mask_bbox(out.mask)
    assert x1 > PRINCPT[0] and y1 > PRINCPT[1]  # lower right of the principal point
    out = renderer.render(sphere((-0.4, -0.4, 3.0), 0.2), FOCAL, PRINCPT)
    _, _, x2, y2 = mask_bbox(out.mask)
    assert x2 < PRINCPT[0] and y2 < PRINCPT[1]


def test_nearer_mesh_wins(renderer: MeshRenderer) -> None:
    near = box((0.0, 0.0, 2.0), (0.5, 0.5, 0.5), color=(1.0, 0.0, 0.0))
    far = box((0.3, 0.0, 4.0), (1.5, 1.0, 1.0), color=(0.0, 0.0, 1.0))
    for order in ([near, far], [far, near]):
        out = renderer.render(order, FOCAL, PRINCPT)
        cx, cy = round(PRINCPT[0]), round(PRINCPT[1])
        assert out.depth[cy, cx] == pytest.approx(1.75, abs=0.01)  # near cube's front face
        red, _, blue = out.color[cy, cx]
        assert red > blue + 0.5  # red cube in front (the white lights add a little of every channel)
        u = round(project(np.array([[0.8, 0.0, 3.5]]))[0, 0])  # only the far box is there
        assert out.depth[cy, u] == pytest.approx(3.5, abs=0.01)
        assert out.color[cy, u, 2] > out.color[cy, u, 0] + 0.3


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_overlay_changes_only_masked_pixels(renderer: MeshRenderer, dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
    image = image if dtype == np.uint8 else (image / 255.0).astype(dtype)
    before = image.copy()
    out = renderer.render(sphere((0.0, 0.0, 3.0), 0.5), FOCAL, PRINCPT)
    blended = overlay(image, out, alpha=0.8)
    assert blended.dtype == image.dtype and np.array_equal(image, before)
    assert np.array_equal(blended[~out.mask], image[~out.mask])
    scale = 255.0 if dtype == np.uint8 else 1.0
    expected = 0.8 * out.color * scale + 0.2 * image.astype(np.float32)
    np.testing.assert_allclose(blended[out.mask], expected[out.mask], atol=0.51 if dtype == np.uint8 else 1e-6)
    opaque = overlay(image, out, alpha=1.0)
    np.testing.assert_allclose(opaque[out.mask], out.color[out.mask] * scale, atol=0.51 if dtype == np.uint8 else 1e-6)


def test_render_overlay_with_and_without_a_renderer(renderer: MeshRenderer) -> None:
    image = np.full((H, W, 3), 0.5, dtype=np.float32)
    mesh = sphere((0.0, 0.0, 3.0), 0.5)
    expected = overlay(image, renderer.render(mesh, FOCAL, PRINCPT), 0.6)
    np.testing.assert_allclose(render_overlay(image, [mesh], FOCAL, PRINCPT, 0.6, renderer=renderer), expected)
    np.testing.assert_allclose(render_overlay(image, [mesh], FOCAL, PRINCPT, 0.6), expected, atol=1e-6)


def test_side_view_turns_about_the_vertical_axis() -> None:
    center = np.array([0.1, 0.2, 3.0])
    points = center + np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    # As documented: at 90 degrees the +x side moves to -z (towards the camera), -x to +z, y stays.
    turned = side_view(points, 90.0, center=center)
    np.testing.assert_allclose(
        turned, center + np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.0]]), atol=1e-12
    )
    rel = points - points.mean(axis=0)  # the default centre is the mean; -90 degrees turns +x to +z
    expected = points.mean(axis=0) + np.stack([-rel[:, 2], rel[:, 1], rel[:, 0]], axis=1)
    np.testing.assert_allclose(side_view(points, -90.0), expected, atol=1e-12)
    np.testing.assert_allclose(side_view(torch.tensor(points, requires_grad=True), 360.0, center), points, atol=1e-12)
    assert side_view(points.astype(np.float32)).dtype == np.float32


def test_side_view_render_shows_the_depth_extent(renderer: MeshRenderer) -> None:
    bar = box((0.0, 0.0, 3.0), (1.0, 0.2, 0.2))  # long along x, thin along z
    front = renderer.render(bar, FOCAL, PRINCPT)
    side = renderer.render(MeshSpec(side_view(bar.vertices), bar.faces), FOCAL, PRINCPT)
    front_x1, _, front_x2, _ = mask_bbox(front.mask)
    side_x1, _, side_x2, _ = mask_bbox(side.mask)
    assert front_x2 - front_x1 > 25 and side_x2 - side_x1 < 12  # 1.0 m wide seen from the front, 0.2 m from the side


def test_one_renderer_two_sizes(renderer: MeshRenderer) -> None:
    mesh = box((0.2, -0.1, 3.0))
    first = renderer.render(mesh, FOCAL, PRINCPT)
    half_focal, half_princpt = tuple(f / 2 for f in FOCAL), tuple((c + 0.5) / 2 - 0.5 for c in PRINCPT)
    small = renderer.render(mesh, half_focal, half_princpt, image_size=(H // 2, W // 2))
    assert small.mask.shape == (H // 2, W // 2) and small.color.shape == (H // 2, W // 2, 3)
    uv = project(mesh.vertices, half_focal, half_princpt)
    np.testing.assert_allclose(mask_bbox(small.mask), [*uv.min(axis=0), *uv.max(axis=0)], atol=2.0)
    again = renderer.render(mesh, FOCAL, PRINCPT)  # back to the default size: same image
    assert np.array_equal(again.mask, first.mask) and np.allclose(again.color, first.color, atol=1 / 255)


def test_torch_vertices_and_vertex_colors(renderer: MeshRenderer) -> None:
    mesh = sphere((0.0, 0.0, 3.0), 0.5)
    from_torch = MeshSpec(torch.tensor(mesh.vertices, requires_grad=True), torch.tensor(mesh.faces))
    np.testing.assert_array_equal(
        renderer.render(from_torch, FOCAL, PRINCPT).depth, renderer.render(mesh, FOCAL, PRINCPT).depth
    )
    green = np.tile([0.0, 1.0, 0.0], (len(mesh.vertices), 1))
    out = renderer.render(MeshSpec(mesh.vertices, mesh.faces, vertex_colors=green), FOCAL, PRINCPT)
    rgb = out.color[out.mask]
    assert np.all(rgb[:, 1] >= rgb[:, 0]) and rgb[:, 1].mean() > 0.3 and rgb[:, 0].max() < 0.05


def test_invalid_meshes_are_rejected() -> None:
    with pytest.raises(ValueError, match="vertices"):
        MeshSpec(np.zeros((4, 2)), np.zeros((1, 3), dtype=int))
    with pytest.raises(ValueError, match="face indices"):
        MeshSpec(np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(ValueError, match="vertex_colors"):
        MeshSpec(np.zeros((3, 3)), [[0, 1, 2]], vertex_colors=np.zeros((2, 3)))


def test_renderers_coexist_and_close_cleanly() -> None:
    mesh = box((0.0, 0.0, 3.0))
    first, second = MeshRenderer(32, 24), MeshRenderer(32, 24)
    expected = first.render(mesh, (40.0, 40.0), (16.0, 12.0)).mask
    first.close()
    first.close()  # idempotent
    # pyrender's own teardown terminates the process-wide EGL display; ours must leave `second` working.
    assert np.array_equal(second.render(mesh, (40.0, 40.0), (16.0, 12.0)).mask, expected)
    second.close()
    with pytest.raises(RuntimeError, match="closed"):
        second.render(mesh, (40.0, 40.0), (16.0, 12.0))


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter: PyOpenGL fixes its platform at the first import in a process."""
    environ = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"} | env
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=environ, capture_output=True, text=True)


def test_bad_platform_raises_with_the_package_hint() -> None:
    code = (
        "import json\n"
        "from common.utils.render import MeshRenderer, RenderingUnavailableError\n"
        "try:\n"
        "    MeshRenderer(8, 8)\n"
        "except RenderingUnavailableError as exc:\n"
        "    print(json.dumps([str(exc), type(exc.__cause__).__name__]))\n"
    )
    result = _run_python(code, PYOPENGL_PLATFORM="no-such-platform")
    assert result.returncode == 0, result.stderr
    message, cause = json.loads(result.stdout)
    assert "no-such-platform" in message and cause == "ValueError"
    assert "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri" in message and "libosmesa6" in message
    assert issubclass(RenderingUnavailableError, RuntimeError)


def test_import_has_no_side_effects() -> None:
    code = (
        "import json, os, sys\n"
        "import common.utils.render\n"
        "print(json.dumps(['pyrender' in sys.modules, 'OpenGL' in sys.modules, 'PYOPENGL_PLATFORM' in os.environ]))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, False, False]
