"""Request and response models of the API; shapes and units are in the Field descriptions.

``service.schemas.inputs``: what a request carries (poses, images, embeddings, sequences, video options, the
camera). ``service.schemas.requests``: the route bodies, the adapters that validate them and the documented
multipart forms. ``service.schemas.responses``: the route answers. ``service.schemas.errors``: the error body and
the statuses each route documents.
"""
