"""The Gradio app of `memorygan demo --generator BIGGAN`: a class picker, class interpolation, GANalyze direction
sliders and Paint-by-Word, wired to `BigGANDemoState` (named endpoints `/generate`, `/interpolate_class`,
`/apply_direction`, `/paint`, `/undo`). Same privacy rules as `demo.app` (127.0.0.1, no share link, no
analytics)."""
from __future__ import annotations

from pathlib import Path

from memorygan.demo.app import _gradio, endpoint_wrapper, painted_mask


def load_biggan_directions(path, G) -> dict:
    """{name: ZDirection}: one direction folder (`memorygan biggan direction`) or a folder of them."""
    from memorygan.biggan.edits import load_direction
    from memorygan.errors import ConfigError

    if path is None:
        return {}
    path = Path(path)
    if (path / "direction.json").is_file():
        return {path.name: load_direction(path, G)}
    found = sorted(path.glob("*/direction.json")) if path.is_dir() else []
    if not found:
        raise ConfigError(f"--directions {path}: no BigGAN direction folder there (folders with direction.json)")
    return {p.parent.name: load_direction(p.parent, G) for p in found}


def build_biggan_app(G, directions: dict | None = None, title: str = "memorygan demo (BigGAN)"):
    gr = _gradio()
    from memorygan.demo.biggan_state import BigGANDemoState
    directions = dict(directions or {})
    classes = list(G.config.class_names or [str(i) for i in range(G.config.num_classes)])

    def session(state):
        return state if state is not None else BigGANDemoState(G, directions)

    wrap = endpoint_wrapper(gr, session)

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        state = gr.State(None)
        gr.Markdown(f"## {title}\n{G.config.arch}, {len(classes)} classes, {G.config.resolution} px.")
        panel = gr.Image(label="image", type="numpy", interactive=False, elem_id="panel", format="png")
        message = gr.Textbox(label="status", interactive=False, elem_id="status")
        outs = [panel, message, state]
        with gr.Tab("Sample"):
            with gr.Row():
                cls = gr.Dropdown(classes, value=classes[0], label="class", elem_id="class")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                trunc = gr.Slider(0.04, 2.0, value=2.0, step=0.02, label="truncation (2 = none)")
            gr.Button("Generate", elem_id="generate").click(
                wrap(lambda s, c, sd, t: s.generate(c, int(sd), float(t))), [state, cls, seed, trunc], outs,
                api_name="generate")
        with gr.Tab("Class interpolation"):
            other = gr.Dropdown(classes, value=classes[min(1, len(classes) - 1)], label="towards class")
            t = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="t (in the shared class embedding)")
            t.change(wrap(lambda s, o, tv: s.interpolate_class(o, float(tv))), [state, other, t], outs,
                     api_name="interpolate_class", trigger_mode="always_last")
        with gr.Tab("Directions"):
            dname = gr.Dropdown(list(directions), value=next(iter(directions), None), label="direction")
            from memorygan.editing.directions import MAX_ALPHA
            alpha = gr.Slider(-MAX_ALPHA, MAX_ALPHA, value=0.0, step=0.05, label="alpha")
            alpha.change(wrap(lambda s, n, a: s.apply_direction(n, float(a))), [state, dname, alpha], outs,
                         api_name="apply_direction", trigger_mode="always_last")
            gr.Markdown("Directions: `memorygan biggan direction G --assessor brightness --out DIR`, loaded with "
                        "`--directions DIR`.")
        with gr.Tab("Paint-by-Word"):
            painter = gr.ImageEditor(label="paint the region to edit", type="numpy",
                                     brush=gr.Brush(colors=["#ff3030"], default_size=12), eraser=gr.Eraser())
            with gr.Row():
                assessor = gr.Radio(["brightness", "colourfulness"], value="brightness", label="assessor")
                target = gr.Slider(0.0, 1.0, value=0.9, step=0.05, label="target inside the region")
                iters = gr.Slider(2, 40, value=10, step=1, label="CMA-ES iterations")
            gr.Button("Paint", elem_id="paint").click(
                wrap(lambda s, ed, a, tg, it: s.paint(painted_mask(ed), a, float(tg), int(it))),
                [state, painter, assessor, target, iters], outs, api_name="paint")
        gr.Button("Undo", elem_id="undo").click(wrap(lambda s: s.undo()), [state], outs, api_name="undo")
    return app


def launch_biggan(generator, directions=None, host: str = "127.0.0.1", port: int | None = None,
                  block: bool = True, device: str = "auto"):
    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.devices import resolve_device

    G, _ = load_biggan(generator, resolve_device(device))
    app = build_biggan_app(G, load_biggan_directions(directions, G),
                           title=f"memorygan demo: {Path(generator).name} (BigGAN)")
    _, url, _ = app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                           quiet=not block, show_error=True)
    return app, url
