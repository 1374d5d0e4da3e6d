"""What crosses process boundaries: names derived from ids, the product's limits, the status
vocabulary, the error types workflows act on, and the dataclasses workflows and activities pass
each other. Standard library and dataclasses only, so the Temporal workflow sandbox (and the
video platform's own workflows) can import any of it."""
