"""Images in chats: OpenAI-style ``image_url`` parts, read by images.py and
sent to a Replicate model's image input (inline, by URL, or uploaded) and to
a Gradio app's MultimodalTextbox (uploaded through the app's upload route)."""

import base64
import hashlib
import http.server
import os
import struct
import threading
import zlib
from pathlib import Path

import pytest

from replicate_qwen_sdk import GradioSpace, InvalidArgumentError, ResponseError, Timeout
from replicate_qwen_sdk.images import load_image
from replicate_qwen_sdk.messages import Message, normalize_messages
from replicate_qwen_sdk.providers.gradio.app import Component
from replicate_qwen_sdk.providers.gradio.browser import ChatValues
from replicate_qwen_sdk.providers.gradio.upload import check_image_box, file_values
from replicate_qwen_sdk.providers.replicate import DATA_URI_LIMIT
from replicate_qwen_sdk.testing import GradioEmulator, Script

VISION = "acme/vision"
IMAGE_INPUT = {"type": "string", "format": "uri", "title": "Image"}


def png(side: int, seed: int = 1, noise: int = 0) -> bytes:
    """A real PNG of ``side`` x ``side`` pixels, plus ``noise`` random bytes
    in an ancillary chunk (to make a large file)."""
    rows = b"".join(b"\x00" + bytes((x * seed + y) % 256 for x in range(side * 3)) for y in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    extra = chunk(b"teXt", b"noise\x00" + os.urandom(noise)) if noise else b""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def ask(*urls, text="What is in the picture?"):
    """One user message: the text, then an image part per URL."""
    parts = [{"type": "text", "text": text}] + [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


def fingerprint(data: bytes) -> str:
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()[:12]}"


@pytest.fixture
def cat(tmp_path):
    path = tmp_path / "cat.png"
    path.write_bytes(png(8, seed=3))
    return path


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png(8, seed=5, noise=DATA_URI_LIMIT + 1000))
    return path


# -- messages and reading ---------------------------------------------------------


def test_image_parts_are_kept_beside_the_text(cat):
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Look: "}, {"type": "image_url", "image_url": {"url": cat}}],
        },
    ]
    chat = normalize_messages(messages)
    assert chat[0] == Message("system", "Be brief.")
    assert chat[1] == Message("user", "Look: ", (str(cat),))  # a pathlib.Path is taken as its path


