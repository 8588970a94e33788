"""CLI: `memorygan demo --generator G [--directions DIR] [--clip PATH] [--host 127.0.0.1] [--port P]`."""
from __future__ import annotations

import sys

from memorygan.devices import add_device_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="local web demo (Gradio, extra [demo])",
        description="Serve an interactive demo of a generator on this machine. Panels: Sample (seed, truncation), "
                    "Compose (the first N parts in order), Parts (resample a part's shape or texture codes from "
                    "another seed, mix parts of two samples, interpolate a part), Directions (learned directions "
                    "with an alpha slider), Text edit (attribute words offline, or CLIP from --clip / "
                    "$MEMORYGAN_CLIP), Region edit (paint a region, Paint-by-Word with CMA-ES and Adam), Move parts "
                    "(move, scale, turn or copy a part through its coordinates; remove parts), Drag (click a handle "
                    "and its target on the image; DragGAN over the part codes or coordinates, streamed), Invert "
                    "(upload an image, optionally its mask; with --encoder shown at once from the encoder's codes, then refined "
                    "with progress), then Undo and Download (image, mask, codes). A BigGAN "
                    "generator (`memorygan biggan train`) gets its own page: class picker and truncation, class "
                    "interpolation, direction sliders and Paint-by-Word. Bound to 127.0.0.1 (this machine only) "
                    "unless --host says otherwise; never a public share link; no analytics.")
    p.add_argument("--generator", default=None,
                   help="generator, checkpoint or training run folder, or a shipped name (default: the shipped "
                        "portraits-memorygan; `memorygan pretrained list`)")
    p.add_argument("--directions", help="a direction folder or a folder of them (`memorygan edit learn ...`)")
    p.add_argument("--clip", help="local CLIP folder for text edits (or MEMORYGAN_CLIP)")
    p.add_argument("--phrases", help="the attribute words of text and region edits: a phrases table "
                                     "(`memorygan edit phrases --calibrate --out T.json`) or a JSON file of extra "
                                     "phrases (default: the built-in portraits table)")
    p.add_argument("--encoder", help="an encoder of the generator (`memorygan encoder train`): an upload is shown at "
                   "once from its codes, then refined with progress")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="port (default: Gradio's first free one from 7860)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    add_device_argument(p)
    p.add_argument("--screenshot", metavar="PNG",
                   help="instead of serving: start the demo, drive it in a headless chromium (generate, resample a "
                        "part, apply the first direction), save a screenshot to PNG and exit")
    p.set_defaults(func=run_demo)


def run_demo(args) -> int:
    if args.generator is None:
        from memorygan import pretrained

        args.generator = pretrained.DEFAULT_DEMO
        print(f"memorygan demo: serving the shipped generator {args.generator} (--generator to serve your own)",
              file=sys.stderr)
    from memorygan.demo.app import launch

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"memorygan demo: warning: binding {args.host}: other machines on the network can reach the demo",
              file=sys.stderr)
    from memorygan.biggan.checkpoint import is_biggan_folder

    if is_biggan_folder(args.generator):                 # a class-conditional BigGAN: its own page
        from memorygan.demo.biggan_app import launch_biggan
        from memorygan.errors import ConfigError

        if args.screenshot or args.clip or args.phrases or args.encoder:
            raise ConfigError("--screenshot, --clip, --phrases and --encoder belong to the part-based demo; a BigGAN generator "
                              "gets the class picker, directions and Paint-by-Word")
        launch_biggan(args.generator, args.directions, args.host, args.port, block=True, device=args.device)
        return 0
    if args.screenshot:
        from memorygan.demo.browser import drive

        app, url = launch(args.generator, args.directions, args.clip, args.host, args.port, block=False,
                          device=args.device, phrases=args.phrases, encoder=args.encoder)
        try:
            first = next(iter(app.memorygan_directions), None)
            result = drive(url, args.screenshot, direction=first)
        finally:
            app.close()
        for step in result["steps"]:
            print(f"{step['action']}: {step['status']} (image changed: {step['changed']})")
        print(f"wrote {args.screenshot}")
        return 0
    launch(args.generator, args.directions, args.clip, args.host, args.port, block=True, device=args.device,
           phrases=args.phrases, encoder=args.encoder)
    return 0
