"""Form dialogs: field specs (form.py), typed per-flow state (state.py) and the engine that runs them (engine.py)."""