@pytest.mark.parametrize(
    "content, fragment",
    [
        ([{"type": "image_url", "image_url": "https://x/y.png"}], "['image_url'] must be {'url'"),
        ([{"type": "image_url", "image_url": {"url": ""}}], "['image_url'] must be {'url'"),
        ([{"type": "image_url"}], "['image_url'] must be {'url'"),
        ([{"type": "input_audio", "input_audio": {}}], "is a 'input_audio' part"),
        ([{"type": "text", "text": 3}], "a text part without a string 'text'"),
        ([7], "messages[0]['content'][0] is a int"),
    ],
)
def test_malformed_or_unsupported_parts_are_refused_naming_them(content, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        normalize_messages([{"role": "user", "content": content}])
    assert fragment in str(caught.value)
    assert "image_url" in str(caught.value)  # the message says what is supported


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_only_user_messages_carry_images(role):
    with pytest.raises(InvalidArgumentError) as caught:
        normalize_messages(
            [{"role": role, "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]
        )
    assert f"an image in a {role} message" in str(caught.value)


def test_a_web_image_is_kept_as_its_url_and_shown_without_its_query():
    image = load_image("https://cdn.example.com/pics/cat.png?signature=SECRET")
    assert image.url == "https://cdn.example.com/pics/cat.png?signature=SECRET"
    assert image.data is None and image.filename == "cat.png"
    assert "SECRET" not in image.label


def test_a_data_uri_is_decoded_and_sent_as_given():
    data = png(4)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    image = load_image(uri)
    assert image.data == data and image.media_type == "image/png" and image.filename == "image.png"
    assert image.as_data_uri() == uri
    assert "base64,..." in image.label and len(image.label) < 60


def test_a_local_file_is_read_and_its_type_found_from_its_bytes(tmp_path):
    data = png(4)
    path = tmp_path / "photo.bin"  # a name that says nothing
    path.write_bytes(data)
    image = load_image(str(path))
    assert image.data == data and image.media_type == "image/png" and image.filename == "photo.bin"
    assert image.as_data_uri() == "data:image/png;base64," + base64.b64encode(data).decode()
    assert load_image(path.as_uri()).data == data  # a file:// URL names the same file


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: str(d / "missing.png"), "does not exist"),
        (lambda d: str(d), "is a directory"),
        (lambda d: _write(d / "empty.png", b""), "is empty"),
        (lambda d: _write(d / "notes.txt", b"hello"), "is not an image (text/plain)"),
        (lambda d: "data:text/plain;base64,aGk=", "not an image"),
        (lambda d: "data:image/png;base64,%%%", "base64 data is malformed"),
        (lambda d: "data:image/png;base64", "no ','"),
        (lambda d: "ftp://host/cat.png?key=SECRET", "is a ftp:// URL"),
        (lambda d: "https:///cat.png", "has no host"),
    ],
)
def test_bad_image_references_are_refused_before_any_request(tmp_path, make, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(make(tmp_path), where="image 1 of messages[0]")
    message = str(caught.value)
    assert message.startswith("image 1 of messages[0]") and fragment in message
    assert "SECRET" not in message


def test_an_oversized_image_is_refused_without_being_read(tmp_path, monkeypatch):
    monkeypatch.setattr("replicate_qwen_sdk.images.MAX_IMAGE_BYTES", 100)
    path = _write(tmp_path / "huge.png", png(4, noise=200))
    with pytest.raises(InvalidArgumentError) as caught:
        load_image(path)
    assert "more than the 100 an image may have" in str(caught.value)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# -- Replicate ----------------------------------------------------------------------


@pytest.fixture
def vision(emulator):
    """A vision model on the emulator that takes one image as ``image``;
    it answers with the prompt and what its image input holds."""
    seen = []

    def respond(inputs):
        seen.append(inputs)
        return Script([f"prompt={inputs.get('prompt')!r}"])

    emulator.add_model(VISION, respond, inputs={"prompt": {"type": "string"}, "image": IMAGE_INPUT})
    return seen


def test_a_web_image_goes_to_the_image_input_as_its_url(provider, emulator, vision):
    url = "https://example.com/cat.png?sig=abc"
    assert provider.complete(VISION, ask(url, text="Describe it")) == "prompt='Describe it'"
    assert vision[-1]["image"] == url
    assert emulator.count("upload") == 0


def test_a_small_local_file_goes_inline_as_a_data_uri(provider, emulator, vision, cat):
    provider.complete(VISION, ask(str(cat)))
    value = vision[-1]["image"]
    assert value.startswith("data:image/png;base64,")
    assert base64.b64decode(value.split(",", 1)[1]) == cat.read_bytes()
    assert emulator.count("upload") == 0


def test_a_data_uri_is_sent_as_given(provider, vision):
    uri = "data:image/png;base64," + base64.b64encode(png(4)).decode()
    provider.complete(VISION, ask(uri))
    assert vision[-1]["image"] == uri


def test_a_large_file_is_uploaded_once_and_sent_as_the_files_url(provider, emulator, vision, big):
    provider.complete(VISION, ask(str(big)))
    (upload,) = emulator.files.values()
    assert upload.content == big.read_bytes()  # every byte arrived
    assert upload.name == "big.png" and upload.content_type == "image/png"
    assert vision[-1]["image"] == f"{emulator.base_url}/files/{upload.id}"
    (request,) = [r for r in emulator.requests if r.route == "upload"]
    assert request.headers["Authorization"] == f"Bearer {emulator.api_token}"
    # The same image again (a chat resent with one more turn): no second upload.
    provider.complete(VISION, ask(str(big), text="And now?"))
    assert emulator.count("upload") == 1 and vision[-1]["image"] == vision[-2]["image"]


def test_uploads_are_remembered_within_a_bound(provider, emulator, vision, tmp_path, monkeypatch):
    monkeypatch.setattr("replicate_qwen_sdk.providers.replicate.UPLOADS_KEPT", 1)
    provider.image_data_uri_limit = 0
    first, second = _write(tmp_path / "a.png", png(4, seed=1)), _write(tmp_path / "b.png", png(4, seed=2))
    for path in (first, second, second, first):
        provider.complete(VISION, ask(path))
    # b reused while remembered; a forgotten when b came, so uploaded again.
    assert emulator.count("upload") == 3
    assert len(provider._uploads) == 1


def test_the_data_uri_limit_is_a_setting(provider, emulator, vision, cat):
    assert provider.image_data_uri_limit == DATA_URI_LIMIT == 256_000
    provider.image_data_uri_limit = 0  # upload every local image
    provider.complete(VISION, ask(str(cat)))
    assert emulator.count("upload") == 1
    assert vision[-1]["image"].startswith(f"{emulator.base_url}/files/")


def test_the_schema_is_read_once_and_only_for_calls_with_images(provider, emulator, vision, cat):
    provider.complete(VISION, "Just text")
    assert emulator.count("model") == 0 and "image" not in vision[-1]  # text-only calls are unchanged
    provider.complete(VISION, ask(str(cat)))
    provider.complete(VISION, ask(str(cat)))
    assert emulator.count("model") == 1


def test_the_input_name_can_be_chosen_and_a_list_input_gets_every_image(provider, emulator, cat):
    seen = []
    inputs = {"prompt": {"type": "string"}, "image_input": {"type": "array", "items": IMAGE_INPUT}}
    emulator.add_model("acme/multi", lambda i: seen.append(i) or Script(["ok"]), inputs=inputs)
    provider.complete("acme/multi", ask(str(cat), "https://example.com/b.jpg"), image_input="image_input")
    first, second = seen[-1]["image_input"]
    assert first.startswith("data:image/png;base64,") and second == "https://example.com/b.jpg"
    provider.complete("acme/multi", ask("https://example.com/b.jpg"), image_input="image_input")
    assert seen[-1]["image_input"] == ["https://example.com/b.jpg"]  # a list even for one image


def test_a_text_only_model_is_refused_before_anything_runs(provider, emulator, cat):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete(None, ask(str(cat)))
    message = str(caught.value)
    assert "meta/meta-llama-3-70b-instruct has no input 'image'" in message
    assert "text-only model" in message and "prompt, system_prompt" in message
    assert caught.value.argument == "image_input"
    assert emulator.count("create") == 0 and emulator.count("upload") == 0


def test_a_model_whose_image_input_has_another_name_is_refused_with_that_name(provider, emulator):
    emulator.add_model("acme/other", Script(["x"]), inputs={"prompt": {"type": "string"}, "img": IMAGE_INPUT})
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete("acme/other", ask("https://example.com/a.png"))
    assert "its file inputs are 'img': name the one for images with image_input=" in str(caught.value)


def test_several_images_for_a_one_image_input_are_refused(provider, emulator, vision):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete(VISION, ask("https://example.com/a.png", "https://example.com/b.png"))
    assert "takes one image and the chat has 2" in str(caught.value)
    assert emulator.count("create") == 0


def test_images_go_unchecked_where_the_schema_cannot_be_read(provider, emulator, vision):
    seen = []
    emulator.add_model("acme/unknown", lambda i: seen.append(i) or Script(["ok"]))  # reports no schema
    provider.complete("acme/unknown", ask("https://example.com/a.png"))
    assert seen[-1]["image"] == "https://example.com/a.png"
    # The API will not tell: the images go as one value (a list if several)
    # and the server judges; the failure is not remembered.
    emulator.inject_fault("model", status=403)
    two = ask("https://example.com/a.png", "https://example.com/b.png")
    provider.complete(VISION, two)
    assert vision[-1]["image"] == ["https://example.com/a.png", "https://example.com/b.png"]
    with pytest.raises(InvalidArgumentError):
        provider.complete(VISION, two)  # read this time: the input takes one image


def test_extra_data_and_images_for_the_same_input_are_refused(provider, vision):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete(VISION, ask("https://example.com/a.png"), extra_data={"image": "https://example.com/b.png"})
    assert "extra_data (or another parameter) already sets" in str(caught.value)


@pytest.mark.parametrize("name", ["", 3, None])
def test_a_bad_image_input_name_is_refused(provider, name):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete(None, "Just text", image_input=name)
    assert caught.value.argument == "image_input"


def test_a_failed_upload_is_a_typed_error_and_no_prediction_is_made(provider, emulator, vision, big):
    emulator.inject_fault("upload", status=413, body={"detail": "Files must be less than 100MB in size"})
    with pytest.raises(ResponseError) as caught:
        provider.complete(VISION, ask(str(big)))
    assert caught.value.status_code == 413
    assert str(caught.value).startswith(f"HTTP 413 while uploading {big} ({big.stat().st_size} bytes)")
    assert "Files must be less than 100MB in size" in str(caught.value)
    assert emulator.count("create") == 0


def test_a_bad_path_is_refused_before_any_request(provider, emulator, tmp_path):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.complete(VISION, ask(str(tmp_path / "nope.png")))
    assert str(caught.value).startswith("image 1 of messages[0] names a local file that does not exist")
    assert emulator.requests == []


# -- Gradio -------------------------------------------------------------------------


def test_a_text_only_app_is_refused_naming_the_endpoint(cat):
    with GradioEmulator() as app, GradioSpace(app.url, timeout=Timeout(connect=5, read=10)) as space:
        with pytest.raises(InvalidArgumentError) as caught:
            space.complete(None, ask(str(cat)))
        assert "Endpoint /model_chat takes no image" in str(caught.value)
        assert "not a MultimodalTextbox" in str(caught.value)
        assert app.count("join") == 0


def test_images_before_the_last_message_or_unreadable_are_refused_before_any_request(tmp_path):
    history = ask("https://example.com/a.png") + [{"role": "assistant", "content": "A cat."}]
    with GradioEmulator() as app, GradioSpace(app.url) as space:
        with pytest.raises(InvalidArgumentError) as caught:
            space.complete(None, history + [{"role": "user", "content": "And now?"}])
        assert "image before its last message (image 1 of messages[0])" in str(caught.value)
        with pytest.raises(InvalidArgumentError) as caught:
            space.complete(None, ask(str(tmp_path / "nope.png")))
        assert "does not exist" in str(caught.value)
        assert app.requests == []


def test_the_message_box_must_take_images_of_this_size_and_type(cat):
    image = load_image(str(cat))
    box = Component(9, "multimodaltextbox", {"file_types": [".pdf"]})
    with pytest.raises(InvalidArgumentError) as caught:
        check_image_box(box, [image], "/chat")
    assert "takes files of the types .pdf" in str(caught.value)
    check_image_box(Component(9, "multimodaltextbox", {"file_types": ["image"]}), [image], "/chat")
    check_image_box(Component(9, "multimodaltextbox", {"file_types": [".png"]}), [image], "/chat")
    with pytest.raises(InvalidArgumentError) as caught:
        check_image_box(Component(9, "multimodaltextbox", {}), [image], "/chat", max_file_size=10)
    assert "at most 10 bytes" in str(caught.value)


@pytest.fixture(scope="module")
def vision_apps(request):
    """``vision_apps(major)`` -> the URL of tests/gradio_apps/vision.py on
    a real Gradio of that major: the session's apps for the installed
    Gradio, a process of its own for another (GRADIO<major>_PYTHON)."""
    pytest.importorskip("gradio", reason="gradio needs Python 3.10+")
    from importlib import metadata

    from conftest import gradio_server_python
    from gradio_apps.launch import HERE, AppProcess

    installed = int(metadata.version("gradio").split(".")[0])
    processes = {}

    def url(major=installed):
        if major == installed:
            return request.getfixturevalue("gradio_apps")["vision"]
        if major not in processes:
            python = gradio_server_python(major)
            if python is None:
                pytest.skip(f"no Gradio {major} here: set GRADIO{major}_PYTHON (tests/gradio_apps/matrix.py makes one)")
            processes[major] = AppProcess(python, os.path.join(HERE, "vision.py"))
        return processes[major].urls()["vision"]

    yield url
    for process in processes.values():
        process.stop()


@pytest.fixture(params=[6, 5, 4], ids=lambda major: f"gradio{major}")
def vision_app(vision_apps, request):
    with GradioSpace(vision_apps(request.param), timeout=Timeout(connect=5, read=60)) as space:
        yield request.param, space


def test_a_local_image_is_uploaded_into_the_multimodal_box(vision_app, cat):
    _, space = vision_app
    answer = space.complete(None, ask(str(cat), text="What is it?"))
    assert answer == f"text=What is it? files=cat.png:{fingerprint(cat.read_bytes())}"


def test_a_data_uri_and_several_images_arrive_whole(vision_app, cat, big):
    _, space = vision_app
    uri = "data:image/png;base64," + base64.b64encode(cat.read_bytes()).decode()
    answer = space.complete(None, ask(uri, str(big), text="two"))
    assert answer == f"text=two files=image.png:{fingerprint(cat.read_bytes())},big.png:{fingerprint(big.read_bytes())}"


def test_an_image_with_the_chat_history_reaches_the_app(vision_app, cat):
    _, space = vision_app
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    answer = space.complete(None, history + ask(str(cat), text="And this?"))
    assert answer == f"text=And this? files=cat.png:{fingerprint(cat.read_bytes())}"


def test_a_web_image_is_passed_on_by_url_for_the_app_to_fetch(vision_apps):
    url = vision_apps()
    with GradioSpace(url) as space:
        app = space.app()
        steps = app.route()
        values = ChatValues(app, steps, "q", [], None, {})
        image = load_image("https://example.com/pics/cat.png")
        # Only web images: nothing to upload, so no request is made.
        values.attach_files(file_values(None, f"{url}/upload", {}, [image], None))
    sent = values.inputs_for(steps[-1])[0]
    assert sent["text"] == "q"
    assert sent["files"] == [
        {
            "path": "https://example.com/pics/cat.png",
            "url": "https://example.com/pics/cat.png",
            "orig_name": "cat.png",
            "meta": {"_type": "gradio.FileData"},
        }
    ]


def test_a_gradio4_app_fetches_a_web_image_itself(vision_apps, cat):
    # Gradio 5 and 6 fetch only from public addresses, so only a Gradio 4
    # app can be shown fetching from this machine.
    url = vision_apps(4)
    data = cat.read_bytes()

    class Image(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Image)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with GradioSpace(url, timeout=Timeout(connect=5, read=60)) as space:
            answer = space.complete(None, ask(f"http://127.0.0.1:{server.server_port}/cat.png", text="web"))
    finally:
        server.shutdown()
        thread.join(10)
    assert answer == f"text=web files=cat.png:{fingerprint(data)}"


def test_a_real_text_only_app_is_refused(gradio_apps, cat):
    with GradioSpace(gradio_apps["chat"]) as space:
        with pytest.raises(InvalidArgumentError) as caught:
            space.complete(None, ask(str(cat)))
    assert "Endpoint /chat takes no image: its message input is a textbox" in str(caught.value)
