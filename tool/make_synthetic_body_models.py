"""Write a synthetic stand-in for the licensed SMPL-X/SMPL/MANO/FLAME files.

    python tool/make_synthetic_body_models.py --out DIR [--seed S] [--smplx-format npz|pkl]

then select it with the config override ``human_model_path=DIR``. The tree has the official file
names, formats and sizes (see common/body_models/synthetic/__init__.py for what it is and is not);
``--smplx-format pkl`` writes the SMPL-X models as SMPLX_{GENDER}.pkl instead of .npz, as the official
.pkl download is laid out (uncompressed: about 230 MB each).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for `common`

from common.body_models.synthetic import SMPLX_FORMATS, write_synthetic_body_models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the human_model_files tree into")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    parser.add_argument("--smplx-format", choices=SMPLX_FORMATS, default="npz",
                        help="file format of the SMPL-X models (default npz; the framework reads either)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    out = write_synthetic_body_models(args.out, args.seed, args.smplx_format)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    for path in files:
        print(f"  {path.relative_to(out)}  ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"wrote {len(files)} files to {out} in {time.perf_counter() - start:.1f} s; use human_model_path={out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
