"""One router per resource; ``main.create_app`` mounts them."""
