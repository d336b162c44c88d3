"""The whole-body model (Hand4Whole): body -> hand/face boxes -> crops -> part heads -> SMPL-X -> joints and mesh.

`get_wholebody_model(cfg, mode)` builds it from a `Config` (main/model.py's family 'hand4whole'). Its
`state_dict()` has exactly the keys and shapes of the public Hand4Whole checkpoints
(tests/main/checkpoint_layouts/hand4whole_state_dict.tsv), so `snapshot_6.pth.tar` loads with
`common.engine.checkpoint.load_network_state`. The SMPL-X layer's buffers are non-persistent: they move with
`.to(device)` but stay out of checkpoints.

Called as Hand4Whole's model: `model(inputs, targets, meta_info, mode)` with `inputs = {'img': (B, 3, 512, 384)
float RGB in [0, 1]}`. One forward path (`predict`) computes the predictions; 'train' mode returns the loss terms
of `common.nets.loss.compute_losses`, 'test' mode Hand4Whole's output keys, predictions only (`test_outputs`).
"""

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from common.body_models import get_body_models, joint_sets
from common.geometry import camera_translation, mirror_axis_angle, rot6d_to_axis_angle
from common.nets import (
    POSITION_HEADS,
    BodyRotationNet,
    BoxNet,
    BoxPrediction,
    FaceRegressor,
    FaceRoI,
    HandRoI,
    HandRotationNet,
    HeatmapShapes,
    PositionNet,
    SMPLXHead,
    build_backbone,
    compute_losses,
    from_hand_box_space,
    full_precision,
    init_head_weights,
    restore_bbox,
)
from common.nets.layers import xy_constant
from common.paths import resolve_repo_path
from main.config import Config, LossConfig, ModelConfig

__all__ = ["MODES", "WholeBodyModel", "get_wholebody_model"]

MODES: tuple[str, ...] = ("train", "test")
_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_POS, _ORIG = joint_sets.POS_JOINTS, joint_sets.ORIG_JOINTS
_BODY_JOINT_NUM = len(_POS.parts["body"])  # 25 body heatmap joints
_HAND_JOINT_NUM = len(_POS.parts["rhand"])  # 20 hand heatmap joints
_FINGER_NUM = len(_ORIG.parts["rhand"])  # 15 finger rotations per hand
_BODY_ROT_NUM = len(_ORIG.parts["body"]) - 1  # 21 body rotations besides the root
_MCP = list(_POS.parts["R_MCP"])  # Index_1, Middle_1, Ring_1, Pinky_1 of a 20-joint hand (L_MCP is the same)
_SHAPE_DIM = _EXPR_DIM = 10


