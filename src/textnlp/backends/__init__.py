"""Model engines behind one interface (``base.Backend``) and the model catalogue."""
