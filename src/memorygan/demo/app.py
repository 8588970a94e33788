"""The Gradio app of `memorygan demo`: widgets wired to `DemoState` methods, one named API endpoint per action
(`/generate`, `/compose`, `/resample_part`, `/mix`, `/interpolate`, `/apply_direction`, `/move_part`,
`/remove_parts`, `/drag` (streams its steps), `/clear_points`, `/undo`, `/download`, and those of the features
installed: `/text_edit`, `/region_edit`, `/invert`). The drag canvas takes clicks (handle, target, ...). Gradio is
imported only here.

Privacy: bound to 127.0.0.1 unless the user asks otherwise, never a share link, no analytics (the environment
variables are set before Gradio is imported).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

DISPLAY_HEIGHT = 256      # the panel is enlarged (nearest neighbour) to at least this height
OFFLINE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "GRADIO_TELEMETRY_ENABLED": "False"}


def _gradio():
    for k, v in OFFLINE_ENV.items():
        os.environ[k] = v
    try:
        import gradio as gr
    except ImportError:
        from memorygan.errors import ConfigError
        raise ConfigError("the demo needs Gradio: pip install 'memorygan[demo]'") from None
    return gr


def endpoint_wrapper(gr, session):
    """`wrap(method)` for the demo's endpoints: call a state method on the session's state (made by `session` on
    first use); user errors become a visible gr.Error (and an API error); returns (panel, message, state)."""
    from memorygan.errors import MemoryGANError

    def wrap(method):
        def fn(state, *args):
            state = session(state)
            try:
                view = method(state, *args)
            except MemoryGANError as e:
                raise gr.Error(str(e)) from None
            return view.panel(DISPLAY_HEIGHT), view.message, state
        return fn
    return wrap


def build_app(G, directions: dict | None = None, clip=None, title: str = "memorygan demo", phrases=None,
              encoder=None):
    """The gr.Blocks app for generator G and {name: Direction}; `encoder`: a loaded encoder of G (uploads are
    shown at once, then refined with progress)."""
    gr = _gradio()
    from memorygan.demo.state import WHAT, DemoState
    from memorygan.errors import MemoryGANError

    directions = dict(directions or {})
    names = G.part_names
    k = len(names)

    def session(state):
        return state if state is not None else DemoState(G, directions, clip, phrases=phrases, encoder=encoder)

    wrap = endpoint_wrapper(gr, session)

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        state = gr.State(None)
        gr.Markdown(f"## {title}\n{G.arch} generator, {k} parts, {G.config.resolution} px. "
                    "Panels act on the current image; Undo steps back.")
        panel = gr.Image(label="image | mask | per-part depth", type="numpy", interactive=False, elem_id="panel",
                         format="png")                       # lossless: masks and edits are read off it
        message = gr.Textbox(label="status", interactive=False, elem_id="status")
        outs = [panel, message, state]
        with gr.Tab("Sample"):
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                trunc = gr.Slider(0.0, 1.5, value=1.0, step=0.05, label="truncation")
            gen_btn = gr.Button("Generate", elem_id="generate")
            gen_btn.click(wrap(lambda s, a, b: s.generate(int(a), float(b))), [state, seed, trunc], outs,
                          api_name="generate")
        with gr.Tab("Compose"):
            n_parts = gr.Slider(1, k, value=k, step=1, label="parts drawn (in id order, background first)")
            comp_btn = gr.Button("Compose", elem_id="compose")
            comp_btn.click(wrap(lambda s, n: s.compose_first(int(n))), [state, n_parts], outs, api_name="compose")
        with gr.Tab("Parts"):
            with gr.Row():
                part = gr.Dropdown(names, value=names[min(1, k - 1)], label="part", elem_id="part")
                what = gr.Radio(list(WHAT), value="both", label="codes")
                part_seed = gr.Number(value=1, precision=0, label="donor seed", elem_id="part-seed")
            res_btn = gr.Button("Resample part", elem_id="resample")
            res_btn.click(wrap(lambda s, p, w, sd: s.resample_part(p, w, int(sd))), [state, part, what, part_seed],
                          outs, api_name="resample_part")
            with gr.Row():
                mix_parts = gr.CheckboxGroup(names, label="parts to take")
                mix_seed = gr.Number(value=2, precision=0, label="source seed")
            mix_btn = gr.Button("Mix")
            mix_btn.click(wrap(lambda s, ps, sd: s.mix(list(ps or []), int(sd))), [state, mix_parts, mix_seed], outs,
                          api_name="mix")
            with gr.Row():
                interp_seed = gr.Number(value=3, precision=0, label="interpolate towards seed")
                t = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="t")
            t.change(wrap(lambda s, p, sd, tv: s.interpolate(p, int(sd), float(tv))), [state, part, interp_seed, t],
                     outs, api_name="interpolate", trigger_mode="always_last")
        with gr.Tab("Directions"):
            dname = gr.Dropdown(list(directions), value=next(iter(directions), None), label="direction",
                                elem_id="direction")
            from memorygan.editing.directions import MAX_ALPHA
            alpha = gr.Slider(-MAX_ALPHA, MAX_ALPHA, value=0.0, step=0.05, label="alpha", elem_id="alpha")
            alpha.change(wrap(lambda s, n, a: s.apply_direction(n, float(a))), [state, dname, alpha], outs,
                         api_name="apply_direction", trigger_mode="always_last")
            gr.Markdown("Directions are folders written by `memorygan edit learn|interfacegan|sefa`, loaded with "
                        "`--directions DIR` (one direction, or a folder of them).")
        default_parts = [n for n in ("hair",) if n in names] or names[min(1, k - 1):min(2, k)]
        with gr.Tab("Text edit"):
            with gr.Row():
                prompt = gr.Textbox(value="red hair", label="prompt", elem_id="prompt")
                scorer = gr.Radio(["attributes", "clip"], value="clip" if clip else "attributes",
                                  label="scorer (attributes: offline attribute words; clip: --clip folder)")
            t_parts = gr.CheckboxGroup(names, value=default_parts, label="parts whose codes move")
            with gr.Row():
                t_space = gr.Radio(["parts", "query"] if G.arch == "memorygan" else ["parts"], value="parts",
                                   label="space (query: MemoryGAN's working memory)")
                t_steps = gr.Slider(5, 300, value=40, step=5, label="steps", elem_id="text-steps")
            t_btn = gr.Button("Edit", elem_id="text-edit")
            t_btn.click(wrap(lambda s, pr, ps, sc, sp, st: s.text_edit(pr, list(ps or []), sc, "both", sp, int(st))),
                        [state, prompt, t_parts, scorer, t_space, t_steps], outs, api_name="text_edit")
        with gr.Tab("Region edit"):
            painter = gr.ImageEditor(label="paint the region to edit (any colour)", type="numpy", elem_id="painter",
                                     brush=gr.Brush(colors=["#ff3030"], default_size=12), eraser=gr.Eraser())
            paint_btn = gr.Button("Paint on the current image", elem_id="paint-current")
            with gr.Row():
                r_prompt = gr.Textbox(value="blonde hair", label="prompt")
                r_parts = gr.CheckboxGroup(names, label="parts (the region when nothing is painted; else the codes "
                                                        "that move: by default those the painting covers)")
                optimizer = gr.Radio(["cma+adam", "cma", "adam"], value="cma+adam", label="optimizer")
            r_btn = gr.Button("Edit region", elem_id="region-edit")
            r_btn.click(wrap(lambda s, pr, ps, ed, op: s.region_edit(pr, list(ps or []) or None, painted_mask(ed),
                                                                     optimizer=op)),
                        [state, r_prompt, r_parts, painter, optimizer], outs, api_name="region_edit")

            def to_painter(st):
                st = session(st)
                try:
                    image = st.view().image
                    f = max(1, -(-DISPLAY_HEIGHT // image.shape[0]))                  # enlarged as in the panel
                    image = image.repeat(f, 0).repeat(f, 1)
                except MemoryGANError as e:
                    raise gr.Error(str(e)) from None
                return {"background": image, "layers": [], "composite": image}, st
            paint_btn.click(to_painter, [state], [painter, state], api_name=False)
        with gr.Tab("Move parts"):
            gr.Markdown("Move, scale or turn a part through its coordinates (codes do not change; the image outside "
                        "the part's old and new place stays as it was), add a copy of it, or remove parts.")
            with gr.Row():
                s_part = gr.Dropdown(names, value=names[min(1, k - 1)], label="part", elem_id="move-part")
                s_dx = gr.Slider(-16, 16, value=0, step=1, label="dx (px, right)", elem_id="move-dx")
                s_dy = gr.Slider(-16, 16, value=0, step=1, label="dy (px, down)", elem_id="move-dy")
            with gr.Row():
                s_scale = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="scale")
                s_rot = gr.Slider(-90, 90, value=0, step=5, label="turn (degrees, counter-clockwise)")
                s_clone = gr.Checkbox(value=False, label="add a copy instead of moving")
            s_btn = gr.Button("Apply", elem_id="move-apply")
            s_btn.click(wrap(lambda s, p, dx, dy, sc, r, c: s.move_part(p, dx, dy, sc, r, bool(c))),
                        [state, s_part, s_dx, s_dy, s_scale, s_rot, s_clone], outs, api_name="move_part")
            with gr.Row():
                rm_parts = gr.CheckboxGroup(names, label="parts to remove")
                rm_btn = gr.Button("Remove", elem_id="remove-parts")
            rm_btn.click(wrap(lambda s, ps: s.remove_parts(list(ps or []))), [state, rm_parts], outs,
                         api_name="remove_parts")
        with gr.Tab("Drag"):
            gr.Markdown("Click a handle point on the image, then its target (repeat for more points), then Drag: "
                        "motion supervision and point tracking (DragGAN) over the part codes, or over each part's "
                        "coordinates. The image updates every few steps.")
            canvas = gr.Image(label="click: handle (red), then target (blue)", type="numpy", interactive=False,
                              format="png", elem_id="drag-canvas")
            with gr.Row():
                d_space = gr.Radio(["codes", "coords"], value="codes", label="what moves")
                d_steps = gr.Slider(10, 300, value=100, step=10, label="at most this many steps")
            with gr.Row():
                d_show = gr.Button("Show the current image", elem_id="drag-show")
                d_clear = gr.Button("Clear points", elem_id="drag-clear")
                d_btn = gr.Button("Drag", elem_id="drag-run")

            def canvas_fn(method):
                def fn(st, *args):
                    st = session(st)
                    try:
                        return method(st, *args), st
                    except MemoryGANError as e:
                        raise gr.Error(str(e)) from None
                return fn

            def clicked(st, evt):
                return canvas_fn(lambda s: s.add_point(evt.index[0], evt.index[1], DISPLAY_HEIGHT))(st)
            clicked.__annotations__ = {"evt": gr.SelectData}        # how Gradio knows to pass the click (this
            #                                                         module's annotations are strings)

            canvas.select(clicked, [state], [canvas, state], api_name=False)
            d_show.click(canvas_fn(lambda s: s.canvas(DISPLAY_HEIGHT)), [state], [canvas, state], api_name=False)
            d_clear.click(canvas_fn(lambda s: s.clear_points(DISPLAY_HEIGHT)), [state], [canvas, state],
                          api_name="clear_points")

            def run_drag(st, steps, space):
                st = session(st)
                try:
                    for view, pic in st.drag_steps(int(steps), space, min_height=DISPLAY_HEIGHT):
                        yield view.panel(DISPLAY_HEIGHT), view.message, pic, st
                except MemoryGANError as e:
                    raise gr.Error(str(e)) from None
            d_btn.click(run_drag, [state, d_steps, d_space], [panel, message, canvas, state], api_name="drag")
        with gr.Tab("Invert"):
            with gr.Row():
                upload = gr.Image(label="image (cropped and resized to the generator's size)", type="numpy",
                                  elem_id="upload")
                upload_mask = gr.Image(label="optional mask (class ids, greyscale PNG)", type="numpy",
                                       image_mode="L")
            if encoder is not None:
                inv_steps = gr.Slider(0, 1000, value=100, step=10, label="refinement steps after the encoder "
                                      "(0: the encoder alone)", elem_id="invert-steps")
            else:
                inv_steps = gr.Slider(20, 1000, value=200, step=10, label="optimisation steps", elem_id="invert-steps")
            inv_btn = gr.Button("Invert", elem_id="invert")

            def run_invert(st, im, mk, steps):
                st = session(st)
                try:
                    for item in st.invert_steps(im, mk, int(steps)):
                        if isinstance(item, str):            # progress: the panel stays as it is
                            yield gr.update(), item, st
                        else:
                            yield item.panel(DISPLAY_HEIGHT), item.message, st
                except MemoryGANError as e:
                    raise gr.Error(str(e)) from None
            inv_btn.click(run_invert, [state, upload, upload_mask, inv_steps], outs, api_name="invert")
        with gr.Row():
            undo_btn = gr.Button("Undo", elem_id="undo")
            undo_btn.click(wrap(lambda s: s.undo()), [state], outs, api_name="undo")
            dl_btn = gr.Button("Download image, mask and codes", elem_id="download")
        files = gr.File(label="downloads", file_count="multiple", interactive=False)

        def download(st):
            st = session(st)
            try:
                paths = st.save(tempfile.mkdtemp(prefix="memorygan-demo-"))
            except MemoryGANError as e:
                raise gr.Error(str(e)) from None
            return [str(p) for p in paths.values()], st
        dl_btn.click(download, [state], [files, state], api_name="download")
    app.memorygan_directions = list(directions)
    return app


def painted_mask(editor):
    """The region painted in a gr.ImageEditor value: (H, W) uint8, non-zero where any layer has paint; None when
    nothing is painted (or no editor value)."""
    import numpy as np

    from memorygan.editing.region import painted_region

    if not isinstance(editor, dict):
        return None
    painted = None
    for layer in editor.get("layers") or []:
        if layer is None:
            continue
        alpha = painted_region(np.asarray(layer).astype(np.uint8))      # the one rule (alpha, or any colour)
        painted = alpha if painted is None else np.maximum(painted, alpha)
    return None if painted is None or not painted.any() else np.rint(painted * 255).astype(np.uint8)


def load_directions(path) -> dict:
    """{name: Direction}: a direction folder, or a folder of direction folders (names: the folder names)."""
    from memorygan.editing.directions import CONFIG, load_direction
    from memorygan.errors import ConfigError

    if path is None:
        return {}
    path = Path(path)
    if (path / CONFIG).is_file():
        return {path.name: load_direction(path)}
    found = sorted(p for p in path.glob(f"*/{CONFIG}")) if path.is_dir() else []
    if not found:
        raise ConfigError(f"--directions {path}: no direction folder there (folders with {CONFIG})")
    return {p.parent.name: load_direction(p.parent) for p in found}


def launch(generator, directions=None, clip=None, host: str = "127.0.0.1", port: int | None = None,
           block: bool = True, device: str = "auto", phrases=None, encoder=None):
    """Load and serve the demo; returns the running app (with `block=False`, for tests) and its URL."""
    from memorygan import load
    from memorygan.editing.directions import check_direction

    from memorygan.devices import resolve_device

    G, _ = load(generator, device=resolve_device(device))
    if clip is None:
        from memorygan.editing.clip import ENV
        clip = os.environ.get(ENV) or None              # the folder the error message tells users to set
    dirs = load_directions(directions)
    for name, d in dirs.items():
        check_direction(d, G, f"--directions {name}")
    from memorygan.editing.phrases import resolve_phrases

    E = None
    if encoder is not None:
        from memorygan.encoder.model import load_encoder
        E, _ = load_encoder(encoder, G)
    app = build_app(G, dirs, clip, title=f"memorygan demo: {Path(generator).name}", phrases=resolve_phrases(phrases),
                    encoder=E)
    _, url, _ = app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                           quiet=not block, show_error=True)
    return app, url
