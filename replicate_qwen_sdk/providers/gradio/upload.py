"""Images sent to a Gradio app: checked against the app's message box,
uploaded through its upload route, and described as the ``FileData``
values a ``MultimodalTextbox`` holds.

Wire facts (Gradio 4.x to 6.x): ``POST {prefix}/upload`` takes a
``multipart/form-data`` body with one ``files`` field per file and answers
with the list of the paths the app stored them at, in order. A component
value then names a file as ``{"path": ..., "meta": {"_type":
"gradio.FileData"}}`` (plus its original name, size and type); an image on
the web is named by its URL as ``path``, and the app fetches it, as
``gradio_client`` does.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ...errors import InvalidArgumentError, ResponseError
from ...images import Image
from ...retry import READ
from ...timeouts import Deadline
from ...transport import Transport
from .app import Component

__all__ = ["check_image_box", "file_values"]

FILE_DATA_META = {"_type": "gradio.FileData"}


def check_image_box(box: Component, images: Sequence[Image], route: str, max_file_size: Optional[int] = None) -> None:
    """Refuse ``images`` that the message box ``box`` of endpoint ``route``
    cannot take: it is not a ``MultimodalTextbox``, its ``file_types`` leave
    images out, or an image is larger than the app's ``max_file_size``.

    :raises InvalidArgumentError: saying why, naming the endpoint.
    """
    if box.type != "multimodaltextbox":
        raise InvalidArgumentError(
            f"Endpoint {route} takes no image: its message input is a {box.type}, not a MultimodalTextbox "
            "(a multimodal chat's box). Send text only, or choose a multimodal endpoint or app."
        )
    accepted = box.props.get("file_types")
    if isinstance(accepted, list) and accepted:
        for image in images:
            extension = os.path.splitext(image.filename)[1].lower()
            if not {"image", "image/*", "file", extension, image.media_type} & {str(kind).lower() for kind in accepted}:
                raise InvalidArgumentError(
                    f"Endpoint {route} takes files of the types {', '.join(map(str, accepted))}, "
                    f"not {image.label} ({image.media_type})."
                )
    if max_file_size is not None:
        for image in images:
            if image.size > max_file_size:
                raise InvalidArgumentError(
                    f"{image.label} is {image.size} bytes; the app takes files of at most {max_file_size} bytes "
                    "(its max_file_size). Send a smaller image."
                )


def file_values(
    transport: Transport,
    upload_url: str,
    headers: Mapping[str, str],
    images: Sequence[Image],
    deadline: Deadline,
) -> List[Dict[str, Any]]:
    """The ``FileData`` value of each image, in order: local and inline
    images uploaded in one request to ``upload_url``, web images by URL."""
    local = [image for image in images if image.url is None]
    paths = _upload(transport, upload_url, headers, local, deadline) if local else []
    stored = iter(paths)
    values = []
    for image in images:
        value: Dict[str, Any]
        if image.url is not None:
            value = {"path": image.url, "url": image.url, "orig_name": image.filename, "meta": FILE_DATA_META}
        else:
            value = {
                "path": next(stored),
                "orig_name": image.filename,
                "size": image.size,
                "mime_type": image.media_type,
                "meta": FILE_DATA_META,
            }
        values.append(value)
    return values


def _upload(
    transport: Transport, url: str, headers: Mapping[str, str], images: Sequence[Image], deadline: Deadline
) -> List[str]:
    action = f"uploading {len(images)} image(s) to the app"
    response = transport.request(
        "POST",
        url,
        action=action,
        policy=READ,  # sent twice, an upload only stores the same file twice
        deadline=deadline,
        headers=headers,
        files=[("files", (image.filename, image.data, image.media_type)) for image in images],
    )
    paths = transport.json(response, action=action)
    if not isinstance(paths, list) or len(paths) != len(images) or not all(isinstance(p, str) for p in paths):
        raise ResponseError(
            f"Unexpected answer while {action}: not a list of {len(images)} stored path(s).",
            status_code=response.status_code,
        )
    return paths