class WholeBodyModel(nn.Module):
    """Hand4Whole's whole-body network (notes section 1).

    Args:
        model_cfg: geometry, backbones and the quirk options.
        loss_cfg: loss weights and form, used in 'train' mode.
        smplx_layer: a neutral smplx.SMPLX (10 betas, 10 expressions, flat_hand_mean=False, face contour); the
            model keeps a private copy with non-persistent buffers.
        proj_detach_joint_cam: in 'train' mode project `joint_cam.detach()`, so that the 2D loss trains only the
            camera (what Hand4Whole does when training on AGORA alone).
        test_all_joints: in 'test' mode `smplx_joint_proj` has all 144 SMPL-X joints (Hand4Whole's AGORA dump).
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        loss_cfg: LossConfig,
        smplx_layer: nn.Module,
        proj_detach_joint_cam: bool = False,
        test_all_joints: bool = False,
    ) -> None:
        super().__init__()
        cfg = self.cfg = model_cfg
        self.loss_cfg = loss_cfg
        self.proj_detach_joint_cam = proj_detach_joint_cam
        self.test_all_joints = test_all_joints
        self.hm_shapes = HeatmapShapes(cfg.output_hm_shape, cfg.output_hand_hm_shape)
        (img_h, img_w), (body_h, body_w) = cfg.input_img_shape, cfg.input_body_shape
        box_scale = (img_w / body_w, img_h / body_h)  # boxes are in body-input pixels, crops come from the image
        hand_backbone, face_backbone = build_backbone(cfg.hand_resnet_type), build_backbone(cfg.face_resnet_type)
        hand_channels = hand_backbone.out_channels

        # Hand4Whole's attribute names and order: state_dict() keys equal the public checkpoints'.
        self.backbone = build_backbone(cfg.resnet_type)
        channels = self.backbone.out_channels
        self.body_position_net = PositionNet(_BODY_JOINT_NUM, cfg.output_hm_shape, channels)
        self.body_rotation_net = BodyRotationNet(
            _BODY_JOINT_NUM, len(_MCP), channels, hand_channels, _BODY_ROT_NUM, _SHAPE_DIM
        )
        self.box_net = BoxNet(_BODY_JOINT_NUM, cfg.output_hm_shape[0], channels)
        self.hand_roi_net = HandRoI(hand_backbone, box_scale, cfg.input_hand_shape, cfg.roi_align_aligned)
        head = POSITION_HEADS[cfg.hand_position_head]
        self.hand_position_net = head(_HAND_JOINT_NUM, cfg.output_hand_hm_shape, hand_channels)
        self.hand_rotation_net = HandRotationNet(_HAND_JOINT_NUM, hand_channels, _FINGER_NUM)
        self.face_roi_net = FaceRoI(face_backbone, box_scale, cfg.input_face_shape, cfg.roi_align_aligned)
        self.face_regressor = FaceRegressor(face_backbone.out_channels, _EXPR_DIM)
        # Buffers only, all non-persistent: not in state_dict, as the reference strips its SMPL-X layer on save.
        self.smplx_head = SMPLXHead(smplx_layer, cfg.focal, cfg.princpt, cfg.input_body_shape, cfg.output_hm_shape)
        # Index and normalisation constants as device buffers: a host list used in a step is a host-to-device copy,
        # which on CUDA waits for the queued GPU work.
        self.register_buffer("mcp_idx", torch.tensor(_MCP), persistent=False)
        mean, std = (torch.tensor(values)[:, None, None] for values in _IMAGENET_MEAN_STD)  # (3, 1, 1) each
        self.register_buffer("image_mean", mean, persistent=False)
        self.register_buffer("image_std", std, persistent=False)

    def heads(self) -> list[nn.Module]:
        """The modules Hand4Whole initialises with `init_head_weights`: all but the backbones."""
        return [
            self.body_position_net, self.body_rotation_net, self.box_net, self.hand_position_net,
            self.hand_rotation_net, self.face_regressor,
        ]  # fmt: skip

    def forward(
        self,
        inputs: dict[str, Tensor],
        targets: dict[str, Tensor] | None = None,
        meta_info: dict[str, Tensor] | None = None,
        mode: str = "test",
    ) -> dict[str, Tensor]:
        """Loss terms ('train') or predictions ('test') for a batch of person crops.

        Args:
            inputs: {'img': (B, 3, H, W) float RGB in [0, 1], (H, W) = input_img_shape}.
            targets: the sample contract's targets (common/nets/loss.py); required in 'train' mode.
            meta_info: the masks (common/nets/loss.py); required in 'train' mode.
            mode: 'train' or 'test'.

        Returns:
            'train': LOSS_TERMS -> weighted scalar. 'test': see `test_outputs`.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
        train = mode == "train"
        pred = self.predict(
            inputs["img"],
            detach_proj=train and self.proj_detach_joint_cam,
            all_joints=not train and self.test_all_joints,
        )
        if train:
            if targets is None or meta_info is None:
                raise ValueError("'train' mode needs targets and meta_info")
            return compute_losses(pred, targets, meta_info, self.loss_cfg, self.hm_shapes)
        return self.test_outputs(pred)

    def predict(self, img: Tensor, detach_proj: bool = False, all_joints: bool = False) -> dict[str, Tensor]:
        """The forward pass shared by both modes.

        Args:
            img: (B, 3, H, W) float RGB in [0, 1].
            detach_proj: project detached joints (see `proj_detach_joint_cam`).
            all_joints: project all 144 SMPL-X joints instead of the 137 supervision joints.

        Returns:
            The predictions `compute_losses` reads (see its docstring) plus the SMPL-X parameters by part
            (smplx_{root,body,lhand,rhand,jaw}_pose axis-angle), cam_trans (B, 3) metres, mesh_cam (B, V, 3) metres
            and {lhand,rhand,face}_bbox_xyxy_body (B, 4) crop boxes in body-input pixels.
        """
        if self.cfg.normalize_image:
            img = (img - self.image_mean.to(img.dtype)) / self.image_std.to(img.dtype)
        extra = {"antialias": True, "align_corners": False} if self.cfg.body_resize_mode == "bilinear" else {}
        body_img = F.interpolate(img, size=self.cfg.input_body_shape, mode=self.cfg.body_resize_mode, **extra)
        img_feat = self.backbone(body_img)  # (B, C, H/32, W/32)
        body_joint_img, body_joint_hm = self.body_position_net(img_feat)  # (B, 25, 3), (B, 25, D, H, W)
        box = self.box_net(img_feat, body_joint_hm.detach())
        crop = self._crop_boxes(box)
        hands = self.predict_hands(img, crop["lhand"], crop["rhand"])
        face_feat = self.face_roi_net(img, crop["face"])
        root_6d, body_6d, shape, cam_param = self.body_rotation_net(
            img_feat, body_joint_img.detach(), hands["lhand_feat"], hands["lhand_joint_img"][:, self.mcp_idx].detach(),
            hands["rhand_feat"], hands["rhand_joint_img"][:, self.mcp_idx].detach(),
        )  # fmt: skip
        expr, jaw_6d = self.face_regressor(face_feat)
        params = {
            "smplx_root_pose": rot6d_to_axis_angle(full_precision(root_6d)),  # (B, 3)
            "smplx_body_pose": rot6d_to_axis_angle(full_precision(body_6d).unflatten(-1, (-1, 6))).flatten(1),
            "smplx_lhand_pose": hands["lhand_pose"],  # (B, 45)
            "smplx_rhand_pose": hands["rhand_pose"],  # (B, 45)
            "smplx_jaw_pose": rot6d_to_axis_angle(full_precision(jaw_6d)),  # (B, 3)
            "smplx_shape": full_precision(shape),  # (B, 10)
            "smplx_expr": full_precision(expr),  # (B, 10)
        }
        cam_param = full_precision(cam_param)
        focal = self.smplx_head.focal.to(cam_param.dtype)  # the config's focal, already on the device
        cam_trans = camera_translation(cam_param, focal, self.cfg.input_body_shape, self.cfg.camera_3d_size)
        coords = self.smplx_head(params, cam_trans, detach_proj, all_joints)
        hm_scale = self._hm_per_body_pixel(crop["lhand"])
        pose_keys = ("smplx_root_pose", "smplx_body_pose", "smplx_lhand_pose", "smplx_rhand_pose", "smplx_jaw_pose")
        return {
            **params,
            **coords,
            "smplx_pose": torch.cat([params[k] for k in pose_keys], dim=1),  # (B, 159)
            "cam_trans": cam_trans,
            "joint_img": torch.cat((body_joint_img, hands["lhand_joint_img"], hands["rhand_joint_img"]), dim=1),
            **{f"{part}_bbox_center": getattr(box, f"{part}_center") for part in ("lhand", "rhand", "face")},
            **{f"{part}_bbox_size": getattr(box, f"{part}_size") for part in ("lhand", "rhand", "face")},
            **{f"{part}_bbox_xyxy_body": crop[part] for part in ("lhand", "rhand", "face")},
            "lhand_bbox_hm": crop["lhand"] * hm_scale,  # (B, 4) xyxy body-heatmap units
            "rhand_bbox_hm": crop["rhand"] * hm_scale,
        }

    def _hm_per_body_pixel(self, like: Tensor) -> Tensor:
        (_, hm_h, hm_w), (body_h, body_w) = self.cfg.output_hm_shape, self.cfg.input_body_shape
        return xy_constant(like, hm_w / body_w, hm_h / body_h, pairs=2)  # (4,) for xyxy

    def _crop_boxes(self, box: BoxPrediction) -> dict[str, Tensor]:
        """Square, enlarged crop boxes in body-input pixels from BoxNet's boxes; detached as in Hand4Whole, so that
        nothing downstream of the crops trains BoxNet."""
        cfg, crops = self.cfg, {}
        for part, crop_shape, extension in (
            ("lhand", cfg.input_hand_shape, cfg.hand_box_extension),
            ("rhand", cfg.input_hand_shape, cfg.hand_box_extension),
            ("face", cfg.input_face_shape, cfg.face_box_extension),
        ):
            center, size = full_precision(getattr(box, f"{part}_center")), full_precision(getattr(box, f"{part}_size"))
            aspect = crop_shape[1] / crop_shape[0]
            crops[part] = restore_bbox(
                center, size, cfg.output_hm_shape[1:], cfg.input_body_shape, aspect, extension
            ).detach()  # (B, 4)
        return crops

    def predict_hands(self, img: Tensor, lhand_bbox: Tensor, rhand_bbox: Tensor) -> dict[str, Tensor]:
        """Both hands through the right-hand head; the left hand is mirrored in and its results mirrored back.

        Args:
            img: (B, 3, H, W) input images (normalised if configured).
            lhand_bbox: (B, 4) left-hand crop boxes, xyxy body-input pixels.
            rhand_bbox: (B, 4) right-hand crop boxes, xyxy body-input pixels.

        Returns:
            {l,r}hand_joint_img: (B, 20, 3) hand joints in their crop's hand-heatmap units (left in left-hand, i.e.
            un-mirrored, space); {l,r}hand_pose: (B, 45) finger axis-angle; {l,r}hand_feat: (B, C, h, w) features
            (left un-mirrored).
        """
        batch = img.shape[0]
        hand_feat = self.hand_roi_net(img, lhand_bbox, rhand_bbox)  # (2B, C, h, w): mirrored left hands, right hands
        joint_img, _ = self.hand_position_net(hand_feat)  # (2B, 20, 3)
        pose_6d = self.hand_rotation_net(hand_feat, joint_img.detach())  # (2B, 90)
        pose = rot6d_to_axis_angle(full_precision(pose_6d).unflatten(-1, (-1, 6)))  # (2B, 15, 3)
        width_hm = self.cfg.output_hand_hm_shape[2]
        if self.cfg.left_hand_unflip == "heatmap":
            mirrored_x = width_hm - 1 - joint_img[:batch, :, :1]  # Hand4Whole: a flip of the heatmap grid
        else:  # the crop's pixel flip u' = W - 1 - u, written in heatmap units (x = u * width_hm / W)
            width_px = self.cfg.input_hand_shape[1]
            mirrored_x = (width_px - 1) * width_hm / width_px - joint_img[:batch, :, :1]
        return {
            "lhand_joint_img": torch.cat((mirrored_x, joint_img[:batch, :, 1:]), dim=-1),
            "rhand_joint_img": joint_img[batch:],
            "lhand_pose": mirror_axis_angle(pose[:batch]).flatten(1),
            "rhand_pose": pose[batch:].flatten(1),
            "lhand_feat": hand_feat[:batch].flip(-1),
            "rhand_feat": hand_feat[batch:],
        }

    def test_outputs(self, pred: dict[str, Tensor]) -> dict[str, Tensor]:
        """Hand4Whole's test-mode keys, predictions only (ground truth for evaluation travels beside them).

        Returns:
            joint_img (B, 65, 3) body-heatmap units (hands mapped back from their boxes); joint_cam (B, 137, 3);
            smplx_joint_proj (B, 137 or 144, 2) body-heatmap units; smplx_mesh_cam (B, V, 3); smplx_{root,jaw}_pose
            (B, 3), smplx_body_pose (B, 63), smplx_{l,r}hand_pose (B, 45), smplx_shape, smplx_expr (B, 10);
            cam_trans (B, 3); {lhand,rhand,face}_bbox_xyxy_crop (B, 4) xyxy pixels of the input crop.
        """
        joint_img = pred["joint_img"]  # (B, 65, 3), hands in their boxes' heatmaps
        parts = [joint_img[:, _POS.parts["body"].start : _POS.parts["body"].stop]]
        for part in ("lhand", "rhand"):
            part_img = joint_img[:, _POS.parts[part].start : _POS.parts[part].stop]  # (B, 20, 3)
            parts.append(from_hand_box_space(part_img, pred[f"{part}_bbox_hm"], self.hm_shapes))
        joint_img = torch.cat(parts, dim=1)  # (B, 65, 3) body-heatmap units
        (img_h, img_w), (body_h, body_w) = self.cfg.input_img_shape, self.cfg.input_body_shape
        to_img = xy_constant(pred["cam_trans"], img_w / body_w, img_h / body_h, pairs=2)  # (4,)
        out = {"joint_img": joint_img, "joint_cam": pred["joint_cam"]}
        out |= {
            "smplx_joint_proj": pred["joint_proj"],
            "smplx_mesh_cam": pred["mesh_cam"],
            "cam_trans": pred["cam_trans"],
        }
        names = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "shape", "expr")
        out |= {f"smplx_{name}": pred[f"smplx_{name}"] for name in names}
        # The part boxes in the pixels of the input crop; `pred` holds them in body-input pixels.
        out |= {
            f"{part}_bbox_xyxy_crop": pred[f"{part}_bbox_xyxy_body"] * to_img for part in ("lhand", "rhand", "face")
        }
        return out


