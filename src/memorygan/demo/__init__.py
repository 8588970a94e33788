"""The local web demo (`memorygan demo`, extra `[demo]`): `state.DemoState` holds the logic (no Gradio), `app`
wires Gradio widgets to it. Gradio is imported only when the app is built."""
from memorygan.demo.state import DemoState, Snapshot, View

__all__ = ["DemoState", "Snapshot", "View"]