def get_wholebody_model(cfg: Config, mode: str) -> WholeBodyModel:
    """Builds the whole-body model of a config.

    In 'train' mode the heads get Hand4Whole's init (`init_head_weights`) and each backbone loads the local
    ImageNet file its config names (`model.backbone_weights` etc.; '' keeps the random init). In 'test' mode the
    weights are left for a checkpoint to fill. `model.proj_detach_joint_cam` and `model.test_all_joints` switch
    Hand4Whole's two AGORA behaviours (the agora_finetune overlay sets both).

    Args:
        cfg: the experiment config; reads cfg.model, cfg.loss and cfg.human_model_path.
        mode: 'train' or 'test'.

    Returns:
        The model, on the CPU, in training mode (switch it to inference mode with .train(False) for testing).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted: {MODES}")
    smplx_layer = get_body_models(cfg.human_model_path).smplx("neutral")
    model = WholeBodyModel(cfg.model, cfg.loss, smplx_layer, proj_detach_joint_cam=cfg.model.proj_detach_joint_cam,
                           test_all_joints=cfg.model.test_all_joints)  # fmt: skip
    if mode == "train":
        for head in model.heads():
            head.apply(init_head_weights)
        weights = (
            (model.backbone, cfg.model.backbone_weights),
            (model.hand_roi_net.backbone, cfg.model.hand_backbone_weights),
            (model.face_roi_net.backbone, cfg.model.face_backbone_weights),
        )
        for backbone, path in weights:
            if path:
                backbone.load_imagenet_weights(resolve_repo_path(path))
    return model
